"""Accuracy of lazy (row-sparse) Adam beside dense Adam on a real dataset: MF-λFix (its λ grid)
and MF-λOpt-DUI trained by ``lopt reproduce`` once with ``--optimizer adam`` and once with
``--optimizer lazy_adam``, every other setting as in Table 2 (``reproduce.SETTINGS``).

    python benchmarks/bench_lazy.py --dataset ml-100k

The runs go to ``<runs>/lazy-<dataset>-<optimizer>/`` (outside the repository: the data's
license forbids redistributing it); the side-by-side table to
``benchmarks/results/bench_lazy-<dataset>.{json,md}``.
"""

import argparse
import json
import os
import subprocess
import sys
import time

from report import save_report
from reproduce import DATA, HERE, SETTINGS

OPTIMIZERS = ("adam", "lazy_adam")
METHODS = ("MF-λFix", "MF-λOpt-DUI")
METRICS = ("hr@100", "ndcg@100", "auc")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--runs", default=os.path.join(HERE, "..", "runs"))
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    path = os.path.join(DATA, f"{a.dataset}.csv.gz")
    if not os.path.isfile(path):
        sys.exit(f"Error: {path} not found (set LOPT_SHARED_DATA to the folder holding it)")
    rows = {}
    for opt in OPTIMIZERS:
        out = os.path.join(a.runs, f"lazy-{a.dataset}-{opt}")
        cmd = [
            "lopt",
            "reproduce",
            "--data",
            path,
            *SETTINGS,
            "--optimizer",
            opt,
            "--methods",
            "MF-lFix,MF-lOpt-DUI",
            "--out",
            out,
            "--overwrite",
        ]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        print(f"{opt}: {time.perf_counter() - t0:.0f} s", flush=True)
        with open(os.path.join(out, "table2.json")) as fh:
            table = json.load(fh)
        for row in table["rows"]:
            rows[(row["method"], opt)] = row
    lines = [
        f"{a.dataset}, Table 2 settings (reproduce.SETTINGS), Θ by dense or lazy Adam",
        "",
        "| method | Θ optimizer | HR@100 | NDCG@100 | AUC | best epoch | s per epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        for opt in OPTIMIZERS:
            r = rows[(method, opt)]
            lam = f" (λ={r['lambda']:g})" if "lambda" in r else ""
            lines.append(
                f"| {method}{lam} | {opt} | {r['hr@100']:.4f} | {r['ndcg@100']:.4f} | "
                f"{r['auc']:.4f} | {r['best_epoch']} | {r['seconds_per_epoch']:.3f} |"
            )
    text = "\n".join(lines)
    print(text)
    save_report(
        a.out,
        f"bench_lazy-{a.dataset}",
        {
            "dataset": a.dataset,
            "settings": SETTINGS,
            "rows": [
                {
                    "method": m,
                    "optimizer": o,
                    **{k: rows[(m, o)][k] for k in (*METRICS, "best_epoch", "seconds_per_epoch")},
                }
                for m in METHODS
                for o in OPTIMIZERS
            ],
        },
        text,
    )


if __name__ == "__main__":
    main()
