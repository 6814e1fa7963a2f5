"""Fixtures shared by the test suite: the granularity × optimizer × scope grid, defined once,
and small generated datasets (the core suite never needs ../shared)."""
import os

import numpy as np
import pytest

from lopt_np.granularity import GRANULARITIES

GRANULARITY_NAMES = list(GRANULARITIES)
THETA_OPTIMIZERS = ["sgd", "adam"]
SCOPES = ["batch", "full"]
LAMBDA_OPTIMIZERS = ["sgd", "adam", "amsgrad"]

SHARED_DATA = os.environ.get(
    "LOPT_SHARED_DATA",
    os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))


@pytest.fixture(params=GRANULARITY_NAMES)
def granularity(request):
    return request.param


@pytest.fixture(params=THETA_OPTIMIZERS)
def optimizer(request):
    return request.param


@pytest.fixture(params=SCOPES)
def scope(request):
    return request.param


@pytest.fixture(params=LAMBDA_OPTIMIZERS)
def lambda_optimizer(request):
    return request.param


@pytest.fixture(scope="session")
def small_split():
    """A small synthetic split (≈ 300 users, 200 items)."""
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions
    df = synthetic_interactions(n_users=300, n_items=200, seed=3)
    return build_split(df, min_count=10)


def shared_file(name):
    """Path of a file in ../shared/data, or skip the test with the reason."""
    path = os.path.join(SHARED_DATA, name)
    if not os.path.isfile(path):
        pytest.skip(f"real dataset {name} not found in {os.path.abspath(SHARED_DATA)} "
                    f"(set LOPT_SHARED_DATA to the folder holding it)")
    return path


def random_triplets(rng, n_users, n_items, n):
    """Triplets that repeat users and items (j ≠ i)."""
    u = rng.integers(0, n_users, n).astype(np.int64)
    i = rng.integers(0, n_items, n).astype(np.int64)
    j = ((i + 1 + rng.integers(0, n_items - 1, n)) % n_items).astype(np.int64)
    return u, i, j
