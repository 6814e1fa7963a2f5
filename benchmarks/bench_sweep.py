"""How a sweep scales on one machine: the wall time of an 8-value ``lopt grid`` with
``--jobs 1`` (in-process) and ``--jobs 2`` (a Dask LocalCluster of 2 worker processes, one
thread each), the grids' tables compared, and the scheduler's overhead per task (empty tasks
through the same cluster, and the cluster's start and shutdown).

    python benchmarks/bench_sweep.py --dataset ml-100k --epochs 30

Results: ``benchmarks/results/bench_sweep-<dataset>.{json,md}``. Each grid is a fresh
``lopt`` process, as a user runs it; they take turns ``--repeats`` times and medians are
reported.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from report import save_report
from reproduce import DATA, HERE

LAMBDAS = "10,1,0.1,0.01,0.001,0.0001,0.00001,0"
COMPARED = [
    "lambda",
    "best_epoch",
    "valid_hr@100",
    "test_auc",
    "test_hr@50",
    "test_hr@100",
    "test_ndcg@100",
    "status",
]


def grid_seconds(data, jobs, epochs, out):
    cmd = [
        sys.executable,
        "-m",
        "lopt_np.cli.main",
        "grid",
        "--data",
        data,
        "--epochs",
        str(epochs),
        "--lambdas",
        LAMBDAS,
        "--jobs",
        str(jobs),
        "--quiet",
        "--out",
        out,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def scheduler_overhead(n_tasks):
    """Seconds per empty task through a 2-worker LocalCluster, and its start + shutdown."""
    import logging

    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
    )
    client = Client(cluster)
    start = time.perf_counter() - t0
    client.gather(client.map(abs, range(10)))  # warm
    t0 = time.perf_counter()
    for future in [client.submit(abs, -k, pure=False) for k in range(n_tasks)]:
        future.result()
    per_task = (time.perf_counter() - t0) / n_tasks
    t0 = time.perf_counter()
    client.close()
    cluster.close()
    return per_task, start + time.perf_counter() - t0


def main():
    import pandas as pd

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    data = os.path.join(DATA, f"{a.dataset}.csv.gz")
    times = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeats):
            for jobs in (1, 2):
                out = os.path.join(tmp, f"grid-{jobs}-{r}")
                times[jobs].append(grid_seconds(data, jobs, a.epochs, out))
                print(f"repeat {r + 1}: --jobs {jobs}: {times[jobs][-1]:.1f} s", flush=True)
        tables = [
            pd.read_csv(os.path.join(tmp, f"grid-{j}-0", "grid.csv"))[COMPARED] for j in (1, 2)
        ]
        identical = tables[0].equals(tables[1])
    per_task, start_stop = scheduler_overhead(200)
    med = {j: statistics.median(t) for j, t in times.items()}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "dataset": a.dataset,
        "epochs": a.epochs,
        "lambdas": LAMBDAS,
        "seconds": times,
        "median_seconds": med,
        "speedup": med[1] / med[2],
        "identical_grid_csv": identical,
        "scheduler_seconds_per_task": per_task,
        "cluster_start_and_stop_seconds": start_stop,
        "command": f"python benchmarks/bench_sweep.py --dataset {a.dataset} --epochs "
        f"{a.epochs} --repeats {a.repeats}",
    }
    text = "\n".join(
        [
            f"8-value lopt grid on {a.dataset}, {a.epochs} epochs each, {result['machine']} "
            f"({result['date']}; medians of {a.repeats})",
            "",
            "| | wall s | × --jobs 1 |",
            "|---|---|---|",
            f"| --jobs 1 (in-process) | {med[1]:.1f} | 1.00 |",
            f"| --jobs 2 (LocalCluster, 2 workers) | {med[2]:.1f} | {med[1] / med[2]:.2f} |",
            "",
            f"grid.csv identical: {identical}; scheduler overhead {per_task * 1e3:.2f} ms per "
            f"task, cluster start + shutdown {start_stop:.1f} s",
        ]
    )
    print(text)
    save_report(a.out, f"bench_sweep-{a.dataset}", result, text)


if __name__ == "__main__":
    main()
