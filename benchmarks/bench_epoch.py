"""Time one training epoch of lopt_np (fixed λ and λOpt-DUI with SGD, dense Adam and lazy Adam)
and one full evaluation on generated data of a given shape, against PyTorch CPU MF-BPR
(default and fused Adam) and ``implicit``'s BPR when installed; print a table with absolute
times and ratios and write ``benchmarks/results/bench_epoch-<shape>.{json,md}``.

    pip install -e .[bench]          # PyTorch and implicit, for the peers (optional)
    python benchmarks/bench_epoch.py --shape ml-1m --repeats 5

Each timing: a warm-up first (Numba compilation, allocator), then the median of ``--repeats``.
An epoch is every training positive once: for lopt_np, sampling of the triplets included, and
for λOpt also one lookahead batch B̄ and one validation batch V per λ step (every step, and
every N-th in the ``--lambda-intervals`` rows; |V| = the batch size unless a
``--valid-batch-sizes`` row says otherwise); Λ by AMSGrad on the validation batch's rows is
the default ("rows all": the dense Λ update, ``--lambda-rows all``); the peers run on the
triplets lopt_np sampled (their sampling is not timed; implicit samples its own).
"""

import argparse
import functools
import os
import platform
import statistics
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peers  # noqa: E402
from report import save_report  # noqa: E402

from lopt_np import LambdaOpt, Split, evaluate  # noqa: E402
from lopt_np.sampling import TripletSampler  # noqa: E402

EVAL_ROW = "full evaluation (AUC, HR/NDCG@50,100)"
SHAPES = {
    "ml-1m": (6040, 3706, 1_000_209),
    "ml-10m": (69_878, 10_677, 10_000_054),
    "small": (2000, 1500, 100_000),
    "tiny": (678, 774, 13_946),
}


def shaped_split(n_users, n_items, n_train, seed=0):
    """Long-tailed random interactions: exactly ``n_train`` distinct training pairs (one epoch
    is ``n_train`` triplets) plus validation and test sets of a quarter of that each."""
    rng = np.random.default_rng(seed)
    uw = rng.pareto(1.5, n_users) + 1.0
    iw = 1.0 / np.arange(1, n_items + 1) ** 0.8
    total = int(n_train * 1.5)
    codes = np.empty(0, np.int64)
    while len(codes) < total:
        draw = int((total - len(codes)) * 1.3) + 1000
        new = rng.choice(n_users, draw, p=uw / uw.sum()) * n_items + rng.choice(
            n_items, draw, p=iw / iw.sum()
        )
        codes = np.unique(np.concatenate([codes, new]))
    codes = codes[rng.permutation(len(codes))[:total]]
    pairs = np.stack([codes // n_items, codes % n_items], 1)
    n_v = (total - n_train) // 2
    ids = np.arange(max(n_users, n_items)).astype(str)
    return Split(
        n_users,
        n_items,
        pairs[:n_train],
        pairs[n_train : n_train + n_v],
        pairs[n_train + n_v :],
        ids[:n_users],
        ids[:n_items],
    )


def median_of(fn, repeats):
    fn()  # warm-up
    runs = [fn() for _ in range(repeats)]
    return statistics.median(runs), runs


def round_robin(jobs, repeats):
    """``{name: (median, runs)}``: every job warmed up once, then all of them run in turn,
    ``repeats`` rounds, so that a slow spell of a shared machine lands on every row alike
    (the ratios are what this benchmark is for) rather than on whichever row ran then."""
    for name, fn in jobs.items():
        fn()
        print(f"warmed up: {name}", flush=True)
    runs = {name: [] for name in jobs}
    for r in range(repeats):
        for name, fn in jobs.items():
            runs[name].append(fn())
        print(
            f"round {r + 1}/{repeats}: " + ", ".join(f"{runs[n][-1]:.3f}" for n in jobs), flush=True
        )
    return {name: (statistics.median(x), x) for name, x in runs.items()}


def lopt_epoch(split, **kw):
    """Seconds of one epoch, read from the trainer's own clock (sampling included)."""

    def run():
        model = LambdaOpt(epochs=1, eval_every=0, **kw).fit(split)
        return model.history[0]["train_seconds"]

    return run


def with_option(lopt, values, bases, option, label):
    """Add to ``lopt`` a row of each of ``bases`` with ``option`` set to each of the
    comma-separated integers ``values`` ('' for none), named ``base, label.format(value)``."""
    for n in (int(x) for x in values.split(",") if x.strip()):
        for base in bases:
            lopt[f"{base}, {label.format(n)}"] = {**lopt[base], option: n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="ml-1m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="0: all cores")
    ap.add_argument("--no-peers", action="store_true", help="skip PyTorch and implicit")
    ap.add_argument(
        "--lambda-intervals",
        default="3",
        help="comma-separated N: also time λOpt-DUI (dense Adam) with a λ step every "
        "N real steps ('' for none)",
    )
    ap.add_argument(
        "--valid-batch-sizes",
        default="",
        help="comma-separated |V|: also time the default λOpt-DUI (dense and lazy Adam) with "
        "validation batches of this many triplets",
    )
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    threads = a.threads or numba.config.NUMBA_NUM_THREADS
    n_users, n_items, n_pos = SHAPES[a.shape]
    split = shaped_split(n_users, n_items, n_pos)
    common = dict(dim=a.dim, batch_size=a.batch_size, threads=threads, lr=1e-3)
    lopt = {
        "fixed-λ, dense Adam": dict(learn_lambda=False, optimizer="adam", lambda_init=0.01),
        "fixed-λ, lazy Adam": dict(learn_lambda=False, optimizer="lazy_adam", lambda_init=0.01),
        "fixed-λ, SGD": dict(learn_lambda=False, optimizer="sgd", lambda_init=0.01, lr=0.05),
        "λOpt-DUI, dense Adam (Λ: AMSGrad, rows batch)": dict(granularity="DUI", optimizer="adam"),
        "λOpt-DUI, dense Adam (Λ: AMSGrad, rows all)": dict(
            granularity="DUI", optimizer="adam", lambda_rows="all"
        ),
        "λOpt-DUI, dense Adam (Λ: SGD)": dict(
            granularity="DUI", optimizer="adam", lambda_optimizer="sgd"
        ),
        "λOpt-DUI, lazy Adam (Λ: AMSGrad, rows batch)": dict(
            granularity="DUI", optimizer="lazy_adam"
        ),
        "λOpt-DUI, lazy Adam (Λ: AMSGrad, rows all)": dict(
            granularity="DUI", optimizer="lazy_adam", lambda_rows="all"
        ),
        "λOpt-DUI, lazy Adam (Λ: SGD)": dict(
            granularity="DUI", optimizer="lazy_adam", lambda_optimizer="sgd"
        ),
        "λOpt-DUI, SGD (Λ: SGD)": dict(
            granularity="DUI", optimizer="sgd", lr=0.05, lambda_optimizer="sgd"
        ),
    }
    with_option(
        lopt,
        a.lambda_intervals,
        ("λOpt-DUI, dense Adam (Λ: AMSGrad, rows batch)", "λOpt-DUI, dense Adam (Λ: SGD)"),
        "lambda_update_interval",
        "λ step every {}",
    )
    with_option(
        lopt,
        a.valid_batch_sizes,
        (
            "λOpt-DUI, dense Adam (Λ: AMSGrad, rows batch)",
            "λOpt-DUI, lazy Adam (Λ: AMSGrad, rows batch)",
        ),
        "valid_batch_size",
        "validation batch {}",
    )
    jobs = {name: lopt_epoch(split, **{**common, **kw}) for name, kw in lopt.items()}
    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (n_users, a.dim)).astype(np.float32)
    Q = rng.normal(0, 0.1, (n_items, a.dim)).astype(np.float32)

    def run_eval():
        t0 = time.perf_counter()
        evaluate(P, Q, split)
        return time.perf_counter() - t0

    jobs[EVAL_ROW] = run_eval
    peer_names, skipped = [], []
    if not a.no_peers:
        tri = TripletSampler(split, 0).train_triplets(1)
        if peers.torch_available():
            for fused in (False, True):
                name = f"PyTorch MF-BPR, Adam{'(fused=True)' if fused else ''}"
                jobs[name] = functools.partial(
                    peers.torch_epoch_seconds,
                    n_users,
                    n_items,
                    tri,
                    a.dim,
                    a.batch_size,
                    1e-3,
                    0.01,
                    threads,
                    fused,
                )
                peer_names.append(name)
        else:
            skipped.append("PyTorch (not installed)")
        if peers.implicit_available():
            import scipy.sparse as sp

            ui = sp.csr_matrix(
                (np.ones(len(split.train), np.float32), (split.train[:, 0], split.train[:, 1])),
                (n_users, n_items),
            )
            name = "implicit BPR (Hogwild SGD)"
            jobs[name] = functools.partial(
                peers.implicit_epoch_seconds, ui, a.dim, 0.01, 0.01, threads
            )
            peer_names.append(name)
        else:
            skipped.append("implicit (not installed)")
    timed = round_robin(jobs, a.repeats)
    peer_rows = {name: timed.pop(name) for name in peer_names}
    rows = timed
    write_report(a, split, threads, rows, peer_rows, skipped)


def write_report(a, split, threads, rows, peer_rows, skipped):
    n_users, n_items = split.n_users, split.n_items
    base = rows["fixed-λ, dense Adam"][0]
    meta = {
        "shape": a.shape,
        "users": n_users,
        "items": n_items,
        "train_triplets": len(split.train),
        "dim": a.dim,
        "batch_size": a.batch_size,
        "threads": threads,
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "repeats": a.repeats,
        "skipped_peers": skipped,
        "date": time.strftime("%Y-%m-%d"),
    }
    head = (
        f"shape {a.shape}: {n_users:,} users, {n_items:,} items, {len(split.train):,} "
        f"training triplets per epoch, K={a.dim}, batch {a.batch_size}, {threads} threads, "
        f"median of {a.repeats} rounds after a warm-up, all rows taking turns in each round"
    )
    lines = [
        head,
        "",
        "| lopt_np | median s | runs (s) | ÷ fixed-λ dense Adam |",
        "|---|---|---|---|",
    ]
    for name, (med, runs) in rows.items():
        lines.append(
            f"| {name} | {med:.3f} | {', '.join(f'{r:.3f}' for r in runs)} | {med / base:.2f} |"
        )
    ratios = {}
    if peer_rows:
        lines += ["", "| peer | median s | runs (s) | lopt_np ÷ peer |", "|---|---|---|---|"]
        for name, (med, runs) in peer_rows.items():
            ours = (
                [
                    "λOpt-DUI, lazy Adam (Λ: SGD)",
                    "λOpt-DUI, lazy Adam (Λ: AMSGrad, rows batch)",
                    "λOpt-DUI, lazy Adam (Λ: AMSGrad, rows all)",
                ]
                if name.startswith("implicit")
                else ["fixed-λ, dense Adam"]
            )
            ratios[name] = {"ratios": {o: rows[o][0] / med for o in ours}}
            lines.append(
                f"| {name} | {med:.3f} | {', '.join(f'{r:.3f}' for r in runs)} | "
                + "; ".join(f"{o}: {rows[o][0] / med:.2f}" for o in ours)
                + " |"
            )
    if skipped:
        lines += ["", "skipped: " + ", ".join(skipped)]
    text = "\n".join(lines)
    print(text)
    out = {
        "meta": meta,
        "lopt_np": {
            k: {"median_s": m, "runs_s": r, "ratio_to_fixed_dense_adam": m / base}
            for k, (m, r) in rows.items()
        },
        "peers": {k: {"median_s": m, "runs_s": r, **ratios[k]} for k, (m, r) in peer_rows.items()},
    }
    save_report(a.out, f"bench_epoch-{a.shape}", out, text)


if __name__ == "__main__":
    main()
