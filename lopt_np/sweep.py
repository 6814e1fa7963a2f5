"""Many trainings at once: the one runner under ``lopt grid``, ``lopt reproduce`` and
``lopt sweep``.

A sweep is a list of :class:`Run` (a name, the :class:`~lopt_np.trainer.LambdaOpt` parameters,
the dataset it trains on). :class:`Executor` trains them in this process (``jobs=1``) or on
Dask distributed: a ``LocalCluster`` of ``jobs`` worker processes (the cores split among them)
or the running cluster at ``scheduler``. Each split is shipped to the workers once. A run that
diverges comes back as failed, with its message, and the sweep goes on; a worker that dies
mid-run has its run retried on another worker by the scheduler (the numbers are the same: a
run depends on its seed only).

:class:`SweepFolder` is the folder a sweep writes while it runs: every finished run goes, whole,
into ``runs/NAME/`` as it completes, with its ``result.json``; ``sweep.json`` holds the plan,
so that ``--resume`` trains only the runs not yet written, and refuses another plan.
"""

import contextlib
import dataclasses
import json
import math
import os
import shutil
import signal
import sys
import threading
import time

from .errors import ConfigError, LoptError, TrainingDivergedError
from .io import (
    _commit,
    check_output_dir,
    format_metrics,
    metric_label,
    save_run,
    write_json,
    write_text,
    write_whole,
)

try:
    import fcntl
except ImportError:  # not on Windows: a second sweep on one folder is then not caught
    fcntl = None

DASK_EXTRA = 'pip install "lopt_np[dask]"'
CONNECT_TIMEOUT = "10s"  # how long to wait for a --scheduler to answer
PLAN_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Run:
    """One training of a sweep: ``name`` (its folder under ``runs/``, unique in the sweep),
    ``params`` (:class:`~lopt_np.trainer.LambdaOpt` parameters), ``dataset`` (the key of its
    split) and ``settings`` (what the sweep's table shows for it: the options varied)."""

    name: str
    params: dict
    dataset: str = "data"
    settings: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Outcome:
    """A finished run: the validation metrics of its kept epoch (``valid``), the test
    evaluation (``lopt_np.evaluation.evaluate``'s result), seconds, or why it failed. ``model``
    is the trained :class:`~lopt_np.trainer.LambdaOpt` (``None`` when failed or read back from
    a sweep folder)."""

    run: Run
    best_epoch: int = 0
    valid: dict = dataclasses.field(default_factory=dict)
    test_result: dict = dataclasses.field(default_factory=lambda: {"metrics": {}})
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    failed: str = ""
    epoch_seconds: list = dataclasses.field(default_factory=list)  # training, per epoch
    model: object = dataclasses.field(default=None, repr=False)

    @property
    def test(self):
        return self.test_result["metrics"]

    def record(self):
        """What ``result.json`` holds (everything but the model)."""
        return {
            "run": self.run.name,
            "dataset": self.run.dataset,
            "settings": self.run.settings,
            "best_epoch": self.best_epoch,
            "valid": self.valid,
            "test_result": self.test_result,
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "failed": self.failed,
            "epoch_seconds": self.epoch_seconds,
        }

    def row(self):
        """The run's row of the sweep's table."""
        return {
            "run": self.run.name,
            "dataset": self.run.dataset,
            **self.run.settings,
            "status": f"failed: {self.failed}" if self.failed else "ok",
            "best_epoch": self.best_epoch,
            **{f"valid_{k}": v for k, v in self.valid.items()},
            **{f"test_{k}": v for k, v in self.test.items()},
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
        }


def train_run(split, run, threads=None):
    """Train ``run`` on ``split`` and evaluate it on test (what a worker executes); a run that
    diverges is returned failed, with its message."""
    from .trainer import LambdaOpt

    params = dict(run.params) if threads is None else {**run.params, "threads": threads}
    t0 = time.perf_counter()
    try:
        model = LambdaOpt(**params).fit(split)
    except TrainingDivergedError as exc:
        return Outcome(run, wall_seconds=time.perf_counter() - t0, failed=str(exc))
    record = next(h for h in model.history if h["epoch"] == model.best_epoch)
    valid = record.get("valid")
    if valid is None:  # no evaluation during training (eval_every=0)
        valid = model.evaluate(split, "valid")["metrics"]
    test = model.evaluate(split, "test")
    seconds = [h["train_seconds"] for h in model.history]
    return Outcome(
        run,
        model.best_epoch,
        valid,
        test,
        sum(seconds),
        time.perf_counter() - t0,
        epoch_seconds=seconds,
        model=model,
    )


# --- where the runs execute --------------------------------------------------------------------
class Executor:
    """Trains runs in this process (``jobs=1``, no ``scheduler``), on a ``LocalCluster`` of
    ``jobs`` worker processes, or on the Dask cluster at ``scheduler`` (``tcp://HOST:8786``).
    A context manager: leaving it shuts the local cluster down (its workers with it)."""

    def __init__(self, jobs=1, scheduler=None, threads=0):
        if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
        if scheduler is not None and jobs != 1:
            raise ConfigError(
                "give either jobs (a cluster on this machine) or a scheduler "
                "(a cluster already running), not both"
            )
        self.jobs, self.scheduler, self.threads = jobs, scheduler, threads
        self.client = self.cluster = None
        self.shipped = {}

    @property
    def distributed(self):
        return self.jobs > 1 or self.scheduler is not None

    def __enter__(self):
        if not self.distributed:
            return self
        try:
            import logging

            from distributed import Client, LocalCluster
        except ImportError:
            raise ConfigError(
                f"running on several workers (jobs > 1 or a scheduler) needs "
                f"Dask distributed, an optional extra: {DASK_EXTRA}"
            ) from None
        try:
            self._connect(Client, LocalCluster, logging)
        except BaseException:
            self.__exit__(None, None, None)  # a cluster half started: shut it down
            raise
        return self

    def _connect(self, Client, LocalCluster, logging):
        try:
            if self.scheduler is None:
                # the workers leave Ctrl-C to this process, which shuts them down: started
                # with SIGINT ignored (inherited), and so again when a nanny restarts one
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if _main() else None
                try:
                    self.cluster = LocalCluster(
                        n_workers=self.jobs,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                finally:
                    if previous is not None:
                        signal.signal(signal.SIGINT, previous)
                self.client = Client(self.cluster)
                from .dask_worker import IgnoreInterrupt

                self.client.register_plugin(IgnoreInterrupt(), name="lopt-ignore-sigint")
            else:
                self.client = Client(self.scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            where = self.scheduler or "a local cluster"
            raise ConfigError(f"cannot reach the Dask scheduler at {where}: {exc}") from None

    def __exit__(self, *exc):
        for part in (self.client, self.cluster):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.client = self.cluster = None
        self.shipped = {}
        return False

    @property
    def slots(self):
        """How many runs train at once."""
        if self.client is None:
            return 1
        return max(1, sum(w["nthreads"] for w in self.client.scheduler_info()["workers"].values()))

    def run_threads(self):
        """Numba threads of each run: ``threads`` as given, or (0) the cores of this machine
        split among the local workers; on a cluster 0 leaves each run all its worker's
        cores."""
        if self.cluster is None or self.threads:
            return self.threads
        return max(1, (os.cpu_count() or 1) // self.jobs)

    def map(self, fn, runs, splits):
        """Yield ``fn(splits[run.dataset], run, threads)`` for every run, as each finishes (in
        order without a cluster). An error other than divergence comes back as a failed
        :class:`Outcome` (after the scheduler's retries when a worker died)."""
        threads = self.run_threads()
        if self.client is None:
            for run in runs:
                yield fn(splits[run.dataset], run, threads)
            return
        from distributed import as_completed

        for key in {run.dataset for run in runs} - set(self.shipped):
            self.shipped[key] = self.client.scatter(splits[key], broadcast=True, hash=False)
        futures = {
            self.client.submit(
                fn,
                self.shipped[run.dataset],
                run,
                threads,
                key=f"lopt-{run.name}-{os.urandom(4).hex()}",
                pure=False,
            ): run
            for run in runs
        }
        try:
            for future in as_completed(futures):
                run = futures[future]
                try:
                    yield future.result()
                except Interrupted:  # a signal to this process, raised while it waited
                    raise
                except LoptError as exc:
                    yield Outcome(run, failed=str(exc))
                except Exception as exc:  # a lost worker, a bug in one run
                    yield Outcome(run, failed=f"{type(exc).__name__}: {exc}")
                future.release()
        finally:
            for future in futures:
                future.cancel()


def _main():
    return threading.current_thread() is threading.main_thread()


# --- the folder a sweep writes -----------------------------------------------------------------
class SweepFolder:
    """``PATH.partial/`` while a sweep runs: ``sweep.json`` (the plan), ``runs/NAME/`` per
    finished run (written whole: a temporary sibling renamed into place), the growing table.
    On success it becomes ``PATH`` (:meth:`commit`); after an interruption or an error it stays,
    and ``resume=True`` continues it."""

    def __init__(self, path, overwrite=False, resume=False):
        check_output_dir(path, overwrite)
        self.path = os.fspath(path)
        self.partial = os.path.abspath(self.path).rstrip(os.sep) + ".partial"
        self.overwrite, self.resume = overwrite, resume
        self.lock, self.created = None, False

    def __enter__(self):
        plan_file = os.path.join(self.partial, "sweep.json")
        if os.path.isdir(self.partial):
            if not os.path.isfile(plan_file):
                raise ConfigError(
                    f"{self.partial} exists and was not written by a lopt_np sweep; move it away"
                )
            if not self.resume:
                if not self.overwrite:
                    raise ConfigError(
                        f"{self.partial} holds an unfinished sweep ({len(self.finished())} "
                        f"runs finished): add --resume to train only what is missing, or "
                        f"--overwrite to start over"
                    )
                shutil.rmtree(self.partial)
        elif self.resume:
            raise ConfigError(
                f"nothing to resume: {self.partial} does not exist (a sweep "
                f"that was stopped leaves its finished runs there)"
            )
        self.created = not os.path.isdir(self.partial)
        os.makedirs(os.path.join(self.partial, "runs"), exist_ok=True)
        self.lock = open(os.path.join(self.partial, ".lock"), "w")
        if fcntl is not None:
            try:
                fcntl.flock(self.lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self.lock.close()
                raise ConfigError(f"another sweep is writing {self.partial}") from None
        return self

    def __exit__(self, *exc):
        if self.lock is not None:
            self.lock.close()
            self.lock = None
            if exc and exc[0] is not None and self.created and not self.finished():
                shutil.rmtree(self.partial, ignore_errors=True)  # nothing worth keeping
        return False

    def check_plan(self, plan):
        """Write the plan (``{"kind", "runs": {name: params}, ...}``) or, resuming, check it
        is the one the folder was started with."""
        plan = json.loads(json.dumps({"format": PLAN_FORMAT, **plan}, default=_plain))
        path = os.path.join(self.partial, "sweep.json")
        if os.path.isfile(path):
            with open(path) as fh:
                old = json.load(fh)
            if old != plan:
                raise ConfigError(
                    f"--resume continues {self.partial} with the settings it was "
                    f"started with; these differ ({plan_difference(old, plan)}). "
                    f"Give the same options, or --overwrite to start over"
                )
        else:
            write_json(path, plan)

    def finished(self):
        """``{name: record}`` of the runs already written (their ``result.json``)."""
        runs = os.path.join(self.partial, "runs")
        done = {}
        for name in sorted(os.listdir(runs)) if os.path.isdir(runs) else ():
            path = os.path.join(runs, name, "result.json")
            if not name.startswith(".") and os.path.isfile(path):
                with open(path) as fh:
                    done[name] = json.load(fh)
        return done

    def run_dir(self, name):
        return os.path.join(self.partial, "runs", name)

    def write_run(self, outcome, split, data_info, title):
        """``runs/NAME/``: the run's files (as ``lopt train`` writes them, without the split,
        which the sweep holds once) and ``result.json``, written whole."""
        final = self.run_dir(outcome.run.name)
        tmp = os.path.join(self.partial, "runs", f".{outcome.run.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        try:
            if outcome.model is not None:
                from .io import run_summary

                save_run(
                    tmp,
                    outcome.model,
                    None,
                    outcome.test_result,
                    data_info,
                    run_summary(
                        title, data_info, outcome.best_epoch, outcome.wall_seconds, outcome.test
                    ),
                )
            write_json(os.path.join(tmp, "result.json"), outcome.record())
            shutil.rmtree(final, ignore_errors=True)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def write_text(self, name, text):
        write_text(os.path.join(self.partial, name), text)

    def write_table(self, name, frame):
        """A pandas table as CSV, written whole."""
        write_whole(os.path.join(self.partial, name), lambda tmp: frame.to_csv(tmp, index=False))

    def commit(self):
        """The finished sweep becomes ``PATH`` (under the same rules as a run folder)."""
        self.__exit__()
        os.remove(os.path.join(self.partial, ".lock"))
        _commit(self.partial, self.path, self.overwrite)


def plan_difference(old, new):
    """The first difference between two plans, in words."""
    old_runs, new_runs = old.get("runs", {}), new.get("runs", {})
    for key in sorted(set(old) | set(new) - {"runs"}):
        if key != "runs" and old.get(key) != new.get(key):
            return f"{key}: {old.get(key)!r} before, {new.get(key)!r} now"
    if set(old_runs) != set(new_runs):
        gone, added = sorted(set(old_runs) - set(new_runs)), sorted(set(new_runs) - set(old_runs))
        return (
            f"runs {', '.join(gone[:3])} not planned now"
            if gone
            else f"runs {', '.join(added[:3])} not planned before"
        )
    for name in sorted(old_runs):
        a, b = old_runs[name], new_runs[name]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return f"run {name}: {key} = {a.get(key)!r} before, {b.get(key)!r} now"
    return "the plan"


def outcome_from_record(run, record):
    """The :class:`Outcome` of a run read back from its ``result.json`` (no model)."""
    return Outcome(
        run,
        record["best_epoch"],
        record["valid"],
        record["test_result"],
        record["train_seconds"],
        record["wall_seconds"],
        record["failed"],
        record["epoch_seconds"],
    )


def save_outcome(dest, outcome, split, data_info, summary_text, sweep=None):
    """A finished run's files (``lopt_np.io.save_run``) in ``dest``, with ``summary_text``: from
    the trained model in memory or, for a run read back from a resumed sweep, copied from its
    folder in the :class:`SweepFolder` ``sweep``."""
    if outcome.model is not None:
        save_run(dest, outcome.model, split, outcome.test_result, data_info, summary_text)
        return
    source = sweep.run_dir(outcome.run.name)
    for name in os.listdir(source):
        if name not in ("result.json", "summary.txt"):
            shutil.copy2(os.path.join(source, name), os.path.join(dest, name))
    split.save(os.path.join(dest, "split.npz"))
    write_text(os.path.join(dest, "summary.txt"), summary_text)


def _plain(o):
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    return o.item() if hasattr(o, "item") else str(o)


# --- running a plan ----------------------------------------------------------------------------
class Interrupted(LoptError):
    """SIGINT or SIGTERM arrived while a sweep ran; ``signal_name`` says which."""

    def __init__(self, signal_name):
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name


@contextlib.contextmanager
def interrupt_on_signals():
    """While active, SIGINT and SIGTERM raise :class:`Interrupted` in the main thread (the run
    in progress is abandoned; finished runs are already written)."""
    if not _main():
        yield
        return

    def handle(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class SweepProgress:
    """Progress over runs on stderr: a line per finished run (done / failed / running, ETA),
    redrawn in place on a terminal between them; ``log`` (a
    :class:`~lopt_np.progress.JsonLinesLog`) also gets a record per run."""

    def __init__(self, total, slots=1, done=0, select="hr@100", file=None, log=None, quiet=False):
        self.total, self.slots, self.done, self.failed = total, slots, done, 0
        self.select, self.log, self.quiet = select, log, quiet
        self.file = file or sys.stderr
        self.tty = hasattr(self.file, "isatty") and self.file.isatty()
        self.t0, self.new = time.perf_counter(), 0

    def counts(self):
        left = self.total - self.done
        text = (
            f"{self.done}/{self.total} done, {self.failed} failed, {min(self.slots, left)} running"
        )
        if self.new and left:
            from .progress import format_seconds

            per_slot = (time.perf_counter() - self.t0) / self.new
            text += f", ETA {format_seconds(per_slot * left)}"
        return text

    def started(self):
        if self.tty and not self.quiet:
            print(f"\r[{self.counts()}]", end="", file=self.file, flush=True)

    def finished(self, outcome):
        self.done, self.new = self.done + 1, self.new + 1
        self.failed += bool(outcome.failed)
        what = (
            f"failed: {outcome.failed}"
            if outcome.failed
            else f"valid {metric_label(self.select)} {outcome.valid.get(self.select, math.nan):.4f}"
            f", test {format_metrics(outcome.test)}"
        )
        if not self.quiet:
            print(
                f"{chr(13) if self.tty else ''}[{self.counts()}] {outcome.run.name}: {what} "
                f"({outcome.wall_seconds:.1f} s)",
                file=self.file,
                flush=True,
            )
        if self.log is not None:
            self.log.event("run", **outcome.record(), done=self.done, total=self.total)


def run_plan(
    executor,
    folder,
    runs,
    splits,
    data_info,
    fn=train_run,
    progress=None,
    on_outcome=None,
    title="MF-BPR",
):
    """Train every run of ``runs`` not yet in ``folder`` (a :class:`SweepFolder`, or None: keep
    nothing) on ``executor``; each finished run is written as it completes. Returns
    ``{name: Outcome}`` for every run (those read back from the folder without a model)."""
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ConfigError(f"two runs of a sweep share a name: {names}")
    done = folder.finished() if folder is not None else {}
    outcomes = {r.name: outcome_from_record(r, done[r.name]) for r in runs if r.name in done}
    todo = [r for r in runs if r.name not in outcomes]
    if progress is not None:
        progress.started()
    for outcome in executor.map(fn, todo, splits):
        if folder is not None:
            folder.write_run(
                outcome, splits[outcome.run.dataset], data_info.get(outcome.run.dataset, {}), title
            )
        outcomes[outcome.run.name] = outcome
        if on_outcome is not None:
            on_outcome(outcome)
        if progress is not None:
            progress.finished(outcome)
    return outcomes


# --- lopt sweep: the cartesian product ---------------------------------------------------------
def parse_setting(text, defaults):
    """``"granularity=D,DU,DUI"`` → ``("granularity", ["D", "DU", "DUI"])``, each value of the
    type of the training option's default (``defaults``: a ``TrainConfig``)."""
    key, sep, values = str(text).partition("=")
    key = key.strip().lstrip("-").replace("-", "_")
    fields = {f.name for f in dataclasses.fields(defaults)}
    if not sep or not key:
        raise ConfigError(f"--set takes NAME=V1,V2,…, got {text!r}")
    if key not in fields or key in SWEEP_FIXED:
        allowed = ", ".join(sorted(fields - set(SWEEP_FIXED)))
        raise ConfigError(
            f"--set {key}: not a training option that a sweep can vary (one of {allowed})"
        )
    default = getattr(defaults, key)
    parsed = []
    for value in (v.strip() for v in values.split(",")):
        if not value:
            continue
        try:
            if isinstance(default, bool):
                if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError(value)
                parsed.append(value.lower() in ("true", "1", "yes"))
            elif isinstance(default, int):
                parsed.append(int(value))
            elif isinstance(default, float):
                parsed.append(float(value))
            else:
                parsed.append(value)
        except ValueError:
            raise ConfigError(f"--set {key}: {value!r} is not a {type(default).__name__}") from None
    if not parsed:
        raise ConfigError(f"--set {key}= gives no value")
    if len(set(parsed)) != len(parsed):
        raise ConfigError(f"--set {key} repeats a value: {values}")
    return key, parsed


# options that are not a run's setting: where it runs and what it reports
SWEEP_FIXED = ("ks", "threads", "device")


def value_text(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def product_runs(base, settings, seeds, datasets):
    """The runs of ``lopt sweep``: every combination of ``settings`` (``[(name, values)]``),
    ``seeds`` and ``datasets`` (names), each over the ``base`` parameters; a run's name says
    what it varies (``DU-lambda_lr=0.01-seed=1``)."""
    import itertools

    keys = [k for k, _ in settings]
    if len(set(keys)) != len(keys):
        raise ConfigError(f"--set names an option twice: {keys}")
    runs = []
    for dataset in datasets:
        for combo in itertools.product(*[values for _, values in settings]):
            for seed in seeds:
                chosen = dict(zip(keys, combo))
                parts = (
                    ([dataset] if len(datasets) > 1 else [])
                    + [f"{k}={value_text(v)}" for k, v in chosen.items()]
                    + [f"seed={seed}"]
                )
                name = "-".join(parts).replace(os.sep, "_")
                runs.append(
                    Run(name, {**base, **chosen, "seed": seed}, dataset, {**chosen, "seed": seed})
                )
    return runs


def summarize(outcomes, runs, select, data_info):
    """``summary.txt`` of ``lopt sweep``: one line per run, then each setting's mean ± std
    over its seeds."""
    import pandas as pd

    rows = [outcomes[r.name].row() for r in runs]
    table = pd.DataFrame(rows)
    metrics = [c for c in table.columns if c.startswith("test_")]
    lines = [
        f"sweep of {len(runs)} runs ({sum(bool(outcomes[r.name].failed) for r in runs)} failed)"
    ]
    for name, info in data_info.items():
        from .io import format_summary

        lines.append(f"{name}: {format_summary(info)}")
    lines.append("")
    for r in runs:
        o = outcomes[r.name]
        what = (
            f"failed: {o.failed}"
            if o.failed
            else f"valid {metric_label(select)} {o.valid.get(select, math.nan):.4f}  test "
            f"{format_metrics(o.test)}  ({o.wall_seconds:.1f} s)"
        )
        lines.append(f"{r.name}: {what}")
    settings = [k for k in runs[0].settings if k != "seed"]
    ok = table[table["status"] == "ok"]
    if len(ok) and metrics:
        lines += ["", "mean ± std over seeds (finished runs):"]
        keys = ["dataset"] + settings
        for key, group in ok.groupby(keys, sort=False):
            key = key if isinstance(key, tuple) else (key,)
            label = (
                " ".join(
                    f"{k}={value_text(v)}"
                    for k, v in zip(keys, key)
                    if k != "dataset" or len(data_info) > 1
                )
                or "all"
            )
            stats = "  ".join(
                f"{metric_label(m[5:])} {group[m].mean():.4f} ± "
                f"{group[m].std(ddof=1) if len(group) > 1 else 0.0:.4f}"
                for m in metrics
            )
            lines.append(f"{label} (n={len(group)}): {stats}")
    return "\n".join(lines) + "\n", table


def split_values(values):
    """``"0,1,2"`` → ``[0, 1, 2]`` (the seeds of a sweep)."""
    try:
        seeds = [int(v) for v in str(values).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--seeds takes comma-separated integers, got {values!r}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds takes distinct integers ≥ 0, got {values!r}")
    return seeds
