"""Time one λOpt-DUI epoch (dense Adam, Λ by Adam) and one full evaluation on the CPU and on the
GPU (``--device cuda``) for generated data of a given shape (default: MovieLens-10M shape,
69,878 users, 10,677 items, 10 M training triplets, K=128); print the GPU/CPU ratios and write
``benchmarks/results/bench_cuda-<shape>.{json,md}``.

    pip install -e .[cuda]
    python benchmarks/bench_cuda.py --shape ml-10m --repeats 3

Both devices get the same data and the same host-sampled triplets. Each timing: a warm-up on a
small split first (Numba compilation), then the median of ``--repeats`` runs. ``--fraction f``
times epochs over a fraction f of the training positives (same tables, so the same per-step
cost) and reports seconds per full epoch as time ÷ f, for a CPU that would take too long;
the report says when it did. Without a usable GPU the CPU rows are written and the CUDA rows
say why they are missing.
"""

import argparse
import os
import platform
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_epoch import SHAPES, median_of, shaped_split  # noqa: E402
from report import save_report  # noqa: E402

from lopt_np import LambdaOpt, Split, evaluate  # noqa: E402
from lopt_np.errors import BackendUnavailableError  # noqa: E402


def epoch_seconds(split, device, **kw):
    def run():
        model = LambdaOpt(epochs=1, eval_every=0, device=device, **kw).fit(split)
        return model.history[0]["train_seconds"]

    return run


def eval_seconds(P, Q, split, device):
    def run():
        t0 = time.perf_counter()
        evaluate(P, Q, split, "test", device=device)
        return time.perf_counter() - t0

    return run


def subsample(split, fraction, seed=0):
    """The same tables with a fraction of the training positives (valid/test unchanged)."""
    if fraction >= 1.0:
        return split
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(split.train), int(len(split.train) * fraction), replace=False))
    return Split(
        split.n_users,
        split.n_items,
        split.train[keep],
        split.valid,
        split.test,
        split.user_ids,
        split.item_ids,
    )


def device_names():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        from lopt_np.backends.cuda_support import cuda_module

        gpu = cuda_module().get_current_device().name
        gpu = gpu.decode() if isinstance(gpu, bytes) else str(gpu)
        return cpu, gpu, None
    except BackendUnavailableError as e:
        return cpu, None, str(e)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=list(SHAPES), default="ml-10m")
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    ap.add_argument(
        "--fraction",
        type=float,
        default=1.0,
        help="time epochs over this fraction of the training positives",
    )
    ap.add_argument(
        "--cpu-fraction", type=float, default=None, help="a smaller --fraction for the CPU only"
    )
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    a = ap.parse_args()
    threads = a.threads or numba.config.NUMBA_NUM_THREADS
    cpu_name, gpu_name, why = device_names()
    n_users, n_items, n_pos = SHAPES[a.shape]
    split = shaped_split(n_users, n_items, n_pos)
    warm = shaped_split(500, 400, 20_000)
    kw = dict(
        dim=a.dim,
        batch_size=a.batch_size,
        threads=threads,
        lr=1e-3,
        granularity="DUI",
        optimizer="adam",
    )
    rng = np.random.default_rng(0)
    P = rng.normal(0, 0.1, (n_users, a.dim)).astype(np.float32)
    Q = rng.normal(0, 0.1, (n_items, a.dim)).astype(np.float32)
    rows = {}
    devices = ["cpu"] + (["cuda"] if gpu_name else [])
    for device in devices:
        frac = a.cpu_fraction if (device == "cpu" and a.cpu_fraction) else a.fraction
        epoch_seconds(warm, device, **kw)()  # compile
        med, runs = median_of(epoch_seconds(subsample(split, frac), device, **kw), a.repeats)
        rows[f"λOpt-DUI epoch, {device}"] = (med / frac, [r / frac for r in runs], frac)
        print(f"λOpt-DUI epoch on {device}: {med / frac:.2f} s (fraction {frac})", flush=True)
        evaluate(P[:500], Q, shaped_split(500, n_items, 20_000), device=device)  # compile
        med, runs = median_of(eval_seconds(P, Q, split, device), a.repeats)
        rows[f"full evaluation, {device}"] = (med, runs, 1.0)
        print(f"full evaluation on {device}: {med:.2f} s", flush=True)
    write_report(a, split, threads, cpu_name, gpu_name, why, rows)


def write_report(a, split, threads, cpu_name, gpu_name, why, rows):
    head = (
        f"shape {a.shape}: {split.n_users:,} users, {split.n_items:,} items, "
        f"{len(split.train):,} training triplets per epoch, K={a.dim}, batch {a.batch_size}, "
        f"λOpt-DUI with dense Adam (Λ: Adam); CPU: {cpu_name}, {threads} threads; "
        f"GPU: {gpu_name or 'none'}; median of {a.repeats} after a warm-up"
    )
    lines = [
        head,
        "",
        "| run | median s | runs (s) | timed fraction of an epoch |",
        "|---|---|---|---|",
    ]
    for name, (med, runs, frac) in rows.items():
        lines.append(f"| {name} | {med:.3f} | {', '.join(f'{r:.3f}' for r in runs)} | {frac:g} |")
    ratios = {}
    if gpu_name:
        for what in ("λOpt-DUI epoch", "full evaluation"):
            ratios[what] = rows[f"{what}, cuda"][0] / rows[f"{what}, cpu"][0]
        lines += ["", "| GPU ÷ CPU | ratio | speed-up |", "|---|---|---|"]
        lines += [f"| {k} | {v:.4f} | {1 / v:.1f}× |" for k, v in ratios.items()]
    else:
        lines += ["", f"no CUDA rows: {why}"]
    text = "\n".join(lines)
    print(text)
    meta = {
        "shape": a.shape,
        "users": split.n_users,
        "items": split.n_items,
        "train_triplets": len(split.train),
        "dim": a.dim,
        "batch_size": a.batch_size,
        "threads": threads,
        "cpu": cpu_name,
        "gpu": gpu_name,
        "cuda_unavailable": why,
        "repeats": a.repeats,
        "date": time.strftime("%Y-%m-%d"),
    }
    out = {
        "meta": meta,
        "ratios_gpu_over_cpu": ratios,
        "rows": {
            k: {"median_s": m, "runs_s": r, "timed_fraction": f} for k, (m, r, f) in rows.items()
        },
    }
    save_report(a.out, f"bench_cuda-{a.shape}", out, text)


if __name__ == "__main__":
    main()
