"""Every Numba CUDA kernel against the NumPy reference layer (SPEC §2-5, §7), in Numba's CUDA
simulator (the default: ``conftest.py`` sets ``NUMBA_ENABLE_CUDASIM=1``) or on a GPU with
``NUMBA_ENABLE_CUDASIM=0``. Blocks of 8 threads, so every grid has several blocks.

Tolerances: float32 kernels against the float64 reference at rtol 1e-4 / atol 1e-6, as the CPU
kernels; float64 at 1e-10 (same formulas, but atomic sums run in a different order).
The PTX test compiles every kernel with the real NVVM compiler, which the simulator does not.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

numba_cuda = pytest.importorskip(
    "numba_cuda", reason="numba-cuda is not installed (pip install -e .[test] or .[cuda])"
)
from numba import config as numba_config  # noqa: E402
from numba import cuda  # noqa: E402

from helpers import random_triplets  # noqa: E402
from kernel_cases import (
    F32,
    check_backend_matches_reference_float64,
    held_rows,
    lambda_update_case,
    random_tables,
    run_backends,
)
from lopt_np.kernels import ADAM, LAZY_ADAM, SGD, OPTIMIZER_CODES  # noqa: E402
from lopt_np.kernels.cpu import hypergradient as cpu_hg  # noqa: E402
from lopt_np.kernels.cuda import _jit  # noqa: E402
from lopt_np.kernels.cuda import bpr as cuda_bpr  # noqa: E402
from lopt_np.kernels.cuda import hypergradient as cuda_hg  # noqa: E402
from lopt_np.kernels.cuda import lambda_update as cuda_lu  # noqa: E402
from lopt_np.kernels.cuda import optimizers as cuda_optimizers  # noqa: E402
from lopt_np.math import bpr as ref_bpr  # noqa: E402

SIMULATOR = bool(numba_config.ENABLE_CUDASIM)
if not cuda.is_available():
    pytest.skip(
        "no CUDA GPU and the simulator is off (NUMBA_ENABLE_CUDASIM=0)", allow_module_level=True
    )


@pytest.fixture(autouse=True)
def several_blocks(monkeypatch):
    monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 8)


def test_bpr_kernels_match_reference_with_repeated_rows():
    rng = np.random.default_rng(0)
    P, Q = random_tables(rng)
    u, i, j = random_triplets(rng, 11, 13, 60)  # every row repeats: atomics must lose nothing
    n = len(u)
    delta, loss = np.zeros(n, np.float32), np.zeros(n, np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    cuda_bpr.bpr_forward(P, Q, idP, idQ, u, i, j, idP, idQ, delta, loss)
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    out = np.zeros(2)
    cuda_bpr.batch_sum(loss, out, 1)
    np.testing.assert_allclose(out[1] / n, ref_bpr.bpr_loss(P64, Q64, u, i, j), **F32)
    np.testing.assert_allclose(delta, ref_bpr.bpr_delta(P64, Q64, u, i, j), **F32)
    gP, gQ = np.zeros_like(P), np.zeros_like(Q)
    cP, cQ = np.zeros(11, np.int64), np.zeros(13, np.int64)
    cuda_bpr.bpr_grad_scatter(
        P, Q, idP, idQ, u, i, j, delta, np.float32(1 / n), idP, idQ, gP, gQ, cP, cQ, True, 1
    )
    rP, rQ = ref_bpr.bpr_grad(P64, Q64, u, i, j)
    np.testing.assert_allclose(gP, rP, **F32)
    np.testing.assert_allclose(gQ, rQ, **F32)
    np.testing.assert_array_equal(cP, np.bincount(u, minlength=11))
    np.testing.assert_array_equal(cQ, np.bincount(np.r_[i, j], minlength=13))


def test_bpr_scatter_through_compact_slot_maps():
    """Only held rows accumulate, each into its compact buffer row (the lookahead's layout)."""
    rng = np.random.default_rng(1)
    P, Q = random_tables(rng, K=5)
    u, i, j = random_triplets(rng, 11, 13, 30)
    delta = rng.uniform(-1, 0, 30).astype(np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    slotP, heldP, nP, _ = held_rows(np.array([3, 7, 1]), 11)
    slotQ, heldQ, nQ, _ = held_rows(np.array([0, 12, 5, 6]), 13)
    args = (P, Q, idP, idQ, u, i, j, delta, np.float32(0.1), slotP, slotQ)
    want = [np.zeros((11, 5), np.float32), np.zeros((13, 5), np.float32)]
    from lopt_np.kernels.cpu.bpr import bpr_grad_scatter as cpu_scatter

    cpu_scatter(*args, *want, np.zeros(11, np.int64), np.zeros(13, np.int64), True, 2)
    got = [np.zeros_like(w) for w in want]
    cuda_bpr.bpr_grad_scatter(*args, *got, np.zeros(11, np.int64), np.zeros(13, np.int64), True, 1)
    for g, w, n in zip(got, want, (nP, nQ)):
        np.testing.assert_allclose(g[:n], w[:n], rtol=1e-5, atol=1e-7)
        assert not g[n:].any()


@pytest.mark.parametrize("optimizer", list(OPTIMIZER_CODES))
@pytest.mark.parametrize("layout", [(1, 1), (1, 4), (9, 1), (9, 4)], ids=str)
@pytest.mark.parametrize(
    "full_scope,assumed_penalty,eps_terms",
    [(False, False, (1e-8, 0.0)), (True, True, (0.0, 3e-10))],
    ids=["spec", "authors"],
)
def test_lookahead_and_lambda_reduction_match_cpu_kernels(
    optimizer, layout, full_scope, assumed_penalty, eps_terms
):
    """``lookahead_rows`` and ``accumulate_lambda_grad`` for every Λ layout, float64, against
    the CPU kernels (themselves checked against the reference and by finite differences)."""
    rng = np.random.default_rng(7)
    n, K, cap = 9, 4, 6
    T = rng.normal(0, 0.5, (n, K))
    m, v = rng.normal(0, 0.01, (n, K)), rng.uniform(1e-4, 1e-3, (n, K))
    lam = rng.uniform(0, 0.3, layout)
    slot, held, n_held, _ = held_rows(np.array([4, 1, 8, 4, 0]), n)
    gbar = rng.normal(0, 0.1, (cap, K))
    count = np.array([2, 1, 0, 1, 0, 0], np.int64)  # row 8 (slot 2) is in V but not in B̄
    Gbar = rng.normal(0, 0.1, (cap, K))
    per_row = layout[0] > 1
    consts = (
        1 / 8,
        full_scope,
        assumed_penalty,
        OPTIMIZER_CODES[optimizer],
        0.003,
        0.05,
        0.9,
        0.999,
        0.1,
        0.001,
        *eps_terms,
    )
    outs = []
    for hg in (cpu_hg, cuda_hg):
        Tbar, dT = np.zeros((cap, K)), np.zeros((cap, K))
        hg.lookahead_rows(T, m, v, gbar, count, held, n_held, lam, *consts, Tbar, dT)
        G = np.zeros((cap if per_row else 1, layout[1]))
        hg.accumulate_lambda_grad(Gbar, dT, n_held, per_row, G)
        outs.append((Tbar[:n_held], dT[:n_held], G))
    for got, want in zip(outs[1], outs[0]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)
    assert OPTIMIZER_CODES[optimizer] in (SGD, ADAM, LAZY_ADAM)


def test_hold_release_and_zero_rows():
    slot = np.full(9, -1, np.int64)
    held = np.array([4, 1, 8, 0, 0], np.int64)
    cuda_hg.map_held_rows(slot, held, 3)
    np.testing.assert_array_equal(slot, [-1, 1, -1, -1, 0, -1, -1, -1, 2])
    cuda_hg.release_rows(slot, held, 3)
    assert (slot == -1).all()
    buf, counts = np.ones((2, 5, 3), np.float32), np.ones(5, np.int64)
    cuda_hg.zero_rows(buf, counts, 3)
    assert not buf[:, :3].any() and buf[:, 3:].all() and list(counts) == [0, 0, 0, 1, 1]
    A = np.ones((5, 2), np.float32)
    cuda_hg.zero_matrix_rows(A, 4)
    assert not A[:4].any() and A[4].all()


def test_row_sums_gives_the_mean_lambda_without_a_copy():
    got = lambda_update_case("adam", "inside")[0]
    sums = np.zeros(2)
    cuda_lu.row_sums(got, sums, 1)
    np.testing.assert_allclose(sums[1], got.astype(np.float64).sum(), rtol=1e-12)


@pytest.mark.parametrize("granularity", ["DUI", "UI", "D"])
def test_cuda_backend_matches_reference_with_lambda_rows_batch(granularity):
    backends, losses = run_backends(
        granularity,
        "adam",
        "batch",
        "amsgrad",
        np.float64,
        2,
        names=("reference", "cuda"),
        lambda_rows="batch",
    )
    for ref, got in losses:
        np.testing.assert_allclose(got, ref, rtol=1e-10)
    for a, b in zip(*(bk.parameters() for bk in backends)):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-13)


@pytest.mark.skipif(
    not SIMULATOR, reason="patches device functions, which only the simulator looks up at run time"
)
@pytest.mark.parametrize(
    "module, name",
    [
        (cuda_hg, "adam_jacobian"),
        (cuda_hg, "penalty_grad"),
        (cuda_optimizers, "adam_moments"),
        (cuda_bpr, "bpr_margin"),
    ],
)
def test_a_perturbed_cuda_kernel_is_caught(monkeypatch, module, name):
    """The float64 backend comparison (``test_kernel_contract.py``) fails when one CUDA formula
    is off by 0.1 %."""
    exact = getattr(module, name)

    def perturbed(*args):
        out = exact(*args)
        return tuple(x * 1.001 for x in out) if isinstance(out, tuple) else out * 1.001

    monkeypatch.setattr(module, name, perturbed)
    with pytest.raises(AssertionError):
        check_backend_matches_reference_float64("cuda", "DUI", "adam", "batch")


def test_every_kernel_compiles_for_a_real_gpu_without_float64_in_float32_kernels():
    """Numba CUDA compiles every kernel to PTX (real NVVM, no GPU needed), and the float32
    variants of the hot kernels contain no float64 arithmetic (a silent promotion would halve
    their speed). Skips where the CUDA compiler libraries are not installed."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0"}
    script = os.path.join(os.path.dirname(__file__), "cuda_ptx_check.py")
    r = subprocess.run(
        [sys.executable, script], env=env, capture_output=True, text=True, timeout=600
    )
    if r.returncode == 3:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr[-3000:]
    f64 = json.loads(r.stdout)
    assert len(f64) == 20
    for name in (
        "bpr._bpr_grad_scatter",
        "optimizers._adam_update",
        "optimizers._lazy_adam_update",
        "optimizers._sgd_update",
        "hypergradient._lookahead_rows",
        "lambda_update._lambda_adam_update",
        "lambda_update._lambda_sgd_update",
    ):
        assert f64[f"lopt_np.kernels.cuda.{name}"]["float32"] == 0, name


# What one compiled layer has and the other has not, with why. Every other public function of
# ``kernels/cpu/X.py`` is in ``kernels/cuda/X.py`` under the same name with the same parameters
# in the same order, and the reverse.
LAYER_ONLY = {
    "cpu": {
        "bpr.sum_in_order": "a fixed-order sum inside a compiled step (CUDA: batch_sum)",
        "bpr.column_blocks": "the scatter's column blocks, one per thread (CUDA: a thread each)",
        "hypergradient.hold_rows": "holds rows in order of appearance (hold_in_table_order)",
        "hypergradient.hold_in_table_order": "orders the held rows; CUDA calls it on the host",
        "optimizers.adam_moments_update": "shared_assumed_state, a CPU-only variant",
        "optimizers.rows_behind": "dense Adam's deferred rows (CUDA passes over every row)",
        "optimizers.adam_catch_up": "dense Adam's deferred rows (CUDA passes over every row)",
        "lambda_update.sum_of_squares": "returns ‖G‖² (CUDA: accumulate_sum_of_squares)",
        "evaluation.count_below": "a helper of rank_block",
        "evaluation.count_at_most": "a helper of rank_block",
        "evaluation.rank_block": "ranks any model's scores (evaluate_scores) on the CPU",
        "evaluation.rank_scored_users": "ranks any model's scores (evaluate_scores) on the CPU",
        "step.absorb_assumed_gradient": "shared_assumed_state, a CPU-only variant",
        "step.CpuWork": "the CPU step's scratch",
        "step.DeferredRows": "dense Adam's deferred rows (CUDA passes over every row)",
        "step.catch_up_table": "dense Adam's deferred rows (CUDA passes over every row)",
    },
    "cuda": {
        "bpr.batch_sum": "an atomic sum into a device scalar (CPU: sum_in_order)",
        "hypergradient.map_held_rows": "writes the host's held order into the device slot map",
        "hypergradient.zero_matrix_rows": "clears G_Λ on the device (CPU: a slice assignment)",
        "optimizers.lambda_at": "Λ broadcast from its shape (CPU: one variant per Λ layout)",
        "lambda_update.accumulate_sum_of_squares": "‖G‖² into a device scalar",
        "lambda_update.row_sums": "mean Λ without copying Λ to the host",
        "step.CudaWork": "the CUDA step's scratch",
    },
}
KERNEL_MODULES = (
    "bpr",
    "hypergradient",
    "optimizers",
    "lambda_update",
    "evaluation",
    "recommend",
    "step",
)


def public_functions(module):
    """``{name: parameters}`` of the functions (and named tuples) ``module`` defines."""
    import inspect

    out = {}
    for name, obj in vars(module).items():
        fn = getattr(obj, "py_func", obj)
        if name.startswith("_") or not callable(obj):
            continue
        if module.__name__ not in (
            getattr(obj, "__module__", None),
            getattr(fn, "__module__", None),
        ):
            continue  # imported from elsewhere
        signature = inspect.signature(obj if hasattr(obj, "__signature__") else fn)
        out[name] = list(signature.parameters)
    return out


def test_every_kernel_name_means_the_same_parameters_in_both_layers():
    """The contract the driver (``backends.kernel.KernelBackend``) and the evaluation rely on:
    a name in both layers takes the same parameters in the same order; what one layer lacks
    is listed above with why, and nothing else is missing."""
    import importlib

    for m in KERNEL_MODULES:
        cpu = public_functions(importlib.import_module(f"lopt_np.kernels.cpu.{m}"))
        gpu = public_functions(importlib.import_module(f"lopt_np.kernels.cuda.{m}"))
        for layer, mine, other in (("cpu", cpu, gpu), ("cuda", gpu, cpu)):
            only = {f"{m}.{n}" for n in set(mine) - set(other)}
            assert only == {k for k in LAYER_ONLY[layer] if k.startswith(f"{m}.")}, (layer, m)
        for name in set(cpu) & set(gpu):
            assert cpu[name] == gpu[name], f"{m}.{name}"


def test_step_kernels_have_one_signature_in_both_layers():
    """``backends.kernel.KernelBackend`` is the one driver of SPEC §5 on both layers: it calls
    ``lookahead_step``, ``theta_step[code]``, ``absorb_assumed_gradient`` (CPU only) and
    ``release_rows`` by name on ``kernels.cpu.step`` or ``kernels.cuda.step``. Each the CUDA
    module has takes the CPU one's parameters in the same order, for every Θ optimizer."""
    import inspect

    from lopt_np.kernels.cpu import step as cpu_step
    from lopt_np.kernels.cuda import step as cuda_step

    def params(fn):
        return list(inspect.signature(getattr(fn, "py_func", fn)).parameters)

    for name in ("lookahead_step", "release_rows"):
        assert params(getattr(cuda_step, name)) == params(getattr(cpu_step, name)), name
    assert set(cuda_step.theta_step) == set(cpu_step.theta_step) == set(OPTIMIZER_CODES.values())
    for code, fn in cpu_step.theta_step.items():
        assert params(cuda_step.theta_step[code]) == params(fn), code
    # what the CUDA layer lacks, the driver refuses by name (shared_assumed_state); the CPU
    # backend alone builds its scratch and brings deferred rows up to date
    assert set(cpu_step.__all__) - set(cuda_step.__all__) == {
        "absorb_assumed_gradient",
        "CpuWork",
        "DeferredRows",
        "catch_up_table",
    }


def test_the_cuda_backend_refuses_shared_assumed_state_by_name():
    from lopt_np.backends import make_backend
    from lopt_np.errors import ConfigError
    from lopt_np.math.granularity import init_lambda
    from lopt_np.math.hypergradient import Lookahead, ThetaOptimizer
    from lopt_np.math.lambda_update import LambdaOptimizer

    P, Q = random_tables(np.random.default_rng(0), 5, 6, 3, np.float32)
    lP, lQ = init_lambda("DUI", 5, 6, 3, 0.05, np.float32)
    with pytest.raises(ConfigError, match="shared_assumed_state is not implemented on CudaBackend"):
        make_backend(
            "cuda",
            P,
            Q,
            lP,
            lQ,
            "DUI",
            ThetaOptimizer("adam", 0.01),
            LambdaOptimizer("adam", 0.01),
            lookahead=Lookahead(shared_state=True),
        )


@pytest.mark.parametrize("backend", ["reference", "cpu", "cuda"])
@pytest.mark.parametrize(
    "field, value, needle",
    [
        ("theta", "adagrad", "unknown optimizer 'adagrad'; expected one of sgd, adam, lazy_adam"),
        (
            "lambda",
            "rmsprop",
            "unknown lambda_optimizer 'rmsprop'; expected one of sgd, adam, amsgrad",
        ),
        ("rows", "some", "unknown lambda_rows 'some'; expected one of all, batch"),
        ("eps", "middle", "unknown eps_placement 'middle'"),
    ],
)
def test_an_unknown_name_is_the_same_clear_error_on_every_backend(backend, field, value, needle):
    """No backend falls back to another optimizer for a name it does not know."""
    from lopt_np.backends import make_backend
    from lopt_np.errors import ConfigError
    from lopt_np.math.granularity import init_lambda
    from lopt_np.math.hypergradient import ThetaOptimizer
    from lopt_np.math.lambda_update import LambdaOptimizer

    P, Q = random_tables(np.random.default_rng(0))
    lP, lQ = init_lambda("DUI", *P.shape[:1], Q.shape[0], P.shape[1], 0.01, np.float32)
    theta = ThetaOptimizer(
        value if field == "theta" else "adam", eps_placement=value if field == "eps" else "inside"
    )
    lam = LambdaOptimizer(
        value if field == "lambda" else "adam", rows=value if field == "rows" else "all"
    )
    with pytest.raises(ConfigError, match=needle):
        make_backend(backend, P, Q, lP, lQ, "DUI", theta, lam)
