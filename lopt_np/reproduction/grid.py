"""MF-λFix grid search (the paper's baseline and Figure 1): one full training per global λ,
selection by a validation metric, test metrics of the selected model, total wall time.

Every run uses the same seed, so the same initialization and the same triplets; only λ differs.
The runs go through :mod:`lopt_np.sweep`: ``jobs > 1`` trains several values at once on a Dask
``LocalCluster`` (the cores split among its workers; CPU only: one GPU trains one value at a
time), ``scheduler`` on a running Dask cluster; with a ``folder`` each finished value is written
as it completes and a resumed grid trains only the missing ones.
"""

import contextlib
import dataclasses
import math
import os
import time

import numpy as np
import pandas as pd

from ..errors import ConfigError, TrainingDivergedError
from ..io import format_metrics, format_summary, write_json
from ..sweep import Executor, Outcome, Run, run_plan, save_outcome, train_run
from ..trainer import LambdaOpt

DEFAULT_LAMBDAS = (10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 0.0)


@dataclasses.dataclass
class GridRun(Outcome):
    """One λ of the grid (a :class:`~lopt_np.sweep.Outcome` whose run varies λ)."""

    @property
    def lam(self):
        return self.run.settings["lambda"]

    def row(self):
        return {
            "lambda": self.lam,
            "best_epoch": self.best_epoch,
            **{f"valid_{k}": v for k, v in self.valid.items()},
            **{f"test_{k}": v for k, v in self.test.items()},
            "train_seconds": self.train_seconds,
            "wall_seconds": self.wall_seconds,
            "status": f"failed: {self.failed}" if self.failed else "ok",
        }

    def valid_text(self, metric):
        """The run's validation ``metric`` for a progress line, or that it failed."""
        return "diverged" if self.failed else f"{self.valid[metric]:.4f}"

    @classmethod
    def of(cls, outcome):
        return cls(**{f.name: getattr(outcome, f.name) for f in dataclasses.fields(Outcome)})


@dataclasses.dataclass
class GridResult:
    runs: list  # GridRun, in the order of the λ values given
    select: str  # the validation metric that picks the winner
    selected: int  # index into runs
    wall_seconds: float  # the whole sweep, parallelism included
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


def grid_runs(params, lambdas, dataset="data"):
    """The grid as sweep runs, one per λ (folder ``lambda=0.01``)."""
    return [
        Run(f"lambda={lam:g}", fixed_lambda_params(params, lam), dataset, {"lambda": lam})
        for lam in lambdas
    ]


def train_one(split, params, lam):
    """Train MF-λFix at ``lam``; returns ``(GridRun, model)``."""
    run = GridRun.of(train_run(split, grid_runs(params, [lam])[0]))
    return run, run.model


def check_grid(lambdas, params, jobs, scheduler=None):
    """Validate the grid's settings before any work; returns ``(λ values, TrainConfig)``."""
    lambdas = check_lambdas(lambdas)
    cfg = LambdaOpt(**fixed_lambda_params(params, 0.0)).config  # validates everything
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"jobs must be a positive integer, got {jobs!r}")
    if jobs > 1 and cfg.device != "cpu":
        raise ConfigError(
            f"jobs > 1 runs several trainings at once on the CPU cores; with "
            f"device {cfg.device!r} use jobs=1"
        )
    return lambdas, cfg


def select_grid(outcomes, runs, select, wall_seconds, jobs):
    """The :class:`GridResult` of the grid's outcomes: the best validation ``select``."""
    ordered = [GridRun.of(outcomes[r.name]) for r in runs]
    if all(r.failed for r in ordered):
        raise TrainingDivergedError(
            f"every λ of the grid diverged (λ={ordered[0].lam:g}: {ordered[0].failed})"
        )
    scores = [-np.inf if r.failed else r.valid[select] for r in ordered]
    selected = int(np.argmax(scores))  # ties: the first (largest λ as listed)
    return GridResult(ordered, select, selected, wall_seconds, jobs)


def selected_model(result, folder):
    """The selected λ's trained model: in memory, or (a resumed grid) read from its folder."""
    if result.best.model is not None or folder is None:
        return result.best.model
    from ..model import Model

    return Model.load(folder.run_dir(result.best.run.name))


def grid_search(
    split,
    lambdas=DEFAULT_LAMBDAS,
    jobs=1,
    on_run=None,
    *,
    scheduler=None,
    executor=None,
    folder=None,
    data_info=None,
    progress=None,
    **params,
):
    """Train MF-λFix for every λ in ``lambdas`` (other settings: ``params``, as for
    :class:`~lopt_np.trainer.LambdaOpt`); select the value with the best validation
    ``params["early_stopping"]`` metric (default hr@100). ``on_run(run, n_done, n_total)`` is
    called as each value finishes. ``jobs``/``scheduler`` (or an open ``executor``): where the
    runs train (:class:`~lopt_np.sweep.Executor`); ``folder``: a
    :class:`~lopt_np.sweep.SweepFolder` that receives each finished run (its runs already there
    are not trained again). Returns ``(GridResult, selected model)``."""
    params = dict(params)
    lambdas, cfg = check_grid(lambdas, params, jobs, scheduler)
    runs = grid_runs(params, lambdas)
    done = []

    def finished(outcome):
        done.append(outcome)
        if on_run:
            on_run(GridRun.of(outcome), len(done), len(runs))

    t0 = time.perf_counter()
    with (
        contextlib.nullcontext(executor)
        if executor
        else Executor(jobs, scheduler, cfg.threads) as ex
    ):
        outcomes = run_plan(
            ex,
            folder,
            runs,
            {"data": split},
            {"data": data_info or {}},
            progress=progress,
            on_outcome=finished,
            title="MF-λFix",
        )
    result = select_grid(outcomes, runs, cfg.early_stopping, time.perf_counter() - t0, jobs)
    return result, selected_model(result, folder)


def save_grid(folder, result, model, split, data_info, params, wall_seconds, sweep=None):
    """Write a grid's files into ``folder``: ``grid.csv`` (one row per λ), ``grid.json`` (the
    rows, the selection, the sweep's wall time and the sum of the runs' times), and the
    selected model's run files (``lopt_np.io.save_run``; for a run read back from a resumed
    grid, its files copied from the :class:`~lopt_np.sweep.SweepFolder` ``sweep``) with
    ``summary.txt``. Returns the summary text."""
    best, runs = result.best, result.runs
    pd.DataFrame(result.rows()).to_csv(os.path.join(folder, "grid.csv"), index=False)
    lambdas = [r.lam for r in runs]
    write_json(
        os.path.join(folder, "grid.json"),
        {
            "lambdas": lambdas,
            "select": result.select,
            "selected_lambda": best.lam,
            "runs": result.rows(),
            "sweep_wall_seconds": result.wall_seconds,
            "sum_of_run_seconds": sum(r.wall_seconds for r in runs),
            "jobs": result.jobs,
            "wall_seconds": wall_seconds,
            "train": params,
            "data": data_info,
        },
    )
    lines = [
        f"MF-λFix grid over λ ∈ {{{', '.join(f'{x:g}' for x in lambdas)}}}",
        format_summary(data_info),
        "",
        "λ          valid "
        + result.select
        + "   "
        + "  ".join(f"test {k}" for k in best.test)
        + "   seconds",
    ]
    for r in runs:
        if r.failed:
            lines.append(f"{r.lam:<10g} {'failed':>10}   {r.failed}")
            continue
        mark = "  <- selected" if r is best else ""
        lines.append(
            f"{r.lam:<10g} {r.valid[result.select]:>10.4f}   "
            + "  ".join(f"{v:>{len(k) + 5}.4f}" for k, v in r.test.items())
            + f"   {r.wall_seconds:7.1f}{mark}"
        )
    lines += [
        "",
        f"selected λ = {best.lam:g} (best validation {result.select}); "
        f"test: {format_metrics(best.test)}",
        f"sweep wall time {result.wall_seconds:.1f} s ({result.jobs} at a time; the runs "
        f"took {sum(r.wall_seconds for r in runs):.1f} s in all)",
    ]
    text = "\n".join(lines) + "\n"
    save_outcome(folder, best, split, {**data_info, "wall_seconds": wall_seconds}, text, sweep)
    return text
