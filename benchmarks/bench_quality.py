"""Time to quality: train λOpt-DUI on a real dataset under the issue-4 protocol (no frequency
filter, per-user 60/20/20 split by time, SPEC §7 metrics) and record test HR@100 against
training seconds (evaluation time is not counted); report when the target is first reached.

    python benchmarks/bench_quality.py --data ../shared/data/ml-1m-u2999.csv.gz --budget 60

Writes ``benchmarks/results/bench_quality-<data>.{json,md}``.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from report import save_report  # noqa: E402

from lopt_np import LambdaOpt  # noqa: E402
from lopt_np.data.loaders import load_interactions  # noqa: E402
from lopt_np.data.preprocess import build_split  # noqa: E402
from lopt_np.evaluation import evaluate  # noqa: E402
from lopt_np.trainer import Progress  # noqa: E402

DEFAULT_DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                            "ml-1m-u2999.csv.gz")


class Curve(Progress):
    """Stops the clock at each epoch end, evaluates on test, restarts the clock."""

    def __init__(self, split, eval_every):
        self.split, self.eval_every = split, eval_every
        self.train_seconds, self.points, self.budget, self.PQ = 0.0, [], None, None

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        self.PQ = (P, Q)

    def stop(self):
        return self.train_seconds >= self.budget

    def epoch_end(self, record):
        self.train_seconds += record["train_seconds"]
        if record["epoch"] % self.eval_every == 0 or self.stop():
            m = evaluate(*self.PQ, self.split, "test")["metrics"]
            self.points.append({"epoch": record["epoch"], "train_seconds": self.train_seconds,
                                **m})
            print(f"epoch {record['epoch']:3d}  {self.train_seconds:6.1f} s  "
                  f"test HR@100 {m['hr@100']:.4f}  AUC {m['auc']:.4f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("LOPT_QUALITY_DATA", DEFAULT_DATA))
    ap.add_argument("--budget", type=float, default=60.0, help="training seconds")
    ap.add_argument("--target", type=float, default=0.387, help="test HR@100 to reach")
    ap.add_argument("--eval-every", type=int, default=2)
    ap.add_argument("--config", default='{"dim": 128, "lr": 0.002, "init_std": 0.1, '
                    '"granularity": "DUI", "optimizer": "adam", "lambda_lr": 0.05}',
                    help="JSON of LambdaOpt parameters")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    if not os.path.isfile(a.data):
        raise SystemExit(f"Error: data file not found: {a.data} (pass --data)")
    split = build_split(load_interactions(a.data), min_count=0)
    cfg = json.loads(a.config)
    curve = Curve(split, a.eval_every)
    curve.budget = a.budget
    t0 = time.perf_counter()
    LambdaOpt(epochs=100_000, eval_every=0, **cfg).fit(split, curve)
    reached = next((p for p in curve.points if p["hr@100"] >= a.target), None)
    name = os.path.basename(a.data).split(".")[0]
    best = max(curve.points, key=lambda p: p["hr@100"]) if curve.points else None
    lines = [f"{name}: λOpt {cfg}, training budget {a.budget:.0f} s, wall "
             f"{time.perf_counter() - t0:.0f} s with evaluation", "",
             "| epoch | training s | test AUC | HR@100 | NDCG@100 |", "|---|---|---|---|---|"]
    lines += [f"| {p['epoch']} | {p['train_seconds']:.1f} | {p['auc']:.4f} | {p['hr@100']:.4f} "
              f"| {p['ndcg@100']:.4f} |" for p in curve.points]
    lines += ["", (f"target HR@100 ≥ {a.target} reached after {reached['train_seconds']:.1f} s "
                   f"(epoch {reached['epoch']})" if reached else
                   f"target HR@100 ≥ {a.target} NOT reached within {a.budget:.0f} s "
                   f"(best {best['hr@100']:.4f} at epoch {best['epoch']})" if best else
                   "no evaluation point")]
    text = "\n".join(lines)
    print(text)
    save_report(a.out, f"bench_quality-{name}", {
        "config": cfg, "budget_s": a.budget, "target_hr@100": a.target, "reached": reached,
        "curve": curve.points}, text)


if __name__ == "__main__":
    main()
