"""Test accuracy of λOpt variants (SPEC §8) on a real dataset: one run per variant, test metrics
every ``--test-every`` epochs (the paper's protocol: no filter, per-user 60/20/20 time split).

    python benchmarks/bench_variants.py --dataset ml-100k --epochs 150 \
        --run authors --run spec --run "authors:lookahead_scope=same"

A run is ``PRESET[:option=value,...]`` (options of ``TrainConfig``; values parsed as JSON when
they can be, else kept as strings). Results: ``benchmarks/results/variants-<dataset>.json`` (one
record per run, merged with the runs already there) and a Markdown table beside it.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from lopt_np.data.loaders import load_interactions
from lopt_np.data.preprocess import build_split
from lopt_np.evaluation import evaluate
from lopt_np.trainer import LambdaOpt, Progress

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("LOPT_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data"))


def parse_run(text):
    preset, _, rest = text.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return preset, params


class TestCurve(Progress):
    """Test HR/NDCG@100 every ``every`` epochs (the parameters at the end of that epoch)."""

    def __init__(self, split, every, label):
        self.split, self.every, self.label, self.curve = split, every, label, []
        self.epoch = 0

    def epoch_end(self, record):
        self.epoch = record["epoch"]

    def epoch_parameters(self, P, Q, lam_P, lam_Q):
        epoch = self.epoch + 1
        if epoch % self.every == 0:
            m = evaluate(P, Q, self.split, "test", (50, 100))["metrics"]
            self.curve.append({"epoch": epoch, **{k: float(v) for k, v in m.items()}})
            print(
                f"  [{self.label}] epoch {epoch}: test HR@100 {m['hr@100']:.4f} "
                f"NDCG@100 {m['ndcg@100']:.4f} AUC {m['auc']:.4f}",
                flush=True,
            )


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--epochs", type=int, default=150)
    ap.add_argument("--test-every", type=int, default=10)
    ap.add_argument("--run", action="append", required=True)
    ap.add_argument("--common", default="", help="options applied to every run (k=v,...)")
    args = ap.parse_args(argv)
    df = load_interactions(os.path.join(DATA, f"{args.dataset}.csv.gz"))
    split = build_split(df, min_count=0)
    _, common = parse_run(":" + args.common)
    out = os.path.join(HERE, "results", f"variants-{args.dataset}.json")
    results = json.load(open(out)) if os.path.exists(out) else {}
    for text in args.run:
        preset, params = parse_run(text)
        params = {"epochs": args.epochs, "eval_every": 0, **common, **params}
        curve = TestCurve(split, args.test_every, text)
        t0 = time.perf_counter()
        model = LambdaOpt(preset, **params).fit(split, curve)
        best = max(curve.curve, key=lambda r: r["hr@100"]) if curve.curve else None
        results[text] = {
            "preset": preset,
            "params": params,
            "curve": curve.curve,
            "final": curve.curve[-1] if curve.curve else None,
            "best": best,
            "mean_lambda": [float(model.lambda_P.mean()), float(model.lambda_Q.mean())],
            "seconds": time.perf_counter() - t0,
        }
        tmp = out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1)
        os.replace(tmp, out)
    with open(out[:-5] + ".md", "w") as f:
        f.write(f"# λOpt variants on {args.dataset} (test split; `bench_variants.py`)\n\n")
        f.write("| run | epochs | final HR@100 | final NDCG@100 | best HR@100 (epoch) | s |\n")
        f.write("|---|---|---|---|---|---|\n")
        for text, r in results.items():
            fin, b = r["final"] or {}, r["best"] or {}
            f.write(
                f"| `{text}` | {r['params'].get('epochs')} | {fin.get('hr@100', np.nan):.4f} | "
                f"{fin.get('ndcg@100', np.nan):.4f} | {b.get('hr@100', np.nan):.4f} "
                f"({b.get('epoch')}) | {r['seconds']:.0f} |\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
