"""All-users top-n recommendation on an ML-10M-shaped model: lopt_np's ``Model.recommend``
(float64 scores by BLAS, heap selection by a parallel Numba kernel) against ``implicit``'s
``recommend`` (float32 BLAS and its own top-k) on the same factors and the same interactions
to filter, in the same run.

    python benchmarks/bench_recommend.py [--users 69878 --items 10677 --dim 128 -n 100]

Random N(0, 0.1²) factors; each user's interactions drawn without replacement, 20-300 per
user (ML-10M has 143 on average). Each side runs ``--repeats`` times after one warm-up call
(Numba compiles, implicit allocates); medians are reported. The overlap of the two top-n
lists is printed as a check (float32 against float64 scores may swap near-ties). Results go to
``benchmarks/results/bench_recommend.{json,md}``.
"""

import argparse
import os
import platform
import statistics
import time

import numpy as np

from report import save_report

HERE = os.path.dirname(os.path.abspath(__file__))


def interactions(rng, n_users, n_items):
    counts = rng.integers(20, 301, n_users)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    items = np.concatenate([np.sort(rng.choice(n_items, c, replace=False)) for c in counts])
    return indptr, items.astype(np.int64)


def timed(fn, repeats):
    fn()  # warm-up: compilation, first allocation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=69878)
    ap.add_argument("--items", type=int, default=10677)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()

    import numba

    from lopt_np import __version__
    from lopt_np.model import Model

    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (a.users, a.dim)).astype(np.float32)
    Q = rng.normal(0, 0.1, (a.items, a.dim)).astype(np.float32)
    indptr, seen = interactions(rng, a.users, a.items)
    user_ids, item_ids = np.arange(a.users), np.arange(a.items)
    model = Model(
        P, Q, np.zeros((1, 1)), np.zeros((1, 1)), {}, [], {}, 1, user_ids, item_ids, indptr, seen
    )
    lopt_s, lopt_times, (lopt_ids, _) = timed(lambda: model.recommend(user_ids, a.n), a.repeats)
    print(
        f"lopt_np  recommend, all {a.users:,} users, n={a.n}: {lopt_s:.2f} s (median of "
        f"{a.repeats})",
        flush=True,
    )
    result = {
        "shape": {
            "users": a.users,
            "items": a.items,
            "dim": a.dim,
            "n": a.n,
            "interactions": int(len(seen)),
        },
        "lopt_np": {"median_s": lopt_s, "times_s": lopt_times, "version": __version__},
        "threads": numba.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }
    lines = [
        f"All-users top-{a.n}, {a.users:,} × {a.items:,} items, K={a.dim}, "
        f"{len(seen):,} interactions filtered; {os.cpu_count()} cores; "
        f"{result['date']}",
        "",
        "| implementation | median s | ratio |",
        "|---|---|---|",
        f"| lopt_np Model.recommend (float64) | {lopt_s:.2f} | 1.00 |",
    ]
    try:
        import scipy.sparse as sp
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        print("implicit is not installed (pip install implicit): skipped")
        lines.append("| implicit recommend | not installed | |")
    else:
        import implicit

        peer = AlternatingLeastSquares(factors=a.dim)
        peer.user_factors, peer.item_factors = P, Q
        X = sp.csr_matrix((np.ones(len(seen), np.float32), seen, indptr), shape=(a.users, a.items))
        peer_s, peer_times, (peer_ids, _) = timed(
            lambda: peer.recommend(user_ids, X, N=a.n, filter_already_liked_items=True), a.repeats
        )
        overlap = float(
            np.mean(
                [
                    len(np.intersect1d(lopt_ids[u], peer_ids[u])) / a.n
                    for u in range(0, a.users, max(1, a.users // 2000))
                ]
            )
        )
        print(
            f"implicit recommend: {peer_s:.2f} s; lopt_np / implicit {lopt_s / peer_s:.2f}; "
            f"top-n overlap {overlap:.4f}"
        )
        result["implicit"] = {
            "median_s": peer_s,
            "times_s": peer_times,
            "version": implicit.__version__,
            "overlap": overlap,
        }
        lines.append(
            f"| implicit {implicit.__version__} recommend (float32) | {peer_s:.2f} | "
            f"{peer_s / lopt_s:.2f} |"
        )
        lines += [
            "",
            f"ratio: implicit's time over lopt_np's; top-{a.n} lists overlap "
            f"{overlap:.2%} (sampled users)",
        ]
    text = "\n".join(lines)
    print(text)
    save_report(a.out, "bench_recommend", result, text)


if __name__ == "__main__":
    main()
