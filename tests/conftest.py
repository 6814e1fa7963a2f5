"""Fixtures shared by the test suite: the granularity × optimizer × scope grid, defined once,
and small generated datasets (the core suite never needs ../shared)."""

import os

# CUDA kernels run in Numba's simulator unless the caller chose (NUMBA_ENABLE_CUDASIM=0 runs
# tests/kernels' CUDA cases and the `gpu` tests on a real device). Must precede numba's import.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

import pytest

from lopt_np.math.granularity import GRANULARITIES
from lopt_np.math.lambda_update import LAMBDA_OPTIMIZERS
from lopt_np.math.optimizers import ROW_SPARSE_OPTIMIZERS, THETA_OPTIMIZERS
from lopt_np.math.penalty import SCOPES

GRANULARITY_NAMES = list(GRANULARITIES)
# Every valid (Θ optimizer, penalty scope) pair: row-sparse optimizers need the batch scope.
OPTIMIZER_SCOPES = [
    (o, s)
    for o in THETA_OPTIMIZERS
    for s in SCOPES
    if not (o in ROW_SPARSE_OPTIMIZERS and s != "batch")
]


@pytest.fixture(params=GRANULARITY_NAMES)
def granularity(request):
    return request.param


@pytest.fixture(params=OPTIMIZER_SCOPES, ids=[f"{o}-{s}" for o, s in OPTIMIZER_SCOPES])
def optimizer_scope(request):
    return request.param


@pytest.fixture
def optimizer(optimizer_scope):
    return optimizer_scope[0]


@pytest.fixture
def scope(optimizer_scope):
    return optimizer_scope[1]


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
