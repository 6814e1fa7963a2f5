"""How low can a λOpt-DUI epoch go against a fixed-λ one? Each kernel of a step timed alone, on
warm caches, on generated data of a given shape; from them the smallest possible ratio
λOpt-DUI ÷ fixed-λ (dense Adam on Θ), with Λ by Adam and by SGD.

    python benchmarks/bench_floor.py --shape ml-1m --repeats 200

A fixed-λ step is at least one BPR pass (forward + scatter of a batch) and one dense Adam pass
over Θ. A λOpt step adds two BPR passes (B̄ at Θ, V at Θ̄), the lookahead on the rows V
touches and, with Adam on a DUI Λ, a dense Adam pass over Λ, which has one entry per entry of
Θ. Kernels alone on warm caches are a lower bound for what they cost inside an epoch (where the
larger λOpt state no longer fits in the cache). Writes ``results/bench_floor-<shape>.json/.md``.
"""

import argparse
import os
import statistics
import time

import numba
import numpy as np

from bench_epoch import SHAPES, shaped_split
from lopt_np.kernels import ADAM
from lopt_np.kernels.cpu.bpr import bpr_forward, bpr_grad_scatter, column_blocks
from lopt_np.kernels.cpu.hypergradient import hold_in_table_order, lookahead_rows, release_rows
from lopt_np.kernels.cpu.lambda_update import lambda_adam_update
from lopt_np.kernels.cpu.optimizers import adam_update
from lopt_np.sampling import TripletSampler
from report import save_report


def timed(fn, repeats):
    """Median seconds of ``fn()`` over ``repeats`` calls after 3 warm-up calls."""
    for _ in range(3):
        fn()
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=SHAPES, default="ml-1m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    n_users, n_items, n_pos = SHAPES[a.shape]
    split = shaped_split(n_users, n_items, n_pos)
    sampler = TripletSampler(split, 0)
    B = sampler.train_triplets(1).batch(0, a.batch_size)
    V = sampler.valid_triplets(1, a.batch_size)
    f = np.float32
    rng = np.random.default_rng(0)
    K, nb = a.dim, a.batch_size
    consts = (f(1e-3), f(0.9), f(0.999), f(0.1), f(0.001), f(1e-8), f(0.0))  # ε inside the root

    def table(n, capacity):
        T = rng.normal(0, 0.1, (n, K)).astype(f)
        return {
            "T": T,
            "m": np.zeros_like(T),
            "v": np.zeros_like(T),
            "lam": np.full((n, K), f(0.01)),
            "lam_m": np.zeros_like(T),
            "lam_v": np.zeros_like(T),
            "id": np.arange(n, dtype=np.int64),
            "slot": np.full(n, -1, np.int64),
            "held": np.zeros(capacity, np.int64),
            "g": np.zeros((capacity, K), f),
            "count": np.ones(capacity, np.int64),
            "Tbar": np.zeros((capacity, K), f),
            "dT": np.zeros((capacity, K), f),
        }

    tP, tQ = table(n_users, nb), table(n_items, 2 * nb)
    delta, loss = np.zeros(nb, f), np.zeros(nb, f)

    def hold(batch):
        n_p = hold_in_table_order(batch.users, batch.users[:0], tP["slot"], tP["held"])
        n_q = hold_in_table_order(batch.pos, batch.neg, tQ["slot"], tQ["held"])
        return n_p, n_q

    def release(n_p, n_q):
        release_rows(tP["slot"], tP["held"], n_p)
        release_rows(tQ["slot"], tQ["held"], n_q)

    n_b = hold(B)

    # the real step's pass: tables and source maps, then B (held: every triplet is computed)
    bpr_inputs = (tP["T"], tQ["T"], tP["id"], tQ["id"], B.users, B.pos, B.neg)

    def bpr_pass():
        bpr_forward(*bpr_inputs, tP["slot"], tQ["slot"], delta, loss)
        bpr_grad_scatter(
            *bpr_inputs,
            delta,
            f(1 / nb),
            tP["slot"],
            tQ["slot"],
            tP["g"],
            tQ["g"],
            tP["count"],
            tQ["count"],
            False,
            column_blocks(),
        )

    def theta_pass():
        for t in (tP, tQ):
            adam_update(
                t["T"],
                t["m"],
                t["v"],
                t["slot"],
                t["g"],
                t["count"],
                t["lam"],
                f(1 / nb),
                False,
                *consts,
            )

    def lambda_pass():
        for t in (tP, tQ):
            lambda_adam_update(
                t["lam"],
                t["slot"],
                t["held"],
                0,
                t["g"],
                t["lam_m"],
                t["lam_v"],
                t["lam_v"],
                f(1.0),
                *consts,
                False,
                False,
            )

    rows = {
        "BPR pass (forward + scatter, one batch)": timed(bpr_pass, a.repeats),
        "dense Adam pass over Θ": timed(theta_pass, a.repeats),
        "dense Adam pass over a DUI Λ": timed(lambda_pass, a.repeats),
    }
    release(*n_b)
    n_v = hold(V)

    def lookahead():
        for t, n in zip((tP, tQ), n_v):
            lookahead_rows(
                t["T"],
                t["m"],
                t["v"],
                t["g"],
                t["count"],
                t["held"],
                n,
                t["lam"],
                f(1 / nb),
                False,
                False,
                ADAM,
                *consts[:1],
                f(1e-3),
                *consts[1:],
                t["Tbar"],
                t["dT"],
            )

    rows[f"lookahead rows of one V batch ({n_v[0]} users, {n_v[1]} items)"] = timed(
        lookahead, a.repeats
    )
    release(*n_v)
    bpr, theta, lam, look = rows.values()
    fixed = bpr + theta
    extra_sgd = 2 * bpr + look
    floor = {
        "fixed-λ step": fixed,
        "λOpt-DUI step, Λ by SGD": fixed + extra_sgd,
        "λOpt-DUI step, Λ by Adam": fixed + extra_sgd + lam,
    }
    lines = [
        f"{a.shape} shape, K={K}, batch {nb}, {numba.get_num_threads()} threads, float32; "
        f"each kernel alone on warm caches, median of {a.repeats} calls",
        "",
        "| kernel | ms |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v * 1e3:.3f} |" for k, v in rows.items()]
    lines += ["", "| step (sum of its kernels) | ms | ÷ fixed-λ step |", "|---|---|---|"]
    lines += [f"| {k} | {v * 1e3:.3f} | {v / fixed:.2f} |" for k, v in floor.items()]
    text = "\n".join(lines)
    print(text)
    save_report(
        a.out,
        f"bench_floor-{a.shape}",
        {
            "shape": a.shape,
            "dim": K,
            "batch_size": nb,
            "threads": numba.get_num_threads(),
            "kernels_ms": {k: v * 1e3 for k, v in rows.items()},
            "steps_ms": {k: v * 1e3 for k, v in floor.items()},
            "ratios_to_fixed": {k: v / fixed for k, v in floor.items()},
        },
        text,
    )


if __name__ == "__main__":
    main()
