"""The ``lopt`` command (Click); besides it only ``lopt_np.progress`` draws with click.

Commands: ``lopt train``, ``lopt grid``, ``lopt reproduce``, ``lopt sweep``, ``lopt plot``,
``lopt gradcheck``, ``lopt data stats``, ``lopt evaluate``, ``lopt recommend``, ``lopt similar``,
``lopt score``.
Every error lopt_np raises on purpose becomes one ``Error: …`` line and exit status 1.
"""

import contextlib
import dataclasses
import functools
import inspect
import math
import os
import sys
import time

import click
from click.core import ParameterSource

from lopt_np.data.inputs import PAPER_MIN_COUNT, DataConfig
from lopt_np.errors import LoptError
from lopt_np.math.granularity import GRANULARITIES
from lopt_np.io import format_metrics, format_summary, metric_label
from lopt_np.reproduction.baselines import AMF_EPS_GRID, BaselineConfig
from lopt_np.reproduction.reproduce import METHODS, SGDA_LRS, folder_name
from lopt_np.progress import ConsoleProgress, JsonLinesLog, StopOnSignal, Tee
from lopt_np.settings import declared
from lopt_np.trainer import PRESETS, TrainConfig

GRANULARITY_NAMES = tuple(GRANULARITIES)
D = TrainConfig()  # every training option's default comes from here
B = BaselineConfig()  # and AMF's and NeuMF's (lopt reproduce)
DATA = DataConfig()  # and every data option's
METHOD_NAMES = tuple(folder_name(m) for m in METHODS)  # ASCII spellings (MF-lOpt-DUI)


def friendly_errors(fn):
    """Turn lopt_np's own exceptions into ``Error: …`` (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LoptError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


def parse_ks(ctx, param, value):
    try:
        ks = tuple(int(k) for k in str(value).split(",") if k.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter(f"expected positive integers, got {value!r}")
    return ks


POSITIVE = click.FloatRange(min=0, min_open=True)
NONNEG = click.FloatRange(min=0)


GROUP_ORDER = ("Data", "Model", "λOpt", "Training", "Run", "Final fit", "Sweep", "Output")


class GroupedCommand(click.Command):
    """A command whose ``--help`` lists its options by group (data, model, λOpt, training,
    output, …): each option carries the ``group`` its decorator gave it."""

    def format_options(self, ctx, formatter):
        groups = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                groups.setdefault(getattr(param, "group", "Other options"), []).append(record)
        for title in sorted(
            groups, key=lambda t: GROUP_ORDER.index(t) if t in GROUP_ORDER else len(GROUP_ORDER)
        ):
            records = groups[title]
            with formatter.section(title):
                formatter.write_dl(records)


def option_group(title, opts):
    """A decorator adding ``opts`` (click.option decorators), each marked with ``title``."""

    def decorate(fn):
        before = len(getattr(fn, "__click_params__", []))
        for opt in reversed(opts):
            fn = opt(fn)
        for param in fn.__click_params__[before:]:
            param.group = title
        return fn

    return decorate


def time_column(ctx, param, value):
    return None if value.lower() in ("none", "") else value


def data_options(min_count=DATA.min_count, multiple=False):
    """Options naming the interaction data (or the embedded synthetic default) and its split;
    defaults from ``DataConfig`` (``min_count``: 20 for the paper's protocol); ``multiple``:
    ``--data`` may be given several times (a sweep over datasets)."""
    return option_group(
        "Data",
        [
            click.option(
                "--data",
                "data_path",
                type=click.Path(dir_okay=True),
                multiple=multiple,
                help="Interaction file (repeatable: every run on each file)."
                if multiple
                else "Interaction file. Omit to use the built-in synthetic dataset.",
            ),
            config_option("fmt", DataConfig, decls=("--format", "fmt")),
            config_option("user_col", DataConfig),
            config_option("item_col", DataConfig),
            config_option("time_col", DataConfig, callback=time_column),
            config_option("sep", DataConfig, show_default=False),
            config_option("min_count", DataConfig, default=min_count),
            config_option("kcore", DataConfig, decls=("--kcore/--single-pass",)),
            config_option("split", DataConfig),
            config_option("split_seed", DataConfig),
            config_option("valid_frac", DataConfig),
            config_option("test_frac", DataConfig),
            config_option("cache", DataConfig),
            click.option(
                "--synthetic-users",
                default=943,
                show_default=True,
                type=click.IntRange(min=10),
                help="Users of the synthetic dataset.",
            ),
            click.option(
                "--synthetic-items",
                default=1682,
                show_default=True,
                type=click.IntRange(min=50),
                help="Items of the synthetic dataset.",
            ),
            click.option(
                "--data-seed",
                default=0,
                show_default=True,
                type=int,
                help="Seed of the synthetic dataset.",
            ),
        ],
    )


def load_data(
    data_path,
    fmt,
    user_col,
    item_col,
    time_col,
    sep,
    min_count,
    kcore,
    split,
    split_seed,
    valid_frac,
    test_frac,
    cache,
    synthetic_users,
    synthetic_items,
    data_seed,
):
    """``(split, data_info)`` from the data options."""
    from lopt_np.data.inputs import DataConfig, to_split
    from lopt_np.data.synthetic import synthetic_interactions

    config = DataConfig(
        user_col=user_col,
        item_col=item_col,
        time_col=time_col,
        fmt=fmt,
        sep=sep,
        min_count=min_count,
        kcore=kcore,
        valid_frac=valid_frac,
        test_frac=test_frac,
        split=split,
        split_seed=split_seed,
        cache=cache,
    )
    if data_path is None:
        df = synthetic_interactions(synthetic_users, synthetic_items, seed=data_seed)
        result = to_split(
            df, dataclasses.replace(config, user_col="user", item_col="item", time_col="timestamp")
        )
        source = {
            "source": "synthetic",
            "synthetic_users": synthetic_users,
            "synthetic_items": synthetic_items,
            "data_seed": data_seed,
        }
    else:
        result = to_split(data_path, config)
        source = {"source": os.path.abspath(data_path), "format": fmt}
    return result, {**source, **config.split_options(), **result.summary()}


class LoptGroup(click.Group):
    command_class = GroupedCommand
    group_class = type  # subgroups are LoptGroups too


@click.group(cls=LoptGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lopt_np")
def main():
    """λOpt: learn fine-grained L2 regularization of MF-BPR during training."""
    import warnings

    warnings.formatwarning = lambda message, *args, **kwargs: f"Warning: {message}\n"


def config_option(name, config=TrainConfig, decls=None, **overrides):
    """The ``--name`` option of a setting ``config`` declares (``lopt_np.settings``): default,
    help text and type (choices, bounds) read from the declaration; ``decls`` replaces the
    spelling (``("--format", "fmt")``) and ``overrides`` any keyword (a narrower choice)."""
    f = declared(config)[name]
    flag = "--" + name.replace("_", "-")
    kw = dict(default=f.default, show_default=True, help=f.metadata["help"])
    if f.type is bool:
        decls = decls or (f"{flag}/--no-{flag[2:]}",)
    else:
        decls = decls or (flag,)
        kw["type"] = click_type(f)
    kw.update(overrides)
    return click.option(*decls, **kw)


def click_type(f):
    """A declared setting's click type: its choices, or its bounds as a range."""
    m = f.metadata
    if m["choices"] is not None:
        return click.Choice(m["choices"])
    if m["low"] is None and m["high"] is None:
        return f.type if f.type in (int, float) else str  # Optional[str]: str
    bounded = click.IntRange if f.type is int else click.FloatRange
    return bounded(min=m["low"], max=m["high"], min_open=m["low_open"], max_open=m["high_open"])


def training_options(fn):
    """Options of the MF-BPR training shared by ``lopt train``, ``lopt grid`` and
    ``lopt reproduce``."""
    model = option_group(
        "Model", [config_option("dim"), config_option("init_std"), config_option("scope")]
    )
    training = option_group(
        "Training",
        [
            config_option("optimizer"),
            config_option("lr"),
            config_option("eps"),
            config_option("eps_placement"),
            config_option("batch_size"),
            config_option("epochs"),
            config_option("selection_frac"),
            config_option("eval_every"),
            config_option("early_stopping"),
            config_option("patience"),
            config_option("ks", default=",".join(map(str, D.ks)), type=str, callback=parse_ks),
            config_option("seed"),
            config_option("device", type=click.Choice(["cpu", "cuda"])),
            config_option("threads"),
        ],
    )
    output = option_group(
        "Output",
        [
            click.option(
                "--out",
                "out_dir",
                default="lopt-run",
                show_default=True,
                type=click.Path(file_okay=False),
                help="Output directory.",
            ),
            click.option("--overwrite", is_flag=True, help="Replace a non-empty --out."),
        ],
    )
    return model(training(output(fn)))


run_options = option_group(
    "Run",
    [
        click.option(
            "--time-budget",
            default=None,
            type=POSITIVE,
            help="Stop after the epoch that passes this many seconds of training (the "
            "best epoch is kept).",
        ),
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            help="No progress output; only the data summary and the results.",
        ),
        click.option(
            "--log-json",
            type=click.Path(dir_okay=False),
            help="Append the step reports and epoch records to this JSON-lines file.",
        ),
        click.option(
            "--compare/--no-compare",
            default=None,
            help="Also train MF-λFix at a small λ grid on the same split and print a "
            "comparison table (default: on for the synthetic data, off with --data).",
        ),
        click.option(
            "--checkpoint-every",
            default=0,
            show_default=True,
            type=click.IntRange(min=0),
            help="Write a checkpoint to --out.checkpoint every N epochs (0: none); an "
            "interrupted run then continues with --resume.",
        ),
        click.option(
            "--resume",
            type=click.Path(file_okay=False),
            help="Continue the interrupted run RUN from its last checkpoint, with its own "
            "settings, to the result it would have reached (cpu).",
        ),
    ],
)


def lambda_options(fn):
    """Options of λOpt's Λ update, shared by ``lopt train`` and ``lopt reproduce``."""
    shown = {"lambda_clip": dict(default=clip_option(D.lambda_clip))}  # inf is shown as none
    opts = option_group(
        "λOpt",
        [
            config_option(name, **shown.get(name, {}))
            for name in (
                "valid_batch_size",
                "lambda_init",
                "lambda_optimizer",
                "lambda_lr",
                "lambda_clip",
                "lambda_update_interval",
                "lambda_eps",
                "lambda_rows",
                "lambda_eps_placement",
                "lookahead_scope",
                "lookahead_eps_placement",
                "lookahead_count",
                "assumed_penalty",
                "lambda_warmup_steps",
                "shared_assumed_state",
                "lookahead_batches",
            )
        ],
    )
    fn = opts(fn)
    return option_group(
        "λOpt",
        [
            click.option(
                "--preset",
                default="default",
                show_default=True,
                type=click.Choice(tuple(PRESETS)),
                help="Named settings: default (the measured best, see the README's Accuracy), spec "
                "(SPEC §3-§5's lookahead semantics) or authors (their code, with its ML-1M "
                "settings: N(0,1) init, no selection hold-out); options given explicitly win.",
            )
        ],
    )(fn)


def selection_count(split, fraction):
    """How many validation interactions ``--selection-frac`` holds out from Λ."""
    from lopt_np.data.split import hold_out_selection

    return len(hold_out_selection(split, fraction).selection)


def apply_preset(opts):
    """Replace the options a user did not give by the ``--preset``'s values (in place)."""
    ctx = click.get_current_context()
    for key, value in PRESETS[opts.pop("preset")].items():
        if key in opts and ctx.get_parameter_source(key) == click.core.ParameterSource.DEFAULT:
            opts[key] = value


def clip_value(clip):
    return math.inf if clip is None else clip


def clip_option(clip):
    """A clip's default as the option shows it (None: no clipping)."""
    return None if math.isinf(clip) else clip


@main.command()
@data_options()
@training_options
@run_options
@option_group(
    "Model",
    [config_option("granularity", type=click.Choice(GRANULARITY_NAMES, case_sensitive=False))],
)
@option_group(
    "λOpt",
    [
        click.option(
            "--fixed-lambda",
            is_flag=True,
            help="Do not learn Λ: MF-λFix with Λ = --lambda-init everywhere (give it).",
        )
    ],
)
@option_group(
    "Final fit",
    [
        click.option(
            "--final",
            is_flag=True,
            help="Then continue the kept model on every interaction (train, validation "
            "and test), and write that model for serving to --out/final.",
        ),
        config_option("final_epochs"),
        config_option("final_lambda"),
    ],
)
@lambda_options
@friendly_errors
def train(
    out_dir,
    overwrite,
    fixed_lambda,
    final,
    quiet,
    log_json,
    time_budget,
    compare,
    checkpoint_every,
    resume,
    **opts,
):
    """Train MF-BPR with λOpt (or a fixed λ), evaluate on test, write the run to --out."""
    import shutil
    from lopt_np.io import atomic_output_dir, check_output_dir, run_summary, save_run
    from lopt_np.trainer import LambdaOpt

    ctx = click.get_current_context()
    if resume:
        out_dir, setup = resume_setup(resume, ctx)
        opts, data = setup["train"], setup["data"]
        fixed_lambda, final, compare = setup["fixed_lambda"], setup["final"], setup["compare"]
        checkpoint_every, overwrite = setup["checkpoint_every"], True
    else:
        if fixed_lambda and ctx.get_parameter_source("lambda_init") == ParameterSource.DEFAULT:
            raise click.UsageError(
                "--fixed-lambda trains with the λ given by --lambda-init: "
                "give it (e.g. --lambda-init 0.01; 0 means no "
                "regularization). There is no default: the best λ differs "
                "by orders of magnitude between datasets (lopt grid finds "
                "it)."
            )
        apply_preset(opts)
        data = {k: opts.pop(k) for k in inspect.signature(load_data).parameters}
        opts["lambda_clip"] = clip_value(opts.pop("lambda_clip"))
        opts["learn_lambda"] = not fixed_lambda
        compare = data["data_path"] is None if compare is None else compare
    check_output_dir(out_dir, overwrite)
    est = LambdaOpt(**opts)  # validates every option before the data is read
    checkpoint_dir = os.path.abspath(out_dir) + ".checkpoint" if checkpoint_every else None
    setup = {
        "train": opts,
        "data": data,
        "fixed_lambda": fixed_lambda,
        "final": final,
        "compare": compare,
        "checkpoint_every": checkpoint_every,
    }
    t0 = time.perf_counter()
    split, data_info = load_data(**data)
    data_info["selection"] = selection_count(split, est.config.selection_frac)
    click.echo(format_summary(data_info))
    mode = "MF-λFix" if fixed_lambda else f"MF-λOpt-{est.config.granularity}"
    click.echo(
        f"training {mode} ({opts['optimizer']}, K={opts['dim']}, at most "
        f"{opts['epochs']} epochs) on {opts['device']}"
    )
    if not quiet and kernels_uncompiled():
        click.echo(
            "compiling the kernels (the first run after an install; about a minute, "
            "cached for later runs) …",
            err=True,
        )
    log = JsonLinesLog(log_json) if log_json else None
    signals = StopOnSignal()
    try:
        with atomic_output_dir(out_dir, overwrite) as tmp:
            with signals:
                model = est.fit(
                    split,
                    Tee(log, signals),
                    verbose=not quiet,
                    time_budget=time_budget,
                    checkpoint_dir=checkpoint_dir,
                    checkpoint_every=checkpoint_every or 1,
                    resume=bool(resume),
                    checkpoint_meta={"cli": setup},
                )
            result = model.evaluate(split, "test")
            wall = time.perf_counter() - t0
            text = run_summary(mode, data_info, model.best_epoch, wall, result["metrics"])
            save_run(tmp, model, split, result, {**data_info, "wall_seconds": wall}, text)
            click.echo(
                f"best epoch {model.best_epoch} of {len(model.history)} (stopped: "
                f"{model.stop_reason}); test: {format_metrics(result['metrics'])}"
            )
            if signals.signal_name:
                compare = final = False  # interrupted: write what there is, now
            if compare and not fixed_lambda:
                comparison = compare_with_fixed_lambda(split, opts, model, result, wall, quiet)
                write_comparison(tmp, comparison)
                click.echo(comparison["text"])
            if final:
                final_fit(est, model, split, data_info, quiet, tmp)
    finally:
        if log is not None:
            log.close()
    click.echo(
        f"wrote {out_dir}/ (model.npz, model.json, config.json, metrics.json, "
        f"lambda_trajectory.npz, split.npz, summary.txt"
        + (", comparison.csv/.json" if compare and not fixed_lambda else "")
        + (", final/: the model for serving" if final else "")
        + ")"
    )
    if signals.signal_name:
        resumable = (
            f"; continue it with: lopt train --resume {out_dir}"
            if checkpoint_dir and os.path.isdir(checkpoint_dir)
            else ""
        )
        click.echo(
            f"{model.stop_reason}: the run so far (kept epoch {model.best_epoch}) is "
            f"written to {out_dir}/{resumable}",
            err=True,
        )
        sys.exit(128 + {"SIGINT": 2, "SIGTERM": 15}[signals.signal_name])
    if checkpoint_dir and os.path.isdir(checkpoint_dir):
        shutil.rmtree(checkpoint_dir, ignore_errors=True)  # the run is complete
    click.echo(
        f"next: lopt plot {out_dir}  ·  lopt recommend "
        f"{os.path.join(out_dir, 'final') if final else out_dir} --user "
        f"{split.user_ids[0]} -n 10"
    )


RESUME_KEEPS = ("resume", "quiet", "log_json", "time_budget")


def resume_setup(run, ctx):
    """``(out_dir, settings)`` of the run a checkpoint belongs to (``--resume RUN``: the
    checkpoint is RUN.checkpoint, written by ``--checkpoint-every``)."""
    from lopt_np.checkpoint import has_checkpoint, load_checkpoint

    given = [
        name
        for name in ctx.params
        if name not in RESUME_KEEPS
        and ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    if given:
        raise click.UsageError(
            "--resume continues a run with its own settings; leave out "
            + ", ".join("--" + n.replace("_", "-") for n in given)
        )
    run = run.rstrip(os.sep)
    folder = run if has_checkpoint(run) else run + ".checkpoint"
    _, meta = load_checkpoint(folder)
    out_dir = folder[: -len(".checkpoint")] if folder.endswith(".checkpoint") else run
    setup = meta.get("cli")
    if not isinstance(setup, dict):
        raise click.ClickException(f"{folder} was not written by lopt train")
    click.echo(f"resuming {out_dir} after epoch {meta['epoch']}", err=True)
    return out_dir, setup


def kernels_uncompiled():
    """True when Numba's cache holds none of the CPU kernels yet (a first run compiles)."""
    from lopt_np.kernels.cpu import _cache

    return _cache.is_cold()


def final_fit(est, model, split, data_info, quiet, folder):
    n = est.config.final_epochs
    penalty = (
        "Λ fixed at the learned values" if est.config.final_lambda == "learned" else "no penalty"
    )
    click.echo(
        f"final fit: the kept model continues on all {data_info['interactions']:,} "
        f"interactions for {n} epochs, {penalty}"
    )
    progress = None if quiet else ConsoleProgress(n, label="final epoch")
    est.fit_final(model, split, progress).save(os.path.join(folder, "final"))


COMPARE_LAMBDAS = (0.1, 0.01, 0.001)
# the options MF-λFix shares with the λOpt run it is compared with (not the Λ learning's)
TRAINING_PARAMS = (
    "dim",
    "init_std",
    "scope",
    "optimizer",
    "lr",
    "eps",
    "eps_placement",
    "batch_size",
    "epochs",
    "selection_frac",
    "eval_every",
    "early_stopping",
    "patience",
    "ks",
    "seed",
    "device",
    "threads",
)


def compare_with_fixed_lambda(split, opts, model, result, seconds, quiet):
    """MF-λFix at :data:`COMPARE_LAMBDAS` on the same split and training options, the best by
    the validation metric, against the λOpt run: rows of a small table and where Λ went."""
    import numpy as np
    from lopt_np.reproduction.grid import grid_search
    from lopt_np.trainer import lambda_per_row

    click.echo(
        f"comparison: MF-λFix at λ ∈ {{{', '.join(map(str, COMPARE_LAMBDAS))}}}, same "
        f"split and training options …",
        err=True,
    )

    def report(run, done, total):
        if not quiet:
            click.echo(
                f"  [{done}/{total}] λ={run.lam:g}: valid {opts['early_stopping']} "
                f"{run.valid_text(opts['early_stopping'])} ({run.wall_seconds:.1f} s)",
                err=True,
            )

    fix_opts = {k: v for k, v in opts.items() if k in TRAINING_PARAMS}
    grid, fix_model = grid_search(split, COMPARE_LAMBDAS, on_run=report, **fix_opts)
    best = grid.best
    rows = []
    for metric, ours in result["metrics"].items():
        theirs = best.test[metric]
        rows.append(
            {
                "metric": metric,
                "lambda_opt": ours,
                "best_lambda_fix": theirs,
                "gain": ours / theirs - 1 if theirs else float("nan"),
            }
        )
    lam_P = lambda_per_row(model.lambda_P, split.n_users)
    freq = split.user_frequency()
    order = np.argsort(freq, kind="stable")
    tenth = max(1, len(order) // 10)
    least, most = float(lam_P[order[:tenth]].mean()), float(lam_P[order[-tenth:]].mean())
    lines = [f"{'metric':<10} {'λOpt':>8} {f'λFix (λ={best.lam:g})':>16} {'gain':>8}"]
    for r in rows:
        lines.append(
            f"{metric_label(r['metric']):<10} {r['lambda_opt']:>8.4f} {r['best_lambda_fix']:>16.4f} "
            f"{r['gain']:>+8.1%}"
        )
    lines.append(
        f"{'seconds':<10} {seconds:>8.1f} {best.wall_seconds:>16.1f}   (grid total "
        f"{sum(r.wall_seconds for r in grid.runs):.1f})"
    )
    lines.append(
        f"where Λ went: mean Λ^P of the 10 % least active users {least:.3g}, of the "
        f"10 % most active {most:.3g}"
    )
    return {
        "rows": rows,
        "lambda_fix": best.lam,
        "lambda_fix_seconds": best.wall_seconds,
        "lambda_opt_seconds": seconds,
        "mean_lambda_P_least_active": least,
        "mean_lambda_P_most_active": most,
        "lambda_fix_history": [
            {"epoch": h["epoch"], "valid": h["valid"]} for h in fix_model.history if "valid" in h
        ],
        "text": "\n".join(lines),
    }


def write_comparison(folder, comparison):
    import pandas as pd
    from lopt_np.io import write_json

    pd.DataFrame(comparison["rows"]).to_csv(os.path.join(folder, "comparison.csv"), index=False)
    write_json(
        os.path.join(folder, "comparison.json"),
        {k: v for k, v in comparison.items() if k != "text"},
    )


def parse_lambdas(ctx, param, value):
    try:
        return tuple(float(x) for x in str(value).split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def grid_options(fn):
    """The MF-λFix grid's λ values, shared by ``lopt grid`` and ``lopt reproduce``."""
    return click.option(
        "--lambdas",
        default="10,1,0.1,0.01,0.001,0.0001,0.00001,0",
        show_default=True,
        callback=parse_lambdas,
        help="The global λ values of the MF-λFix grid.",
    )(fn)


sweep_options = option_group(
    "Sweep",
    [
        click.option(
            "--jobs",
            default=1,
            show_default=True,
            type=click.IntRange(min=1),
            help="Train this many runs at once on a Dask LocalCluster of as many worker "
            "processes (CPU; the cores are split among them; 1: in this process, "
            "no cluster). Needs the dask extra.",
        ),
        click.option(
            "--scheduler",
            default=None,
            metavar="tcp://HOST:8786",
            help="Submit the runs to the running Dask cluster of this scheduler instead "
            "(started with `dask scheduler` and `dask worker`).",
        ),
        click.option(
            "--resume",
            is_flag=True,
            help="Continue the stopped sweep kept in OUT.partial: train only the runs "
            "it has not finished (give the same options).",
        ),
        click.option(
            "--log-json",
            type=click.Path(dir_okay=False),
            help="Append a JSON record per finished run to this JSON-lines file.",
        ),
        click.option("--quiet", "-q", is_flag=True, help="No progress lines; only the results."),
    ],
)


@contextlib.contextmanager
def sweep_session(out_dir, overwrite, resume, jobs, scheduler, threads, log_json):
    """The folder, the executor and the JSON log of a sweep command; Ctrl-C or SIGTERM ends it
    with one line (the cluster shut down, the finished runs kept for ``--resume``)."""
    from lopt_np.sweep import Executor, Interrupted, SweepFolder, interrupt_on_signals

    folder = SweepFolder(out_dir, overwrite, resume)
    log = JsonLinesLog(log_json) if log_json else None
    kept = (
        "; its finished runs are kept in {partial}: run the same command with --resume "
        "to train only the rest"
    )
    try:
        with folder, interrupt_on_signals(), Executor(jobs, scheduler, threads) as executor:
            yield folder, executor, log
    except Interrupted as exc:
        where = (
            kept.format(partial=folder.partial)
            if os.path.isdir(folder.partial)
            else " before any run had finished"
        )
        click.echo(f"\n{exc.signal_name}: stopped{where}", err=True)
        sys.exit(128 + {"SIGINT": 2, "SIGTERM": 15}[exc.signal_name])
    except LoptError as exc:
        if os.path.isdir(folder.partial) and folder.finished():
            raise LoptError(f"{exc}{kept.format(partial=folder.partial)}") from None
        raise
    finally:
        if log is not None:
            log.close()


def plan_of(runs, kind, data_info):
    """What ``--resume`` must find unchanged: the runs' parameters (threads aside) and data."""
    return {
        "kind": kind,
        "data": data_info,
        "runs": {r.name: {k: v for k, v in r.params.items() if k != "threads"} for r in runs},
    }


@main.command()
@data_options()
@training_options
@grid_options
@sweep_options
@friendly_errors
def grid(out_dir, overwrite, lambdas, jobs, scheduler, resume, log_json, quiet, **opts):
    """MF-λFix grid search over a global λ: one training per value, selection by the validation
    --early-stopping metric, test metrics of every value; writes grid.csv/grid.json, each value's
    run under runs/ and the selected model to --out."""
    from lopt_np.reproduction.grid import check_grid, grid_runs, grid_search, save_grid
    from lopt_np.sweep import SweepProgress

    data = {k: opts.pop(k) for k in inspect.signature(load_data).parameters}
    lambdas, cfg = check_grid(lambdas, opts, jobs, scheduler)  # every option before the data
    t0 = time.perf_counter()
    with sweep_session(out_dir, overwrite, resume, jobs, scheduler, cfg.threads, log_json) as (
        folder,
        executor,
        log,
    ):
        split, data_info = load_data(**data)
        click.echo(format_summary(data_info))
        folder.check_plan(plan_of(grid_runs(opts, lambdas), "grid", data_info))
        done = len(folder.finished())
        click.echo(
            f"grid of {len(lambdas)} λ values ({opts['optimizer']}, K={opts['dim']}, "
            f"{opts['epochs']} epochs each, {executor.slots} at a time) on "
            f"{opts['device']}" + (f"; {done} already finished" if done else "")
        )
        progress = SweepProgress(
            len(lambdas), executor.slots, done, cfg.early_stopping, log=log, quiet=quiet
        )
        result, model = grid_search(
            split,
            lambdas,
            executor=executor,
            folder=folder,
            data_info=data_info,
            progress=progress,
            **opts,
        )
        text = save_grid(
            folder.partial,
            result,
            model,
            split,
            data_info,
            opts,
            time.perf_counter() - t0,
            sweep=folder,
        )
        folder.commit()
    click.echo(text, nl=False)
    click.echo(
        f"wrote {out_dir}/ (grid.csv, grid.json, summary.txt, runs/ with every λ, and "
        f"the selected model: config.json, metrics.json, model.npz, split.npz, "
        f"lambda_trajectory.npz)"
    )


def dataset_names(paths):
    """A short, distinct name per data file (its name without extensions)."""
    names = []
    for path in paths:
        base = os.path.basename(os.path.normpath(path)).split(".")[0] or "data"
        name, n = base, 2
        while name in names:
            name, n = f"{base}{n}", n + 1
        names.append(name)
    return names


@main.command()
@data_options(multiple=True)
@training_options
@option_group(
    "Model",
    [config_option("granularity", type=click.Choice(GRANULARITY_NAMES, case_sensitive=False))],
)
@lambda_options
@option_group(
    "Sweep",
    [
        click.option(
            "--set",
            "settings",
            multiple=True,
            metavar="NAME=V1,V2,…",
            help="Vary a training option over these values (repeatable: the runs are "
            "every combination), e.g. --set granularity=D,DU,DUI --set "
            "lambda_lr=0.01,0.1.",
        ),
        click.option(
            "--seeds",
            default=None,
            metavar="S1,S2,…",
            help="Train every combination with each of these seeds (default: --seed).",
        ),
    ],
)
@sweep_options
@friendly_errors
def sweep(out_dir, overwrite, settings, seeds, jobs, scheduler, resume, log_json, quiet, **opts):
    """Train every combination of --set values and --seeds, on each --data: one folder per run
    under runs/ (written as it finishes), sweep.csv with a row per run, summary.txt with each
    setting's mean ± std over the seeds."""
    from lopt_np.io import write_json
    from lopt_np.sweep import (
        SweepProgress,
        parse_setting,
        product_runs,
        run_plan,
        split_values,
        summarize,
    )
    from lopt_np.trainer import LambdaOpt

    apply_preset(opts)
    paths = opts.pop("data_path") or (None,)
    data = {k: opts.pop(k) for k in inspect.signature(load_data).parameters if k in opts}
    opts["lambda_clip"] = clip_value(opts.pop("lambda_clip"))
    seeds = split_values(seeds) if seeds is not None else [opts["seed"]]
    varied = [parse_setting(text, D) for text in settings]
    names = dataset_names(paths) if paths != (None,) else ["synthetic"]
    runs = product_runs(opts, varied, seeds, names)
    for run in runs:
        LambdaOpt(**run.params)  # every combination valid before the data
    if jobs > 1 and any(r.params["device"] != "cpu" for r in runs):
        raise LoptError(
            "--jobs > 1 trains several runs at once on the CPU cores; with "
            "--device cuda use --jobs 1 (or --scheduler with GPU workers)"
        )
    t0 = time.perf_counter()
    with sweep_session(out_dir, overwrite, resume, jobs, scheduler, opts["threads"], log_json) as (
        folder,
        executor,
        log,
    ):
        splits, infos = {}, {}
        for name, path in zip(names, paths):
            splits[name], infos[name] = load_data(data_path=path, **data)
            click.echo(f"{name}: {format_summary(infos[name])}")
        folder.check_plan(plan_of(runs, "sweep", infos))
        done = len(folder.finished())
        click.echo(
            f"sweep of {len(runs)} runs ({len(varied)} option(s) varied, {len(seeds)} "
            f"seed(s), {len(names)} dataset(s)), {executor.slots} at a time"
            + (f"; {done} already finished" if done else "")
        )
        os.makedirs(os.path.join(folder.partial, "splits"), exist_ok=True)
        for name, split in splits.items():
            split.save(os.path.join(folder.partial, "splits", f"{name}.npz"))
        progress = SweepProgress(
            len(runs), executor.slots, done, opts["early_stopping"], log=log, quiet=quiet
        )
        outcomes = run_plan(
            executor, folder, runs, splits, infos, progress=progress, title="MF-BPR sweep run"
        )
        text, table = summarize(outcomes, runs, opts["early_stopping"], infos)
        folder.write_table("sweep.csv", table)
        folder.write_text("summary.txt", text)
        write_json(
            os.path.join(folder.partial, "results.json"),
            {
                "runs": [outcomes[r.name].record() for r in runs],
                "wall_seconds": time.perf_counter() - t0,
                "jobs": jobs,
                "scheduler": scheduler,
            },
        )
        folder.commit()
    click.echo(text, nl=False)
    failed = sum(bool(o.failed) for o in outcomes.values())
    click.echo(
        f"wrote {out_dir}/ (sweep.csv, summary.txt, results.json, sweep.json, splits/, "
        f"runs/ with {len(runs)} run folders)" + (f"; {failed} run(s) failed" if failed else "")
    )


def parse_names(ctx, param, value):
    return tuple(x.strip() for x in str(value).split(",") if x.strip())


@main.command()
@data_options(min_count=PAPER_MIN_COUNT)
@training_options
@grid_options
@sweep_options
@lambda_options
@click.option(
    "--methods",
    default=",".join(METHOD_NAMES),
    show_default=True,
    callback=parse_names,
    help="Rows of Table 2 to run (MF-λFix always runs; write lOpt for λOpt, e.g. MF-lOpt-DUI).",
)
@click.option(
    "--sgda-lrs",
    default=",".join(f"{x:g}" for x in SGDA_LRS),
    show_default=True,
    callback=parse_lambdas,
    help="SGD step sizes tried for SGDA (chosen by SGD MF-λFix's validation metric).",
)
@config_option("lr", BaselineConfig, decls=("--baseline-lr",))
@config_option("epochs", BaselineConfig, decls=("--baseline-epochs",))
@config_option("patience", BaselineConfig, decls=("--baseline-patience",))
@click.option(
    "--amf-eps",
    default=",".join(f"{x:g}" for x in AMF_EPS_GRID),
    show_default=True,
    callback=parse_lambdas,
    help="AMF: norms ε of each embedding row's adversarial perturbation to try "
    "(the best by the validation metric is kept).",
)
@config_option("reg_adv", BaselineConfig, decls=("--amf-reg",))
@config_option("mlp_dim", BaselineConfig, decls=("--neumf-mlp-dim",))
@config_option(
    "layers",
    BaselineConfig,
    decls=("--neumf-layers",),
    default=",".join(map(str, B.layers)),
    type=str,
    callback=parse_ks,
)
@friendly_errors
def reproduce(
    out_dir,
    overwrite,
    lambdas,
    jobs,
    scheduler,
    resume,
    log_json,
    quiet,
    methods,
    sgda_lrs,
    amf_eps,
    **opts,
):
    """Table 2 on one dataset: MF-λFix (grid), SGDA, AMF, NeuMF and MF-λOpt-D/DU/DI/DUI with
    one protocol; writes table2.csv/.md/.json and every method's run to --out."""
    from lopt_np.reproduction.reproduce import check_settings, markdown_table, planned_runs
    from lopt_np.reproduction.reproduce import reproduce as run_reproduction
    from lopt_np.sweep import SweepProgress

    apply_preset(opts)
    data = {k: opts.pop(k) for k in inspect.signature(load_data).parameters}
    lopt = {
        k: opts.pop(k)
        for k in (
            "valid_batch_size",
            "lambda_init",
            "lambda_optimizer",
            "lambda_lr",
            "lambda_update_interval",
            "lambda_eps_placement",
            "lambda_rows",
            "lambda_eps",
            "lookahead_scope",
            "lookahead_eps_placement",
            "lookahead_count",
            "assumed_penalty",
            "lambda_warmup_steps",
            "lookahead_batches",
            "shared_assumed_state",
        )
    }
    lopt["lambda_clip"] = clip_value(opts.pop("lambda_clip"))
    baseline = {
        "lr": opts.pop("baseline_lr"),
        "epochs": opts.pop("baseline_epochs"),
        "patience": opts.pop("baseline_patience"),
        "eps": opts["eps"],
        "reg_adv": opts.pop("amf_reg"),
        "mlp_dim": opts.pop("neumf_mlp_dim"),
        "layers": opts.pop("neumf_layers"),
        "batch_size": opts["batch_size"],
        "seed": opts["seed"],
        "early_stopping": opts["early_stopping"],
        "ks": opts["ks"],
    }
    methods, lambdas = check_settings(opts, lopt, sgda_lrs, baseline, lambdas, methods, amf_eps)
    if jobs > 1 and opts["device"] != "cpu":
        raise LoptError(
            "--jobs > 1 trains several runs at once on the CPU cores; with "
            "--device cuda use --jobs 1"
        )
    with sweep_session(out_dir, overwrite, resume, jobs, scheduler, opts["threads"], log_json) as (
        folder,
        executor,
        log,
    ):
        split, data_info = load_data(**data)
        data_info["selection"] = selection_count(split, opts["selection_frac"])
        click.echo(format_summary(data_info))
        plan = plan_of(planned_runs(opts, lopt, lambdas, methods), "reproduce", data_info)
        folder.check_plan(
            {
                **plan,
                "methods": list(methods),
                "sgda_lrs": list(sgda_lrs),
                "amf_eps": list(amf_eps),
                "baseline": baseline,
            }
        )
        progress = SweepProgress(
            0, executor.slots, len(folder.finished()), opts["early_stopping"], log=log, quiet=quiet
        )
        rows = run_reproduction(
            split,
            folder.partial,
            data_info,
            opts,
            lopt,
            sgda_lrs,
            baseline,
            lambdas,
            jobs,
            methods,
            amf_eps,
            log=(lambda msg: None) if quiet else (lambda msg: click.echo(msg, err=True)),
            executor=executor,
            sweep=folder,
            progress=progress,
        )
        folder.commit()
    click.echo(markdown_table(rows), nl=False)
    click.echo(
        f"wrote {out_dir}/ (table2.csv, table2.md, table2.json, one folder per method "
        f"and runs/ with every MF training)"
    )


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option(
    "--out",
    "out_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Folder for the PNG files (default: RUN_DIR/figures).",
)
@click.option(
    "--baseline",
    default=None,
    type=click.Path(),
    help="A MF-λFix run (or grid folder) to compare a λOpt run with (Figure 6).",
)
@friendly_errors
def plot(run_dir, out_dir, baseline):
    """Draw the paper's Figures 1, 6, 7 and 8 (PNG) from a reproduction, grid or train folder."""
    from lopt_np.reproduction.plots import FIGURES, plot_run

    for path in plot_run(run_dir, out_dir, baseline):
        click.echo(f"wrote {path} ({FIGURES[os.path.basename(path)]})")


@main.command()
@config_option(
    "granularity",
    type=click.Choice(GRANULARITY_NAMES, case_sensitive=False),
    help="Which indices Λ carries in the checked model (SPEC §3).",
)
@config_option("optimizer", help="Θ optimizer whose update the lookahead differentiates.")
@config_option("scope", help="Penalty scope (SPEC §3).")
@config_option("seed", help="Seed of the random model and batches checked.")
@config_option("eps_placement", help="Adam's ε inside or outside the root.")
@click.option(
    "--lookahead",
    "lookahead_semantics",
    default="default",
    show_default=True,
    type=click.Choice(("default", "spec")),
    help="The lookahead's variant options (SPEC §8): the defaults' (the authors': "
    "weight-1 penalty on every row, penalty in ḡ, count t, ε inside) or "
    "SPEC §5's (--scope, ε as --eps-placement, t + 1).",
)
@click.option(
    "--baselines/--no-baselines",
    default=True,
    show_default=True,
    help="Also check the AMF (APR) and NeuMF gradients.",
)
@friendly_errors
def gradcheck(granularity, optimizer, scope, seed, eps_placement, lookahead_semantics, baselines):
    """Check every closed-form derivative against central finite differences (float64)."""
    from lopt_np.gradcheck import run_baseline_gradchecks, run_gradchecks

    settings = PRESETS[lookahead_semantics]
    rule = TrainConfig(
        **{**settings, "scope": scope, "optimizer": optimizer, "eps_placement": eps_placement}
    ).lookahead_rule()
    results = run_gradchecks(
        granularity, optimizer, scope, seed, eps_placement=eps_placement, lookahead=rule
    )
    if baselines:
        results += run_baseline_gradchecks(seed)
    width = max(len(r.name) for r in results)
    click.echo(f"{'derivative':<{width}}  {'max rel. error':>14}  {'tolerance':>9}  result")
    for r in results:
        click.echo(
            f"{r.name:<{width}}  {r.max_rel_error:>14.2e}  {r.tolerance:>9.0e}  "
            f"{'pass' if r.passed else 'FAIL'}"
        )
    failed = [r for r in results if not r.passed]
    click.echo(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        sys.exit(1)


@main.group()
def data():
    """Inspect interaction data."""


@data.command("stats")
@click.argument("path", type=click.Path())
@data_options()
@friendly_errors
def data_stats(path, data_path, **opts):
    """Counts of PATH after filtering and splitting, like the paper's Table 1."""
    split, info = load_data(path, **opts)
    click.echo(format_summary(info))


@main.command()
@click.argument("model_dir", type=click.Path())
@click.option(
    "--ks",
    default="50,100",
    show_default=True,
    callback=parse_ks,
    help="Cut-offs K of HR@K and NDCG@K.",
)
@click.option(
    "--target",
    default="test",
    show_default=True,
    type=click.Choice(["test", "valid"]),
    help="The split's part to rank.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    type=click.Choice(["cpu", "cuda"]),
    help="Where the scores and ranks are computed.",
)
@friendly_errors
def evaluate(model_dir, ks, target, device):
    """Re-evaluate a saved run (its model and split.npz) with the SPEC §7 protocol."""
    from lopt_np.evaluation import evaluate as run_evaluation
    from lopt_np.model import load_run

    model, split = load_run(model_dir)
    result = run_evaluation(model.P, model.Q, split, target, ks, device=device)
    click.echo(
        f"{target} ({result['n_users']:,} users, {result['n_pairs']:,} pairs): "
        f"{format_metrics(result['metrics'])}"
    )


def read_ids(path, what):
    """The ids in a text file, one per line (blank lines skipped)."""
    try:
        with open(path, encoding="utf-8") as fh:
            ids = [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read {what} file {path}: {exc}") from None
    if not ids:
        raise click.ClickException(f"{what} file {path} holds no ids")
    return ids


def chosen_ids(given, path, what):
    """Ids from repeated options and/or a file; None when neither was given (all of them)."""
    ids = list(given) + (read_ids(path, what) if path else [])
    return ids or None


def long_table(queries, ids, scores, names):
    """One row per (query, rank): the padding of short lists (score -inf) left out."""
    import numpy as np
    import pandas as pd

    ids, scores = np.atleast_2d(ids), np.atleast_2d(scores)
    keep = np.isfinite(scores)
    rank = np.broadcast_to(np.arange(1, scores.shape[1] + 1), scores.shape)
    query = np.broadcast_to(np.asarray(queries)[:, None], scores.shape)
    return pd.DataFrame(
        {names[0]: query[keep], "rank": rank[keep], names[1]: ids[keep], names[2]: scores[keep]}
    )


def write_table(table, out):
    """The table to the terminal (plain text), or to ``out`` (.csv or .json), written whole."""
    if out is None:
        click.echo(table.to_string(index=False, float_format=lambda x: f"{x:.6f}"))
        return
    ext = os.path.splitext(out)[1].lower()
    if ext not in (".csv", ".json"):
        raise click.ClickException(f"--out {out}: name a .csv or .json file")
    from lopt_np.io import write_whole

    try:
        write_whole(
            out,
            (lambda tmp: table.to_csv(tmp, index=False))
            if ext == ".csv"
            else (lambda tmp: table.to_json(tmp, orient="records", indent=1)),
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc}") from None
    click.echo(f"wrote {out} ({len(table):,} rows)", err=True)


def model_options(fn):
    """The model folder argument and the output options of the inference commands."""
    fn = click.option(
        "--device",
        default="cpu",
        show_default=True,
        type=click.Choice(["cpu", "cuda"]),
        help="Where the scores and the top-n are computed.",
    )(fn)
    fn = click.option(
        "--out",
        default=None,
        type=click.Path(dir_okay=False),
        help="Write a .csv or .json file instead of printing a table.",
    )(fn)
    return click.argument("model_dir", type=click.Path())(fn)


@main.command()
@model_options
@click.option("--user", "users", multiple=True, help="A user's original id (repeatable).")
@click.option(
    "--users-file",
    type=click.Path(dir_okay=False),
    help="A text file of user ids, one per line. Without --user or --users-file: every user.",
)
@click.option(
    "-n", "n", default=10, show_default=True, type=click.IntRange(min=1), help="Items per user."
)
@click.option(
    "--items-file",
    type=click.Path(dir_okay=False),
    help="Recommend only among these item ids (one per line).",
)
@click.option(
    "--keep-seen",
    is_flag=True,
    help="Keep the items a user interacted with (filtered out by default).",
)
@friendly_errors
def recommend(model_dir, out, device, users, users_file, n, items_file, keep_seen):
    """Top-n items of users of a trained model (a run folder or a saved model), best first:
    columns user, rank, item, score (p_u·q_i)."""
    from lopt_np.model import Model

    model = Model.load(model_dir)
    users = chosen_ids(users, users_file, "user")
    users = model.user_ids if users is None else users
    items = read_ids(items_file, "item") if items_file else None
    ids, scores = model.recommend(
        list(users), n, filter_seen=not keep_seen, items=items, device=device
    )
    write_table(
        long_table(model.user_ids[model.user_index(users)], ids, scores, ("user", "item", "score")),
        out,
    )


@main.command()
@model_options
@click.option("--item", "items", multiple=True, help="An item's original id (repeatable).")
@click.option(
    "--items-file", type=click.Path(dir_okay=False), help="A text file of item ids, one per line."
)
@click.option(
    "--user",
    "users",
    multiple=True,
    help="A user's original id: similar users instead of items (repeatable).",
)
@click.option(
    "--users-file", type=click.Path(dir_okay=False), help="A text file of user ids, one per line."
)
@click.option(
    "-n",
    "n",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Neighbours per query.",
)
@friendly_errors
def similar(model_dir, out, device, items, items_file, users, users_file, n):
    """Most similar items (or users) by cosine similarity of the embeddings, the query itself
    left out: columns item, rank, similar_item, similarity."""
    from lopt_np.model import Model

    items = chosen_ids(items, items_file, "item")
    users = chosen_ids(users, users_file, "user")
    if (items is None) == (users is None):
        raise click.ClickException(
            "give items (--item/--items-file) or users (--user/--users-file), not both or neither"
        )
    model = Model.load(model_dir)
    if items is not None:
        ids, sims = model.similar_items(items, n, device=device)
        queries, names = model.item_ids[model.item_index(items)], ("item", "similar_item")
    else:
        ids, sims = model.similar_users(users, n, device=device)
        queries, names = model.user_ids[model.user_index(users)], ("user", "similar_user")
    write_table(long_table(queries, ids, sims, names + ("similarity",)), out)


@main.command()
@click.argument("model_dir", type=click.Path())
@click.argument("pairs_file", type=click.Path(dir_okay=False))
@click.option("--user-col", default="user", show_default=True, help="User column of the file.")
@click.option("--item-col", default="item", show_default=True, help="Item column of the file.")
@click.option(
    "--out",
    default=None,
    type=click.Path(dir_okay=False),
    help="Write a .csv or .json file instead of printing a table.",
)
@friendly_errors
def score(model_dir, pairs_file, user_col, item_col, out):
    """Scores p_u·q_i of the (user, item) pairs of a CSV file with a header row."""
    import pandas as pd
    from lopt_np.model import Model

    model = Model.load(model_dir)
    try:
        pairs = pd.read_csv(pairs_file, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise click.ClickException(f"cannot read {pairs_file}: {str(exc)[:200]}") from None
    missing = [c for c in (user_col, item_col) if c not in pairs.columns]
    if missing:
        raise click.ClickException(
            f"{pairs_file} has no column {', '.join(missing)} (its "
            f"header: {', '.join(map(str, pairs.columns[:10]))}); name "
            f"them with --user-col/--item-col"
        )
    if len(pairs) == 0:
        raise click.ClickException(f"{pairs_file} holds no pairs")
    scores = model.score(pairs[user_col].to_numpy(), pairs[item_col].to_numpy())
    write_table(
        pd.DataFrame({"user": pairs[user_col], "item": pairs[item_col], "score": scores}), out
    )


if __name__ == "__main__":
    main()
