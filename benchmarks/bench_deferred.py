"""Dense Adam with deferred rows against a pass over every row each step (CPU): epoch seconds of
fixed-λ and λOpt-DUI with each, on generated data of a given shape, the two taking turns.

    python benchmarks/bench_deferred.py --shape ml-10m --triplets 600000 --repeats 3

Both give the same bits (``tests/backends/test_training.py``); a row no batch touches waits
until a batch reads it (``kernels.step_order``, "deferred rows"). ``--triplets`` caps the
training triplets per epoch: what a step costs depends on the tables' size, not on how many
steps an epoch has. Writes ``results/bench_deferred-<shape>.json/.md``.
"""

import argparse
import os
import statistics
import time

import numba

import lopt_np.backends.cpu as cpu_backend
from bench_epoch import SHAPES, shaped_split
from lopt_np.trainer import LambdaOpt
from report import save_report

MODES = {
    "fixed-λ, dense Adam": dict(learn_lambda=False, lambda_init=0.01),
    "λOpt-DUI, dense Adam": dict(granularity="DUI"),
}


def epoch_seconds(split, defer, n_epochs, **params):
    """Training seconds of epochs 2 … ``n_epochs`` (the first compiles), deferral on or off."""
    cpu_backend.DEFER_ROWS = defer
    model = LambdaOpt(epochs=n_epochs, eval_every=0, optimizer="adam", **params).fit(split)
    return [record["train_seconds"] for record in model.history[1:]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="ml-1m")
    ap.add_argument("--triplets", type=int, default=0, help="training triplets (0: the shape's)")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3, help="runs of each, taking turns")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per run (the first not timed)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    n_users, n_items, n_train = SHAPES[a.shape]
    n_train = a.triplets or n_train
    split = shaped_split(n_users, n_items, n_train)
    threads = numba.config.NUMBA_NUM_THREADS
    common = dict(dim=a.dim, batch_size=a.batch_size, threads=threads, lr=1e-3)
    times = {(mode, defer): [] for mode in MODES for defer in (True, False)}
    for _ in range(a.repeats):
        for mode, params in MODES.items():
            for defer in (True, False):
                times[mode, defer] += epoch_seconds(split, defer, a.epochs, **common, **params)
    rows = []
    for mode in MODES:
        deferred, every_row = (statistics.median(times[mode, d]) for d in (True, False))
        rows.append(
            {
                "mode": mode,
                "deferred_s": deferred,
                "every_row_s": every_row,
                "speedup": every_row / deferred,
                "epochs_deferred": times[mode, True],
                "epochs_every_row": times[mode, False],
            }
        )
    title = (
        f"{time.strftime('%Y-%m-%d')}, {a.shape} tables ({n_users:,} × {n_items:,}), "
        f"{n_train:,} training triplets per epoch, K={a.dim}, batch {a.batch_size}, "
        f"{threads} threads; median epoch seconds of {a.repeats} runs × {a.epochs - 1} "
        "epochs, taking turns"
    )
    lines = [
        title,
        "",
        "| mode | deferred rows | every row each step | speedup |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mode']} | {r['deferred_s']:.3f} | {r['every_row_s']:.3f} | "
            f"{r['speedup']:.2f}× |"
        )
    meta = dict(vars(a), n_users=n_users, n_items=n_items, n_train=n_train, threads=threads)
    text = "\n".join(lines)
    print(text)
    save_report(a.out, f"bench_deferred-{a.shape}", {"settings": meta, "rows": rows}, text)


if __name__ == "__main__":
    main()
