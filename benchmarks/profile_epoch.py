"""Where an epoch's time goes: seconds per CPU kernel of one fixed-λ and one λOpt epoch, and
the rest (Python orchestration, sampling), on generated data of a given shape.

    python benchmarks/profile_epoch.py --shape ml-1m --granularity DUI

Each compiled call the CPU backend makes is wrapped by a timer; the epoch is the median of
``--repeats`` epochs after one warm-up epoch. Writes ``results/profile_epoch-<shape>.json/.md``.
"""

import argparse
import collections
import os
import time

import numba
import numpy as np

import lopt_np.kernels.cpu.lambda_update as lambda_kernels
import lopt_np.kernels.cpu.step as step_kernels
from bench_epoch import SHAPES, shaped_split
from lopt_np.math.lambda_update import LAMBDA_ROWS
from lopt_np.trainer import LOOKAHEAD_BATCHES, LambdaOpt, Progress, TrainConfig
from report import save_report

# the calls the CPU backend makes per step: lookahead_step (SPEC §5 steps 1-4: two BPR passes,
# the lookahead rows and the norm of G_Λ) and theta_step (a BPR pass and the Θ update) are one
# compiled call each (the driver looks every kernel up in its module at each call)
KERNELS = {
    "lookahead_step": step_kernels,
    "theta_step": step_kernels,
    "release_rows": step_kernels,
    "lambda_adam_update": lambda_kernels,
    "lambda_sgd_update": lambda_kernels,
}


class EpochTimer(Progress):
    """Snapshots the kernel timers at each epoch's end."""

    def __init__(self, totals):
        self.totals, self.per_epoch = totals, []

    def epoch_end(self, record):
        self.per_epoch.append((record["train_seconds"], dict(self.totals)))
        self.totals.clear()


def instrument(totals):
    def timer(fn, name):
        def timed(*args):
            t0 = time.perf_counter()
            out = fn(*args)
            totals[name] += time.perf_counter() - t0
            return out

        return timed

    for name, module in KERNELS.items():
        fn = getattr(module, name)
        if isinstance(fn, dict):  # one compiled function per optimizer code
            setattr(module, name, {code: timer(f, name) for code, f in fn.items()})
        else:
            setattr(module, name, timer(fn, name))


def compile_first(**params):
    """One epoch of each mode on tiny data before the timers go in: the compiled steps call
    ``release_rows`` as a global, so one compiled after :func:`instrument` would see the
    Python timer in its place (a cold Numba cache, e.g. after a kernel file changed)."""
    tiny = shaped_split(*SHAPES["tiny"])
    for learn in (False, True):
        LambdaOpt(epochs=1, eval_every=0, learn_lambda=learn, **params).fit(tiny)


def profile(split, repeats, totals, **params):
    totals.clear()
    timer = EpochTimer(totals)
    LambdaOpt(epochs=repeats + 1, eval_every=0, **params).fit(split, timer)
    epochs = timer.per_epoch[1:]  # drop the warm-up epoch
    seconds = float(np.median([s for s, _ in epochs]))
    kernels = {k: float(np.median([t.get(k, 0.0) for _, t in epochs])) for k in KERNELS}
    kernels = {k: v for k, v in kernels.items() if v > 0}
    return seconds, kernels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=SHAPES, default="ml-1m")
    ap.add_argument("--granularity", default="DUI")
    ap.add_argument("--optimizer", default="adam")
    ap.add_argument("--lambda-optimizer", default="amsgrad")
    ap.add_argument("--lambda-rows", default=TrainConfig.lambda_rows, choices=LAMBDA_ROWS)
    ap.add_argument(
        "--lookahead-batches", default=TrainConfig.lookahead_batches, choices=LOOKAHEAD_BATCHES
    )
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    numba.set_num_threads(min(a.threads, numba.config.NUMBA_NUM_THREADS))
    totals = collections.defaultdict(float)
    split = shaped_split(*SHAPES[a.shape])
    common = dict(
        dim=a.dim,
        optimizer=a.optimizer,
        granularity=a.granularity,
        lambda_optimizer=a.lambda_optimizer,
        lambda_rows=a.lambda_rows,
        lookahead_batches=a.lookahead_batches,
        threads=a.threads,
        lr=1e-3,
        lambda_lr=0.1,
    )
    compile_first(**common)
    instrument(totals)
    rows = {}
    for mode, learn in (("fixed-λ", False), (f"λOpt-{a.granularity}", True)):
        rows[mode] = profile(split, a.repeats, totals, learn_lambda=learn, **common)
    names = sorted(
        {k for _, ks in rows.values() for k in ks},
        key=lambda k: -max(ks.get(k, 0) for _, ks in rows.values()),
    )
    modes = list(rows)
    lines = [
        f"{a.shape} shape, K={a.dim}, {a.optimizer} (Λ: {a.lambda_optimizer}, rows "
        f"{a.lambda_rows}, B̄ and B {a.lookahead_batches}), "
        f"{a.threads} threads, median of {a.repeats} epochs; seconds per epoch",
        "",
        "| part | " + " | ".join(modes) + " |",
        "|---|" + "---|" * len(modes),
    ]
    for k in names:
        lines.append(f"| {k} | " + " | ".join(f"{rows[m][1].get(k, 0):.3f}" for m in modes) + " |")
    lines.append(
        "| rest (Python, sampling) | "
        + " | ".join(f"{rows[m][0] - sum(rows[m][1].values()):.3f}" for m in modes)
        + " |"
    )
    lines.append("| **epoch** | " + " | ".join(f"**{rows[m][0]:.3f}**" for m in modes) + " |")
    ratio = rows[modes[1]][0] / rows[modes[0]][0]
    lines += ["", f"{modes[1]} ÷ fixed-λ: {ratio:.2f}"]
    text = "\n".join(lines)
    print(text)
    suffix = ("" if a.lambda_rows == TrainConfig.lambda_rows else f"-rows-{a.lambda_rows}") + (
        ""
        if a.lookahead_batches == TrainConfig.lookahead_batches
        else f"-batches-{a.lookahead_batches}"
    )
    save_report(
        a.out,
        f"profile_epoch-{a.shape}{suffix}",
        {
            "shape": a.shape,
            "settings": vars(a),
            "ratio": ratio,
            "modes": {m: {"epoch_seconds": s, "kernels": ks} for m, (s, ks) in rows.items()},
        },
        text,
    )


if __name__ == "__main__":
    main()
