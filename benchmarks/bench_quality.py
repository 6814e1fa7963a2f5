"""Time to quality: in one process on a real dataset, the default MF-λOpt-DUI (``LambdaOpt()``)
and the default MF-λFix grid (``lopt grid``'s eight λ values, the same settings otherwise),
each with test metrics after every epoch (evaluation time not counted), on ``lopt train``'s
default protocol (no frequency filter, per-user 60/20/20 split by time, SPEC §7 metrics).

Reported: when λOpt's test HR@100 first passes the grid's (the λ selected by validation, at its
kept epoch) against the training seconds that selected run needed to reach its own kept
epoch; and when λOpt first reaches ``--target`` (the authors' 100-epoch test HR@100 on
ml-1m-u2999, 0.3608) within ``--budget`` seconds; and λOpt's median epoch against the authors'
code's λOpt-DUI epoch on ml-1m-u2999 with their ML-1M settings (``--authors-epoch-s``: 17.2 s,
measured on a 2-core machine like the development one).

    python benchmarks/bench_quality.py --data ../shared/data/ml-1m-u2999.csv.gz

``--variant NAME=VALUE`` (repeatable; ``NAME=V1,V2`` for several, as ``lopt sweep --set``) adds a
λOpt-DUI run with that one option changed, e.g. ``--variant valid_batch_size=256``, reported
and drawn beside the default.

Writes ``benchmarks/results/bench_quality-<data>.{json,md,png}``.
"""

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import save_report  # noqa: E402

from lopt_np import LambdaOpt  # noqa: E402
from lopt_np.data.inputs import DataConfig, to_split  # noqa: E402
from lopt_np.errors import ConfigError  # noqa: E402
from lopt_np.evaluation import evaluate  # noqa: E402
from lopt_np.reproduction.grid import DEFAULT_LAMBDAS, fixed_lambda_params  # noqa: E402
from lopt_np.progress import Progress  # noqa: E402
from lopt_np.sweep import parse_setting, value_text  # noqa: E402
from lopt_np.trainer import TrainConfig  # noqa: E402

DEFAULT_DATA = os.path.join(
    os.path.dirname(__file__), "..", "..", "shared", "data", "ml-1m-u2999.csv.gz"
)
METRIC = "hr@100"


class Curve(Progress):
    """Test metrics after every epoch against the training seconds so far."""

    def __init__(self, split, budget=None):
        self.split, self.budget = split, budget
        self.train_seconds, self.points, self.PQ = 0.0, [], None

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        self.PQ = (P, Q)

    def epoch_end(self, record):
        self.train_seconds += record["train_seconds"]
        m = evaluate(*self.PQ, self.split, "test")["metrics"]
        self.points.append({"epoch": record["epoch"], "train_seconds": self.train_seconds, **m})

    def stop(self):
        return self.budget is not None and self.train_seconds >= self.budget


def train(split, params, budget=None):
    curve = Curve(split, budget)
    model = LambdaOpt(**params).fit(split, curve)
    kept = next(p for p in curve.points if p["epoch"] == model.best_epoch)
    return {
        "params": {k: v for k, v in params.items() if k != "ks"},
        "curve": curve.points,
        "best_epoch": model.best_epoch,
        "kept": kept,
        "stop_reason": model.stop_reason,
        "valid": next(h for h in model.history if h["epoch"] == model.best_epoch)["valid"],
    }


def epoch_seconds(curve):
    """Each epoch's training seconds (the curve holds them summed)."""
    ends = [p["train_seconds"] for p in curve]
    return [b - a for a, b in zip([0.0] + ends, ends)]


def first_reaching(curve, value):
    return next((p for p in curve if p[METRIC] >= value), None)


def milestones(run, grid_best, a):
    """``(the first point past the grid's best, the first point at --target within --budget,
    the median epoch seconds, the epoch seconds)``, the first epoch a warm-up as in
    bench_epoch.py."""
    curve = run["curve"]
    every_epoch = epoch_seconds(curve)
    epochs = every_epoch[1:] or every_epoch
    return (
        first_reaching(curve, grid_best),
        first_reaching([p for p in curve if p["train_seconds"] <= a.budget], a.target),
        statistics.median(epochs),
        epochs,
    )


def draw(path, lopt, grid, selected, target, variants):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for lam, run in grid.items():
        xs = [p["train_seconds"] for p in run["curve"]]
        ys = [p[METRIC] for p in run["curve"]]
        bold = lam == selected
        ax.plot(
            xs,
            ys,
            color="tab:blue",
            alpha=1.0 if bold else 0.3,
            lw=2 if bold else 1,
            label=f"MF-λFix λ={lam:g} (selected)" if bold else None,
        )
    ax.plot(
        [p["train_seconds"] for p in lopt["curve"]],
        [p[METRIC] for p in lopt["curve"]],
        color="tab:red",
        lw=2,
        label="MF-λOpt-DUI (defaults)",
    )
    for (label, run), color in zip(variants.items(), ("tab:orange", "tab:green", "tab:purple")):
        ax.plot(
            [p["train_seconds"] for p in run["curve"]],
            [p[METRIC] for p in run["curve"]],
            color=color,
            lw=1.5,
            label=f"MF-λOpt-DUI, {label}",
        )
    best = grid[selected]["kept"][METRIC]
    ax.axhline(best, color="tab:blue", ls="--", lw=1, label=f"grid's test {METRIC} {best:.4f}")
    ax.axhline(target, color="gray", ls=":", lw=1, label=f"authors' 100 epochs {target:.4f}")
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel(f"test {METRIC.upper()}")
    ax.set_ylim(bottom=max(0.0, min(best, target) - 0.15))
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("LOPT_QUALITY_DATA", DEFAULT_DATA))
    ap.add_argument(
        "--budget", type=float, default=60.0, help="λOpt's training seconds for the --target check"
    )
    ap.add_argument(
        "--target",
        type=float,
        default=0.3608,
        help="test HR@100 to reach (the authors' 100-epoch result on ml-1m-u2999)",
    )
    ap.add_argument(
        "--authors-epoch-s",
        type=float,
        default=17.2,
        help="seconds of one λOpt-DUI epoch of the authors' code on the same data and machine",
    )
    ap.add_argument("--lambdas", default=",".join(f"{x:g}" for x in DEFAULT_LAMBDAS))
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="also train λOpt-DUI with this option changed (repeatable, at most three)",
    )
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    changes = []  # (option, value) of each variant run
    for text in a.variant:  # a bad option fails now, not after the first run
        try:
            option, values = parse_setting(text, TrainConfig())
            for value in values:
                LambdaOpt(**{option: value})
                changes.append((option, value))
        except ConfigError as e:
            raise SystemExit(f"Error: --variant {text}: {e}")
    if len(changes) > 3:
        raise SystemExit(f"Error: at most three variant runs, --variant gives {len(changes)}")
    if not os.path.isfile(a.data):
        raise SystemExit(f"Error: data file not found: {a.data} (pass --data)")
    split = to_split(a.data, DataConfig())
    name = os.path.basename(a.data).split(".")[0]
    t0 = time.perf_counter()
    tried = {"": {}, **{f"{k}={value_text(v)}": {k: v} for k, v in changes}}  # "": the default
    runs = {}
    for change, params in tried.items():
        run = runs["MF-λOpt-DUI" + (f", {change}" if change else "")] = train(split, params)
        print(
            f"λOpt-DUI{', ' + change if change else ''}: kept epoch {run['best_epoch']}, test "
            f"{METRIC} {run['kept'][METRIC]:.4f} ({run['curve'][-1]['train_seconds']:.1f} s)",
            flush=True,
        )
    lopt = runs["MF-λOpt-DUI"]
    variants = {change: runs[f"MF-λOpt-DUI, {change}"] for change in tried if change}
    grid = {}
    for lam in (float(x) for x in a.lambdas.split(",")):
        grid[lam] = train(split, fixed_lambda_params({}, lam))
        print(
            f"λFix λ={lam:g}: kept epoch {grid[lam]['best_epoch']}, test {METRIC} "
            f"{grid[lam]['kept'][METRIC]:.4f} (valid {grid[lam]['valid'][METRIC]:.4f})",
            flush=True,
        )
    selected = max(grid, key=lambda lam: grid[lam]["valid"][METRIC])  # as lopt grid selects
    sel = grid[selected]
    grid_best = sel["kept"][METRIC]
    fix_seconds = sel["kept"]["train_seconds"]
    grid_seconds = sum(r["curve"][-1]["train_seconds"] for r in grid.values())
    found = {label: milestones(run, grid_best, a) for label, run in runs.items()}
    lines = [
        f"{name}: default MF-λOpt-DUI against the default MF-λFix grid "
        f"(λ ∈ {{{a.lambdas}}}), test {METRIC.upper()} after every epoch; "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; wall "
        f"{time.perf_counter() - t0:.0f} s",
        "",
        "| model | kept epoch | test HR@100 | training s to the kept epoch | training s in all |",
        "|---|---|---|---|---|",
    ]
    for label, run in runs.items():
        lines.append(
            f"| {label} | {run['best_epoch']} | {run['kept'][METRIC]:.4f} | "
            f"{run['kept']['train_seconds']:.1f} | {run['curve'][-1]['train_seconds']:.1f} |"
        )
    for lam, run in grid.items():
        mark = " (selected)" if lam == selected else ""
        lines.append(
            f"| MF-λFix λ={lam:g}{mark} | {run['best_epoch']} | "
            f"{run['kept'][METRIC]:.4f} | {run['kept']['train_seconds']:.1f} | "
            f"{run['curve'][-1]['train_seconds']:.1f} |"
        )
    lines += [
        "",
        f"the selected λFix run needed {fix_seconds:.1f} s to reach its test {METRIC.upper()} "
        f"{grid_best:.4f}, the whole grid trained {grid_seconds:.1f} s",
    ]
    for label, (passed, target, epoch_s, epochs) in found.items():
        curve = runs[label]["curve"]
        best_in_budget = max(p[METRIC] for p in curve if p["train_seconds"] <= a.budget)
        lines += [
            "",
            f"{label}: "
            + (
                f"passes the grid's {grid_best:.4f} after {passed['train_seconds']:.1f} s "
                f"(epoch {passed['epoch']})"
                if passed
                else f"does not reach the grid's {grid_best:.4f} (its best "
                f"{max(p[METRIC] for p in curve):.4f})"
            )
            + "; "
            + (
                f"reaches {a.target} after {target['train_seconds']:.1f} s (epoch "
                f"{target['epoch']})"
                if target
                else f"does not reach {a.target} within {a.budget:.0f} s (best "
                f"{best_in_budget:.4f})"
            )
            + f"; epoch median {epoch_s:.3f} s over epochs 2-{len(curve)} "
            f"(range {min(epochs):.3f}-{max(epochs):.3f} s), "
            f"{a.authors_epoch_s / epoch_s:.0f}× faster than the authors' code's "
            f"{a.authors_epoch_s:g} s",
        ]
    passed, target, lopt_epoch, _ = found["MF-λOpt-DUI"]
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    draw(os.path.join(a.out, f"bench_quality-{name}.png"), lopt, grid, selected, a.target, variants)
    save_report(
        a.out,
        f"bench_quality-{name}",
        {
            "data": name,
            "budget_s": a.budget,
            "target": a.target,
            "lambda_opt": lopt,
            "variants": variants,
            "grid": {f"{lam:g}": run for lam, run in grid.items()},
            "selected_lambda": selected,
            "lambda_opt_passes_grid": passed,
            "selected_fix_seconds_to_kept": fix_seconds,
            "target_reached": target,
            "lambda_opt_median_epoch_s": lopt_epoch,
            "milestones": {
                label: {"passes_grid": p, "target_reached": t, "median_epoch_s": e}
                for label, (p, t, e, _) in found.items()
            },
            "authors_epoch_s": a.authors_epoch_s,
            "speedup_over_authors": a.authors_epoch_s / lopt_epoch,
            "command": "python benchmarks/bench_quality.py --data "
            + " ".join([a.data] + [f"--variant {v}" for v in a.variant]),
        },
        text,
    )


if __name__ == "__main__":
    main()
