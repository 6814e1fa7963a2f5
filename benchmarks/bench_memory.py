"""Peak memory of a λOpt-DUI run on generated data of a given shape (default ML-10M shape:
69,878 users, 10,677 items, 10 M training positives, K=128), measured in a fresh process.

    python benchmarks/bench_memory.py --shape ml-10m --epochs 1

Prints and writes ``benchmarks/results/bench_memory-<shape>.{json,md}``: peak RSS of the whole
process (data generation included), the RSS before training, and the bytes of the state arrays
(P, Q, Adam moments, Λ and its moments, step buffers). Every step buffer is allocated once,
when the backend is built; the hot loop allocates nothing.
"""

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_epoch import SHAPES, shaped_split  # noqa: E402
from report import save_report  # noqa: E402

from lopt_np import LambdaOpt  # noqa: E402


def rss_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="ml-10m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    n_users, n_items, n_pos = SHAPES[a.shape]
    split = shaped_split(n_users, n_items, n_pos)
    before = rss_mib()
    t0 = time.perf_counter()
    model = LambdaOpt(
        dim=a.dim, epochs=a.epochs, eval_every=0, granularity="DUI", optimizer=a.optimizer
    ).fit(split)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    table = (n_users + n_items) * a.dim * 4 / 2**20
    res = {
        "shape": a.shape,
        "users": n_users,
        "items": n_items,
        "train": len(split.train),
        "dim": a.dim,
        "optimizer": a.optimizer,
        "epochs": a.epochs,
        "rss_before_training_mib": before,
        "peak_rss_mib": peak,
        "one_float32_table_pair_mib": table,
        "state_mib": table * 6,  # Θ, m, v, Λ, m_Λ, v_Λ (DUI, Adam on Θ and on Λ)
        "train_seconds": seconds,
        "epoch_seconds": [h["train_seconds"] for h in model.history],
    }
    text = (
        f"{a.shape} λOpt-DUI ({a.optimizer}, K={a.dim}, {len(split.train):,} triplets/epoch):"
        f" peak RSS {peak:,.0f} MiB (before training {before:,.0f} MiB; Θ+moments+Λ+moments "
        f"{table * 6:,.0f} MiB of float32 state); epoch {res['epoch_seconds'][0]:.1f} s"
    )
    print(text)
    save_report(a.out, f"bench_memory-{a.shape}", res, text)


if __name__ == "__main__":
    main()
