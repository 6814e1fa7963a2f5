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
from lopt_np.evaluation import evaluate  # noqa: E402
from lopt_np.reproduction.grid import DEFAULT_LAMBDAS, fixed_lambda_params  # noqa: E402
from lopt_np.progress import Progress  # noqa: E402

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


def draw(path, lopt, grid, selected, target):
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
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    if not os.path.isfile(a.data):
        raise SystemExit(f"Error: data file not found: {a.data} (pass --data)")
    split = to_split(a.data, DataConfig())
    name = os.path.basename(a.data).split(".")[0]
    t0 = time.perf_counter()
    lopt = train(split, {})
    print(
        f"λOpt-DUI: kept epoch {lopt['best_epoch']}, test {METRIC} "
        f"{lopt['kept'][METRIC]:.4f} ({lopt['curve'][-1]['train_seconds']:.1f} s)",
        flush=True,
    )
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
    passed = first_reaching(lopt["curve"], grid_best)
    target = first_reaching([p for p in lopt["curve"] if p["train_seconds"] <= a.budget], a.target)
    fix_seconds = sel["kept"]["train_seconds"]
    grid_seconds = sum(r["curve"][-1]["train_seconds"] for r in grid.values())
    # the first epoch is a warm-up, as in bench_epoch.py
    every_epoch = epoch_seconds(lopt["curve"])
    lopt_epochs = every_epoch[1:] or every_epoch
    lopt_epoch = statistics.median(lopt_epochs)
    lines = [
        f"{name}: default MF-λOpt-DUI against the default MF-λFix grid "
        f"(λ ∈ {{{a.lambdas}}}), test {METRIC.upper()} after every epoch; "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores; wall "
        f"{time.perf_counter() - t0:.0f} s",
        "",
        "| model | kept epoch | test HR@100 | training s to the kept epoch | training s in all |",
        "|---|---|---|---|---|",
        f"| MF-λOpt-DUI | {lopt['best_epoch']} | {lopt['kept'][METRIC]:.4f} | "
        f"{lopt['kept']['train_seconds']:.1f} | {lopt['curve'][-1]['train_seconds']:.1f} |",
    ]
    for lam, run in grid.items():
        mark = " (selected)" if lam == selected else ""
        lines.append(
            f"| MF-λFix λ={lam:g}{mark} | {run['best_epoch']} | "
            f"{run['kept'][METRIC]:.4f} | {run['kept']['train_seconds']:.1f} | "
            f"{run['curve'][-1]['train_seconds']:.1f} |"
        )
    lines += [
        "",
        (
            f"λOpt passes the grid's test {METRIC.upper()} {grid_best:.4f} after "
            f"{passed['train_seconds']:.1f} s (epoch {passed['epoch']}); the selected "
            f"λFix run needed {fix_seconds:.1f} s to reach it, the whole grid trained "
            f"{grid_seconds:.1f} s"
            if passed
            else f"λOpt does not reach the grid's test {METRIC.upper()} {grid_best:.4f} (its "
            f"best {max(p[METRIC] for p in lopt['curve']):.4f}); the selected λFix run "
            f"needed {fix_seconds:.1f} s"
        ),
        (
            f"target {a.target} reached after {target['train_seconds']:.1f} s (epoch "
            f"{target['epoch']})"
            if target
            else f"target {a.target} not reached within {a.budget:.0f} s (best "
            f"{max(p[METRIC] for p in lopt['curve'] if p['train_seconds'] <= a.budget):.4f})"
        ),
        f"λOpt-DUI epoch: median {lopt_epoch:.3f} s over epochs 2-{len(lopt['curve'])} "
        f"(range {min(lopt_epochs):.3f}-{max(lopt_epochs):.3f} s), "
        f"{a.authors_epoch_s / lopt_epoch:.0f}× faster than the authors' code's "
        f"{a.authors_epoch_s:g} s",
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    draw(os.path.join(a.out, f"bench_quality-{name}.png"), lopt, grid, selected, a.target)
    save_report(
        a.out,
        f"bench_quality-{name}",
        {
            "data": name,
            "budget_s": a.budget,
            "target": a.target,
            "lambda_opt": lopt,
            "grid": {f"{lam:g}": run for lam, run in grid.items()},
            "selected_lambda": selected,
            "lambda_opt_passes_grid": passed,
            "selected_fix_seconds_to_kept": fix_seconds,
            "target_reached": target,
            "lambda_opt_median_epoch_s": lopt_epoch,
            "authors_epoch_s": a.authors_epoch_s,
            "speedup_over_authors": a.authors_epoch_s / lopt_epoch,
            "command": f"python benchmarks/bench_quality.py --data {a.data}",
        },
        text,
    )


if __name__ == "__main__":
    main()
