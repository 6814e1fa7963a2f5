"""MF-λFix grid search (the paper's baseline and Figure 1): one full training per global λ,
selection by a validation metric, test metrics of the selected model, total wall time.

Every run uses the same seed, so the same initialization and the same triplets; only λ differs.
``jobs > 1`` trains several values at once in separate processes, splitting the cores among
them (CPU only: one GPU trains one value at a time).
"""
import dataclasses
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

import numpy as np
import pandas as pd

from .errors import ConfigError, TrainingDivergedError
from .io import format_metrics, format_summary, save_run, write_json
from .trainer import LambdaOpt

DEFAULT_LAMBDAS = (10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 0.0)


@dataclasses.dataclass
class GridRun:
    """One λ of the grid: validation metrics of the kept epoch, the test evaluation
    (``lopt_np.evaluation.evaluate``'s result, per-group breakdown included), seconds."""
    lam: float
    best_epoch: int
    valid: dict
    test_result: dict = dataclasses.field(repr=False)
    train_seconds: float
    wall_seconds: float
    failed: str = ""        # why training failed (it diverged); empty for a finished run

    @property
    def test(self):
        return self.test_result["metrics"]

    def row(self):
        return {"lambda": self.lam, "best_epoch": self.best_epoch,
                **{f"valid_{k}": v for k, v in self.valid.items()},
                **{f"test_{k}": v for k, v in self.test.items()},
                "train_seconds": self.train_seconds, "wall_seconds": self.wall_seconds,
                "status": f"failed: {self.failed}" if self.failed else "ok"}

    def valid_text(self, metric):
        """The run's validation ``metric`` for a progress line, or that it failed."""
        return "diverged" if self.failed else f"{self.valid[metric]:.4f}"


@dataclasses.dataclass
class GridResult:
    runs: list            # GridRun, in the order of the λ values given
    select: str           # the validation metric that picks the winner
    selected: int         # index into runs
    wall_seconds: float   # the whole sweep, parallelism included
    jobs: int

    @property
    def best(self):
        return self.runs[self.selected]

    def rows(self):
        return [r.row() for r in self.runs]


def check_lambdas(lambdas):
    lambdas = [float(x) for x in lambdas]
    if not lambdas:
        raise ConfigError("the λ grid is empty")
    bad = [x for x in lambdas if not (math.isfinite(x) and x >= 0)]
    if bad:
        raise ConfigError(f"λ values must be finite numbers ≥ 0, got {bad}")
    if len(set(lambdas)) != len(lambdas):
        raise ConfigError(f"the λ grid repeats a value: {lambdas}")
    return lambdas


def fixed_lambda_params(params, lam):
    """Training parameters of MF-λFix with one global λ."""
    return {**params, "learn_lambda": False, "granularity": "global", "lambda_init": lam}


def train_one(split, params, lam):
    """Train MF-λFix at ``lam``; returns ``(GridRun, model)``."""
    t0 = time.perf_counter()
    try:
        model = LambdaOpt(**fixed_lambda_params(params, lam)).fit(split)
    except TrainingDivergedError as exc:          # recorded; the rest of the grid goes on
        return GridRun(lam, 0, {}, {"metrics": {}}, 0.0, time.perf_counter() - t0,
                       failed=str(exc)), None
    record = next(h for h in model.history if h["epoch"] == model.best_epoch)
    valid = record.get("valid")
    if valid is None:                       # no evaluation during training (eval_every=0)
        valid = model.evaluate(split, "valid")["metrics"]
    test = model.evaluate(split, "test")
    train_s = sum(h["train_seconds"] for h in model.history)
    run = GridRun(lam, model.best_epoch, valid, test, train_s, time.perf_counter() - t0)
    return run, model


def _worker_init():
    """In each worker: leave SIGINT to the parent (which stops the pool: one message, no
    traceback per worker) and, on Linux, die with the parent."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)              # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass                                        # not Linux: workers end with the pool


def _stop_workers(pool):
    """Cancel what has not started and terminate the running workers."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


def grid_search(split, lambdas=DEFAULT_LAMBDAS, jobs=1, on_run=None, **params):
    """Train MF-λFix for every λ in ``lambdas`` (other settings: ``params``, as for
    :class:`~lopt_np.trainer.LambdaOpt`); select the value with the best validation
    ``params["early_stopping"]`` metric (default hr@100). ``on_run(run, n_done, n_total)`` is
    called as each value finishes. Returns ``(GridResult, selected model)``."""
    lambdas = check_lambdas(lambdas)
    params = dict(params)
    cfg = LambdaOpt(**fixed_lambda_params(params, 0.0)).config        # validates everything
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    if jobs > 1 and cfg.device != "cpu":
        raise ConfigError(f"jobs > 1 runs several trainings at once on the CPU cores; with "
                          f"device {cfg.device!r} use jobs=1")
    select = cfg.early_stopping
    t0 = time.perf_counter()
    runs, models = {}, {}
    if jobs == 1:
        for lam in lambdas:
            runs[lam], models[lam] = train_one(split, params, lam)
            if on_run:
                on_run(runs[lam], len(runs), len(lambdas))
    else:
        cores = cfg.threads or os.cpu_count() or 1
        worker = {**params, "threads": max(1, cores // jobs)}   # the trainer sets Numba's
        pool = ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn"),
                                   initializer=_worker_init)
        try:
            futures = {pool.submit(train_one, split, worker, lam): lam for lam in lambdas}
            for fut in as_completed(futures):
                lam = futures[fut]
                runs[lam], models[lam] = fut.result()
                if on_run:
                    on_run(runs[lam], len(runs), len(lambdas))
        except BaseException:
            _stop_workers(pool)                     # Ctrl-C, SIGTERM or an error: no orphans
            raise
        pool.shutdown()
    ordered = [runs[lam] for lam in lambdas]
    if all(r.failed for r in ordered):
        raise TrainingDivergedError(f"every λ of the grid diverged (λ={ordered[0].lam:g}: "
                                    f"{ordered[0].failed})")
    scores = [-np.inf if r.failed else r.valid[select] for r in ordered]
    selected = int(np.argmax(scores))          # ties: the first (largest λ as listed)
    result = GridResult(ordered, select, selected, time.perf_counter() - t0, jobs)
    return result, models[lambdas[selected]]


def save_grid(folder, result, model, split, data_info, params, wall_seconds):
    """Write a grid's files into ``folder``: ``grid.csv`` (one row per λ), ``grid.json`` (the
    rows, the selection, the sweep's wall time and the sum of the runs' times), and the
    selected model's run files (``lopt_np.io.save_run``) with ``summary.txt``. Returns the
    summary text."""
    best, runs = result.best, result.runs
    pd.DataFrame(result.rows()).to_csv(os.path.join(folder, "grid.csv"), index=False)
    lambdas = [r.lam for r in runs]
    write_json(os.path.join(folder, "grid.json"), {
        "lambdas": lambdas, "select": result.select, "selected_lambda": best.lam,
        "runs": result.rows(), "sweep_wall_seconds": result.wall_seconds,
        "sum_of_run_seconds": sum(r.wall_seconds for r in runs),
        "jobs": result.jobs, "wall_seconds": wall_seconds, "train": params, "data": data_info})
    lines = [f"MF-λFix grid over λ ∈ {{{', '.join(f'{x:g}' for x in lambdas)}}}",
             format_summary(data_info), "",
             "λ          valid " + result.select + "   " + "  ".join(
                 f"test {k}" for k in best.test) + "   seconds"]
    for r in runs:
        if r.failed:
            lines.append(f"{r.lam:<10g} {'failed':>10}   {r.failed}")
            continue
        mark = "  <- selected" if r is best else ""
        lines.append(f"{r.lam:<10g} {r.valid[result.select]:>10.4f}   " + "  ".join(
            f"{v:>{len(k) + 5}.4f}" for k, v in r.test.items()) +
            f"   {r.wall_seconds:7.1f}{mark}")
    lines += ["", f"selected λ = {best.lam:g} (best validation {result.select}); "
                  f"test: {format_metrics(best.test)}",
              f"sweep wall time {result.wall_seconds:.1f} s ({result.jobs} at a time; the runs "
              f"took {sum(r.wall_seconds for r in runs):.1f} s in all)"]
    text = "\n".join(lines) + "\n"
    save_run(folder, model, split, best.test_result, {**data_info, "wall_seconds": wall_seconds},
             text)
    return text
