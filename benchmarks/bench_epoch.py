"""Time one training epoch (fixed λ and λOpt-DUI, dense Adam) and one full evaluation on
generated data of a given shape; print a table with the λOpt/fixed ratio and write
``benchmarks/results/bench_epoch.{json,md}``.

    python benchmarks/bench_epoch.py --shape ml-1m --repeats 3

Warm-up run first (Numba compilation), then the median of ``--repeats`` runs. An "epoch" is
every training positive once (plus, for λOpt, the same number of lookahead triplets and one
validation batch per step), sampling included.
"""
import argparse
import json
import os
import platform
import statistics
import time

import numba
import numpy as np

from lopt_np import LambdaOpt, Split, evaluate

SHAPES = {"ml-1m": (6040, 3706, 1_000_209), "ml-10m": (69_878, 10_677, 10_000_054),
          "small": (2000, 1500, 100_000)}


def shaped_split(n_users, n_items, n_train, seed=0):
    """Long-tailed random interactions: ``n_train`` training pairs plus validation and test
    sets of a third of that each (so one epoch is ``n_train`` triplets)."""
    rng = np.random.default_rng(seed)
    uw = rng.pareto(1.5, n_users) + 1.0
    iw = 1.0 / np.arange(1, n_items + 1) ** 0.8
    total = int(n_train * 5 / 3)
    pairs = np.unique(np.stack([rng.choice(n_users, int(total * 1.4), p=uw / uw.sum()),
                                rng.choice(n_items, int(total * 1.4), p=iw / iw.sum())], 1),
                      axis=0)
    pairs = pairs[rng.permutation(len(pairs))[:total]]
    part = rng.choice(3, len(pairs), p=[0.6, 0.2, 0.2])
    ids = np.arange(max(n_users, n_items)).astype(str)
    return Split(n_users, n_items, pairs[part == 0], pairs[part == 1], pairs[part == 2],
                 ids[:n_users], ids[:n_items])


def time_fit(split, repeats, **kw):
    LambdaOpt(epochs=1, eval_every=0, **kw).fit(split)   # warm-up (compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        LambdaOpt(epochs=1, eval_every=0, **kw).fit(split)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="ml-1m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    n_users, n_items, n_pos = SHAPES[a.shape]
    split = shaped_split(n_users, n_items, int(n_pos * 0.6))
    common = dict(dim=a.dim, batch_size=a.batch_size, threads=a.threads, optimizer="adam")
    rows = {}
    rows["fixed-λ epoch (dense Adam)"] = time_fit(split, a.repeats, learn_lambda=False, **common)
    rows["λOpt-DUI epoch (dense Adam)"] = time_fit(split, a.repeats, granularity="DUI",
                                                   **common)
    rows["λOpt-DUI epoch (SGD)"] = time_fit(split, a.repeats, granularity="DUI",
                                            **{**common, "optimizer": "sgd", "lr": 0.05})
    P = np.random.default_rng(0).normal(0, 0.1, (n_users, a.dim)).astype(np.float32)
    Q = np.random.default_rng(1).normal(0, 0.1, (n_items, a.dim)).astype(np.float32)
    evaluate(P, Q, split)
    ev = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        evaluate(P, Q, split)
        ev.append(time.perf_counter() - t0)
    rows["full evaluation (test, K=50,100)"] = (statistics.median(ev), ev)
    base = rows["fixed-λ epoch (dense Adam)"][0]
    meta = {"shape": a.shape, "users": n_users, "items": n_items, "train": len(split.train),
            "dim": a.dim, "batch_size": a.batch_size, "threads": numba.get_num_threads(),
            "cpu": platform.processor() or platform.machine(), "repeats": a.repeats}
    lines = [f"shape {a.shape}: {n_users:,} users, {n_items:,} items, {len(split.train):,} "
             f"training triplets per epoch, K={a.dim}, batch {a.batch_size}, "
             f"{meta['threads']} threads, median of {a.repeats}", "",
             "| what | median s | runs (s) | ratio to fixed-λ epoch |", "|---|---|---|---|"]
    for name, (med, runs) in rows.items():
        lines.append(f"| {name} | {med:.3f} | {', '.join(f'{r:.3f}' for r in runs)} | "
                     f"{med / base:.2f} |")
    text = "\n".join(lines)
    print(text)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, f"bench_epoch-{a.shape}.json"), "w") as fh:
        json.dump({"meta": meta, "results": {k: {"median_s": m, "runs_s": r, "ratio": m / base}
                                             for k, (m, r) in rows.items()}}, fh, indent=2)
    with open(os.path.join(a.out, f"bench_epoch-{a.shape}.md"), "w") as fh:
        fh.write(text + "\n")


if __name__ == "__main__":
    main()
