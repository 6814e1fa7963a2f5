"""What a training run reports while it runs, and what may stop it early.

:class:`Progress` is the set of hooks the trainer calls (all optional). Provided:
:class:`ConsoleProgress` (a bar per epoch on a terminal, one line per epoch everywhere; what
``lopt train`` and ``fit(verbose=True)`` show), :class:`JsonLinesLog` (one JSON record per
line: step reports and epoch records), :class:`Tee` (several at once) and :class:`RunControl`
(per-epoch callbacks and a time budget, which stop training cleanly, the best epoch kept).
"""

import json
import math
import sys
import time

from .io import format_metrics


class Progress:
    """Hooks the trainer calls; every one optional."""

    def epoch_start(self, epoch, n_steps):
        pass

    def step(self, n_done, train_loss, valid_loss, mean_lambda):
        """Every 20 steps and at the end of an epoch: the epoch's mean losses so far and the
        mean (Λ^P, Λ^Q)."""

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        """Host copies of the parameters at the end of each epoch (before ``epoch_end``)."""

    def epoch_end(self, record):
        pass

    def stop(self):
        """Checked after each epoch: a reason (non-empty string) ends training there."""
        return ""

    def stop_now(self):
        """Checked before every step: a reason ends training at once (an interruption); the
        partial epoch is recorded, not evaluated."""
        return ""


class Tee(Progress):
    """Every hook to each of ``parts``; the first stop reason given wins."""

    def __init__(self, *parts):
        self.parts = [p for p in parts if p is not None]

    def epoch_start(self, epoch, n_steps):
        for p in self.parts:
            p.epoch_start(epoch, n_steps)

    def step(self, n_done, train_loss, valid_loss, mean_lambda):
        for p in self.parts:
            p.step(n_done, train_loss, valid_loss, mean_lambda)

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        for p in self.parts:
            p.epoch_parameters(P, Q, lam_P, lam_Q)

    def epoch_end(self, record):
        for p in self.parts:
            p.epoch_end(record)

    def stop(self):
        for p in self.parts:
            reason = p.stop()
            if reason:
                return reason if isinstance(reason, str) else "stopped by a progress hook"
        return ""

    def stop_now(self):
        for p in self.parts:
            reason = p.stop_now()
            if reason:
                return reason
        return ""


class StopOnSignal(Progress):
    """While active (a context manager), SIGINT (Ctrl-C) and SIGTERM (what job schedulers
    send) ask the run to stop at the next step boundary, so that it is evaluated and written
    with what it has; a second signal aborts at once. ``signal_name`` says which arrived."""

    SIGNALS = ("SIGINT", "SIGTERM")

    def __init__(self, file=None):
        self.signal_name = ""
        self.file = file or sys.stderr
        self.previous = {}

    def __enter__(self):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for name in self.SIGNALS:
                sig = getattr(signal, name)
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        import signal

        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
        return False

    def _handle(self, signum, frame):
        import signal

        if self.signal_name:  # the second one: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        print(
            f"\n{self.signal_name}: stopping after this step; the run so far will be "
            f"written (send it again to abort)",
            file=self.file,
            flush=True,
        )

    def stop_now(self):
        return f"interrupted by {self.signal_name}" if self.signal_name else ""


def format_seconds(s):
    s = int(round(s))
    return (
        f"{s // 3600}h{s % 3600 // 60:02d}m"
        if s >= 3600
        else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")
    )


def lambda_text(mean_lambda):
    return f"Λ^P {mean_lambda[0]:.3g} Λ^Q {mean_lambda[1]:.3g}"


class ConsoleProgress(Progress):
    """A bar per epoch (on a terminal) with the losses and mean Λ^P/Λ^Q, then one line per
    epoch (everywhere, also in a log file): losses, Λ, validation metrics, the epoch's seconds
    and an estimate of the time left for the whole run (at most ``epochs`` epochs; early
    stopping may end it sooner). Writes to stderr."""

    def __init__(self, epochs, label="epoch", file=None):
        self.epochs, self.label = epochs, label
        self.file = file or sys.stderr
        self.tty = hasattr(self.file, "isatty") and self.file.isatty()
        self.bar, self.info, self.times = None, "", []

    def epoch_start(self, epoch, n_steps):
        import click

        self.t0, self.done = time.perf_counter(), 0
        if self.tty:
            self.bar = click.progressbar(
                length=n_steps,
                label=f"{self.label} {epoch}/{self.epochs}",
                file=self.file,
                show_eta=True,
                item_show_func=lambda _: self.info,
            )
            self.bar.__enter__()

    def step(self, n_done, train_loss, valid_loss, mean_lambda):
        vl = f" val {valid_loss:.4f}" if valid_loss is not None else ""
        self.info = f"loss {train_loss:.4f}{vl} {lambda_text(mean_lambda)}"
        if self.bar is not None:
            self.bar.update(n_done - self.done, current_item=n_done)
        self.done = n_done

    def epoch_end(self, record):
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None
        self.times.append(time.perf_counter() - self.t0)
        left = (self.epochs - record["epoch"]) * sorted(self.times)[len(self.times) // 2]
        valid = f"; valid {format_metrics(record['valid'])}" if "valid" in record else ""
        eta = f", run ETA ≤ {format_seconds(left)}" if record["epoch"] < self.epochs else ""
        print(
            f"  {self.label} {record['epoch']}/{self.epochs}: {self.info}{valid} "
            f"({self.times[-1]:.1f} s{eta})",
            file=self.file,
            flush=True,
        )


class JsonLinesLog(Progress):
    """Appends one JSON object per line to ``path``: ``{"event": "step", ...}`` reports and
    ``{"event": "epoch", ...}`` records (the history's entries), flushed as written."""

    def __init__(self, path):
        self.fh = open(path, "a", encoding="utf-8")
        self.epoch = 0

    def _write(self, obj):
        self.fh.write(json.dumps(obj, default=_plain) + "\n")
        self.fh.flush()

    def epoch_start(self, epoch, n_steps):
        self.epoch = epoch

    def step(self, n_done, train_loss, valid_loss, mean_lambda):
        self._write(
            {
                "event": "step",
                "epoch": self.epoch,
                "step_in_epoch": n_done,
                "train_loss": train_loss,
                "lookahead_valid_loss": valid_loss,
                "mean_lambda_P": mean_lambda[0],
                "mean_lambda_Q": mean_lambda[1],
            }
        )

    def epoch_end(self, record):
        self._write({"event": "epoch", **record})

    def event(self, name, **fields):
        """Any other record, ``{"event": name, ...}`` (a sweep's finished runs)."""
        self._write({"event": name, **fields})

    def close(self):
        self.fh.close()


def _plain(o):
    return o.item() if hasattr(o, "item") else str(o)


class RunControl(Progress):
    """Stops a run cleanly after an epoch: when ``time_budget`` seconds have passed since it
    was made, or when a callback ``fn(record, model)`` returns True (``model``: a
    :class:`~lopt_np.model.Model` of that epoch's parameters, built by ``make_model``)."""

    def __init__(self, callbacks=(), time_budget=None, make_model=None):
        self.callbacks = list(callbacks or ())
        self.budget = math.inf if time_budget is None else float(time_budget)
        self.make_model = make_model
        self.t0 = time.perf_counter()
        self.params, self.reason = None, ""

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        self.params = (P, Q, lam_P, lam_Q)

    def epoch_end(self, record):
        if self.callbacks:
            model = self.make_model(self.params, record)
            for fn in self.callbacks:
                if fn(record, model) is True and not self.reason:
                    self.reason = f"stopped by the callback {getattr(fn, '__name__', fn)!s}"
        if not self.reason and time.perf_counter() - self.t0 >= self.budget:
            self.reason = f"time budget of {self.budget:g} s reached"

    def stop(self):
        return self.reason
