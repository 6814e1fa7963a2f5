"""Helpers shared by the test modules (imported as ``from helpers import ...``; the fixtures
live in ``conftest.py``): paths of the shared data and traces (skipping when absent), the CLI
runner, random triplets and metrics recomputed without lopt_np."""

import os

import numpy as np
import pytest

SHARED_DATA = os.environ.get(
    "LOPT_SHARED_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
)
REFERENCE_TRACES = os.environ.get(
    "LOPT_REFERENCE_TRACE",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "reference-trace"),
)


def shared_file(name):
    """Path of a file in ../shared/data, or skip the test with the reason."""
    path = os.path.join(SHARED_DATA, name)
    if not os.path.isfile(path):
        pytest.skip(
            f"real dataset {name} not found in {os.path.abspath(SHARED_DATA)} "
            f"(set LOPT_SHARED_DATA to the folder holding it)"
        )
    return path


def reference_trace(name):
    """Path of a recorded trace of the authors' code, or skip the test with the reason."""
    path = os.path.join(REFERENCE_TRACES, f"{name}.npz")
    if not os.path.isfile(path):
        pytest.skip(
            f"reference trace {name}.npz not found in {os.path.abspath(REFERENCE_TRACES)} "
            f"(set LOPT_REFERENCE_TRACE to the folder holding it)"
        )
    return path


def run_cli(*args):
    """``lopt ARGS`` through Click's CliRunner (arguments stringified; exceptions raised)."""
    from click.testing import CliRunner

    from lopt_np.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def random_triplets(rng, n_users, n_items, n):
    """Triplets that repeat users and items (j ≠ i)."""
    u = rng.integers(0, n_users, n).astype(np.int64)
    i = rng.integers(0, n_items, n).astype(np.int64)
    j = ((i + 1 + rng.integers(0, n_items - 1, n)) % n_items).astype(np.int64)
    return u, i, j


def independent_metrics(run_dir, k=50):
    """AUC, HR@k and NDCG@k of a saved run computed from model.npz and split.npz with plain
    NumPy loops (no lopt_np code), following SPEC §7 literally."""
    with (
        np.load(os.path.join(run_dir, "model.npz")) as m,
        np.load(os.path.join(run_dir, "split.npz")) as s,
    ):
        P, Q = m["user_embeddings"].astype(float), m["item_embeddings"].astype(float)
        seen, test = {}, {}
        for part in ("train", "valid", "test"):
            for u, i in s[part]:
                seen.setdefault(int(u), set()).add(int(i))
        for u, i in s["test"]:
            test.setdefault(int(u), []).append(int(i))
    aucs, hrs, ndcgs = [], [], []
    for u, items in test.items():
        scores = Q @ P[u]
        mask = np.ones(len(Q), bool)
        mask[list(seen[u])] = False
        neg = scores[mask]
        ranks = np.array(
            [1 + np.sum(neg > scores[i]) + 0.5 * np.sum(neg == scores[i]) for i in items]
        )
        aucs.append(
            np.mean([np.mean(neg < scores[i]) + 0.5 * np.mean(neg == scores[i]) for i in items])
        )
        hrs.append(np.mean(ranks <= k))
        ndcgs.append(np.mean(np.where(ranks <= k, 1 / np.log2(ranks + 1), 0)))
    return {"auc": np.mean(aucs), f"hr@{k}": np.mean(hrs), f"ndcg@{k}": np.mean(ndcgs)}
