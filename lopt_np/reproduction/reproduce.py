"""Table 2 of the paper on one dataset: MF-λFix (grid), SGDA, AMF, NeuMF and MF-λOpt-D/-DU/-DI/
-DUI under one protocol (SPEC §7), with each row's time and its gain over MF-λFix.

Every method shares the MF configuration (``train`` parameters: K, batch, Θ optimizer and
learning rate, epochs, early stopping, seed). MF-λFix is the grid's selected λ; AMF and NeuMF
start from that model (the paper's "after MF-λFix converges" and "pre-trained with MF-λFix")
and use its λ. Files (in a folder written whole or not at all): ``table2.csv``, ``table2.md``,
``table2.json`` (settings, data, every row) and one sub-folder per method with its run files
(``MF-lFix/`` holds the grid; ``lopt plot`` draws Figures 1, 6, 7 and 8 from the folder).
"""

import contextlib
import dataclasses
import os
import time

import numpy as np
import pandas as pd

from .baselines import AMF_EPS_GRID, BaselineConfig, fit_amf, fit_neumf, sgda_params
from ..errors import ConfigError, TrainingDivergedError
from .grid import (
    DEFAULT_LAMBDAS,
    check_lambdas,
    fixed_lambda_params,
    grid_runs,
    save_grid,
    select_grid,
    selected_model,
)
from ..io import format_metrics, run_summary, write_json
from ..sweep import Executor, Run, run_plan, save_outcome
from ..trainer import LambdaOpt

TABLE_METRICS = ("auc", "hr@50", "hr@100", "ndcg@50", "ndcg@100")
LOPT_GRANULARITIES = ("D", "DU", "DI", "DUI")
SGDA_LRS = (10.0, 30.0, 100.0)  # SGD step sizes tried for SGDA (select_sgd_lr)
METHODS = ("MF-λFix", "SGDA", "AMF", "NeuMF") + tuple(f"MF-λOpt-{g}" for g in LOPT_GRANULARITIES)


def folder_name(method):
    """ASCII folder of a method's run files (``MF-λOpt-DUI`` → ``MF-lOpt-DUI``)."""
    return method.replace("λ", "l")


def check_methods(methods):
    """The methods in the paper's row order; ASCII spellings (``MF-lOpt-DUI``) accepted."""
    by_name = {**{folder_name(m): m for m in METHODS}, **{m: m for m in METHODS}}
    unknown = [m for m in methods if m not in by_name]
    methods = tuple(by_name[m] for m in methods if m in by_name)
    if unknown:
        raise ConfigError(
            f"unknown method(s) {', '.join(unknown)}; expected some of "
            f"{', '.join(folder_name(m) for m in METHODS)}"
        )
    if not methods:
        raise ConfigError("no method to run")
    return tuple(m for m in METHODS if m in methods)  # the paper's row order


def _seconds(per_epoch):
    """Training seconds in all and the median per epoch (evaluation excluded), of the
    per-epoch training seconds."""
    return float(sum(per_epoch)), float(np.median(per_epoch)), len(per_epoch)


def check_settings(train, lopt, sgda_lrs, baseline, lambdas, methods, amf_eps=AMF_EPS_GRID):
    """Validate every setting of :func:`reproduce` (before any data is read); returns the
    checked ``(methods, lambdas)``."""
    methods = check_methods(methods)
    lambdas = check_lambdas(lambdas)
    LambdaOpt(**{**train, **lopt})
    if train.get("eval_every", 1) != 1:
        raise ConfigError(
            "the reproduction selects every model by its validation metric: eval_every must be 1"
        )
    if not sgda_lrs:
        raise ConfigError("give at least one SGD step size for SGDA")
    for lr in sgda_lrs:
        try:
            LambdaOpt(**sgda_params({**train, **lopt}, lr))
        except ConfigError as exc:
            raise ConfigError(f"SGDA step size: {exc}") from None
    if not amf_eps:
        raise ConfigError("give at least one ε for AMF")
    try:
        for eps in amf_eps:
            BaselineConfig(**{**baseline, "adv_eps": eps}).validate()
    except ConfigError as exc:
        raise ConfigError(f"AMF/NeuMF setting: {exc}") from None
    return methods, lambdas


def sgd_lr_runs(train, lam, lrs):
    """The paper's SGDA tuning flow, first half, as sweep runs: MF-λFix with SGD (λ = the
    grid's) at each step size in ``lrs``."""
    return [
        Run(
            f"SGDA-lr={lr:g}",
            fixed_lambda_params({**train, "optimizer": "sgd", "lr": lr}, lam),
            settings={"lr": lr},
        )
        for lr in lrs
    ]


def select_sgd_lr(outcomes, runs, select, log=print):
    """The best SGD step size by the validation metric and ``[(lr, score)]``; a diverging step
    size scores −inf."""
    scores = []
    for run in runs:
        outcome = outcomes[run.name]
        score = -np.inf if outcome.failed else outcome.valid[select]
        log(f"  SGD MF-λFix lr={run.settings['lr']:g}: valid {select} {score:.4f}")
        scores.append((run.settings["lr"], float(score)))
    best = max(scores, key=lambda x: x[1])
    if not np.isfinite(best[1]):
        raise TrainingDivergedError(
            f"SGD diverged at every step size {[lr for lr, _ in scores]}; give smaller ones"
        )
    return best[0], scores


def reproduce(
    split,
    folder,
    data_info,
    train,
    lopt,
    sgda_lrs,
    baseline,
    lambdas=DEFAULT_LAMBDAS,
    jobs=1,
    methods=METHODS,
    amf_eps=AMF_EPS_GRID,
    log=print,
    *,
    executor=None,
    sweep=None,
    progress=None,
):
    """Run the methods on ``split``, write their files into ``folder`` and the table; returns
    the table's rows (dicts).

    ``train``: :class:`~lopt_np.trainer.LambdaOpt` parameters shared by every MF row;
    ``lopt``: the Λ settings of the λOpt rows (``lambda_lr``, ``lambda_optimizer``, …);
    ``sgda_lrs``: SGD step sizes tried for SGDA (:func:`select_sgd_lr`); ``amf_eps``: the
    perturbation norms ε tried for AMF (the best by validation is kept, the row's wall time
    counts every try); ``baseline``: :class:`~lopt_np.reproduction.baselines.BaselineConfig` fields for AMF
    and NeuMF (``lam`` is taken from the grid). The MF trainings (the grid, the λOpt rows
    with it, then SGDA's step sizes, then SGDA) run on ``executor`` (or one made for
    ``jobs``, :class:`~lopt_np.sweep.Executor`); with ``sweep`` (a
    :class:`~lopt_np.sweep.SweepFolder`, whose ``partial`` is ``folder``) each is written as it
    finishes and a resumed reproduction trains only those missing. AMF and NeuMF start from
    the grid's model and train here.
    """
    methods, lambdas = check_settings(train, lopt, sgda_lrs, baseline, lambdas, methods, amf_eps)
    select = train.get("early_stopping", "hr@100")
    rows, t_start = [], time.perf_counter()

    def add_row(method, metrics, epoch_seconds, best_epoch, wall, extra=None):
        total, per_epoch, n = _seconds(epoch_seconds)
        row = {
            "method": method,
            **{m: metrics[m] for m in TABLE_METRICS},
            "best_epoch": best_epoch,
            "epochs_run": n,
            "train_seconds": total,
            "seconds_per_epoch": per_epoch,
            "wall_seconds": wall,
            **(extra or {}),
        }
        rows.append(row)
        log(
            f"{method}: {format_metrics({m: metrics[m] for m in TABLE_METRICS})} "
            f"({wall:.1f} s, {per_epoch:.2f} s/epoch)"
        )
        return row

    def lambda_opt_row(method, outcome):
        if outcome.failed:
            raise TrainingDivergedError(f"{method}: {outcome.failed}")
        save_outcome(
            _subfolder(folder, method),
            outcome,
            split,
            data_info,
            run_summary(method, data_info, outcome.best_epoch, outcome.wall_seconds, outcome.test),
            sweep,
        )
        add_row(
            method, outcome.test, outcome.epoch_seconds, outcome.best_epoch, outcome.wall_seconds
        )

    # the MF trainings that depend on nothing: the MF-λFix grid (always run: the gains are
    # relative to it, AMF/NeuMF start from it) and the λOpt rows
    lopt_runs = [
        Run(
            folder_name(f"MF-λOpt-{g}"),
            {**train, **lopt, "granularity": g, "learn_lambda": True},
            settings={"method": f"MF-λOpt-{g}"},
        )
        for g in LOPT_GRANULARITIES
        if f"MF-λOpt-{g}" in methods
    ]
    grid = grid_runs(train, lambdas)
    grid = [dataclasses.replace(r, name=f"MF-lFix-{r.name}") for r in grid]
    with (
        contextlib.nullcontext(executor)
        if executor
        else Executor(jobs, None, train.get("threads", 0)) as ex
    ):
        if progress is not None:
            progress.total = (
                len(grid) + len(lopt_runs) + (len(sgda_lrs) + 1 if "SGDA" in methods else 0)
            )
        log(
            f"MF-λFix: grid of {len(lambdas)} λ values"
            + (f" and the λOpt rows ({', '.join(r.name for r in lopt_runs)})" if lopt_runs else "")
            + f", {ex.slots} at a time"
        )
        t0 = time.perf_counter()
        first = run_plan(
            ex,
            sweep,
            grid + lopt_runs,
            {"data": split},
            {"data": data_info},
            progress=progress,
            title="Table 2 run",
        )
        result = select_grid(first, grid, select, time.perf_counter() - t0, jobs)
        mf = selected_model(result, sweep)
        save_grid(
            _subfolder(folder, "MF-λFix"),
            result,
            mf,
            split,
            data_info,
            train,
            time.perf_counter() - t0,
            sweep,
        )
        lam = result.best.lam
        add_row(
            "MF-λFix",
            result.best.test,
            result.best.epoch_seconds,
            result.best.best_epoch,
            result.best.wall_seconds,
            {
                "lambda": lam,
                "grid_wall_seconds": result.wall_seconds,
                "grid_sum_of_run_seconds": sum(r.wall_seconds for r in result.runs),
            },
        )

        sgda_search = []
        sgda_row = None
        if "SGDA" in methods:
            t0 = time.perf_counter()
            sgd = sgd_lr_runs(train, lam, sgda_lrs)
            searched = run_plan(
                ex,
                sweep,
                sgd,
                {"data": split},
                {"data": data_info},
                progress=progress,
                title="SGD MF-λFix",
            )
            lr, sgda_search = select_sgd_lr(searched, sgd, select, log)
            search_seconds = sum(searched[r.name].wall_seconds for r in sgd)
            sgda = Run("SGDA", sgda_params({**train, **lopt}, lr), settings={"method": "SGDA"})
            sgda_row = (
                run_plan(
                    ex,
                    sweep,
                    [sgda],
                    {"data": split},
                    {"data": data_info},
                    progress=progress,
                    title="SGDA",
                )["SGDA"],
                lr,
                search_seconds,
                time.perf_counter() - t0,
            )
    if sgda_row is not None:
        outcome, lr, search_seconds, _ = sgda_row
        lambda_opt_row("SGDA", outcome)
        rows[-1].update(lr=lr, lr_search_seconds=search_seconds)
    amf_search = []
    for method, fit in (("AMF", fit_amf), ("NeuMF", fit_neumf)):
        if method not in methods:
            continue
        t0 = time.perf_counter()
        candidates = amf_eps if method == "AMF" else (None,)
        best_model, best_score = None, -np.inf
        for eps in candidates:  # AMF: ε chosen by the validation metric (APR's tuning)
            settings = {**baseline, "lam": lam, **({"adv_eps": eps} if eps else {})}
            model = fit(
                split,
                mf.P,
                mf.Q,
                BaselineConfig(**settings),
                progress=lambda name, r: log(
                    f"  {name} epoch {r['epoch']}: valid {format_metrics(r['valid'])}"
                ),
            )
            score = next(h for h in model.history if h["epoch"] == model.best_epoch)["valid"][
                select
            ]
            if method == "AMF":
                amf_search.append((eps, score))
                log(f"  AMF ε={eps:g}: valid {select} {score:.4f}")
            if score > best_score:
                best_model, best_score = model, score
        result = best_model.evaluate(split, "test")
        wall = time.perf_counter() - t0
        _save_baseline(_subfolder(folder, method), best_model, result, data_info)
        add_row(
            method,
            result["metrics"],
            [h["train_seconds"] for h in best_model.history],
            best_model.best_epoch,
            wall,
            {"adv_eps": best_model.config["adv_eps"]} if method == "AMF" else None,
        )
    for run in lopt_runs:
        lambda_opt_row(run.settings["method"], first[run.name])

    base = rows[0]
    for row in rows:
        for m in TABLE_METRICS:
            row[f"gain_{m}"] = row[m] / base[m] - 1.0 if base[m] else float("nan")
        row["epoch_cost_vs_fix"] = row["seconds_per_epoch"] / base["seconds_per_epoch"]
    write_table(
        folder,
        rows,
        {
            "data": data_info,
            "train": train,
            "lambda_opt": lopt,
            "sgda_lrs": list(sgda_lrs),
            "sgda_lr_search": sgda_search,
            "amf_eps": list(amf_eps),
            "amf_eps_search": amf_search,
            "baseline": baseline,
            "lambdas": lambdas,
            "jobs": jobs,
            "methods": list(methods),
            "wall_seconds": time.perf_counter() - t_start,
        },
    )
    return rows


def planned_runs(train, lopt, lambdas, methods):
    """The MF trainings of a reproduction known before any result (what ``--resume``
    checks): the grid and the λOpt rows."""
    methods = check_methods(methods)
    grid = [dataclasses.replace(r, name=f"MF-lFix-{r.name}") for r in grid_runs(train, lambdas)]
    return grid + [
        Run(folder_name(f"MF-λOpt-{g}"), {**train, **lopt, "granularity": g, "learn_lambda": True})
        for g in LOPT_GRANULARITIES
        if f"MF-λOpt-{g}" in methods
    ]


def _subfolder(folder, method):
    path = os.path.join(folder, folder_name(method))
    os.makedirs(path, exist_ok=True)
    return path


def _save_baseline(folder, model, result, data_info):
    np.savez_compressed(os.path.join(folder, "model.npz"), **model.params)
    write_json(os.path.join(folder, "config.json"), {"train": model.config, "data": data_info})
    write_json(
        os.path.join(folder, "metrics.json"),
        {
            "test": result["metrics"],
            "groups": result["groups"],
            "best_epoch": model.best_epoch,
            "history": model.history,
        },
    )


def markdown_table(rows):
    """Table 2's layout: one row per method, the five metrics with the gain over MF-λFix,
    then the times."""
    head = (
        "| Method | "
        + " | ".join(
            m.upper() if m == "auc" else m.replace("hr", "HR").replace("ndcg", "NDCG")
            for m in TABLE_METRICS
        )
        + " | best epoch | s/epoch (× λFix) | train s | wall s |"
    )
    lines = [head, "|" + "---|" * (len(TABLE_METRICS) + 5)]
    for r in rows:
        cells = [
            f"{r[m]:.4f}" if r is rows[0] else f"{r[m]:.4f} ({r[f'gain_{m}']:+.1%})"
            for m in TABLE_METRICS
        ]
        name = r["method"] + (f" (λ={r['lambda']:g})" if "lambda" in r else "")
        wall = f"{r['wall_seconds']:.0f}"
        if "grid_wall_seconds" in r:
            wall += f" (grid {r['grid_sum_of_run_seconds']:.0f})"
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {r['best_epoch']} | "
            f"{r['seconds_per_epoch']:.2f} ({r['epoch_cost_vs_fix']:.1f}×) | "
            f"{r['train_seconds']:.0f} | {wall} |"
        )
    return "\n".join(lines) + "\n"


def write_table(folder, rows, settings):
    pd.DataFrame(rows).to_csv(os.path.join(folder, "table2.csv"), index=False)
    write_json(os.path.join(folder, "table2.json"), {**settings, "rows": rows})
    with open(os.path.join(folder, "table2.md"), "w") as fh:
        fh.write(markdown_table(rows))
