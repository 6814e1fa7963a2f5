"""One contract for both compiled layers: each check below runs on the CPU kernels and on the
CUDA kernels (Numba's simulator by default, blocks of 8 threads so every grid has several; a
GPU with ``NUMBA_ENABLE_CUDASIM=0``), against the NumPy reference (SPEC §2-5, §7). What only
one layer has is tested in ``test_kernels_cpu.py`` / ``test_kernels_cuda.py``.

Tolerances: float32 kernels against the float64 reference at rtol 1e-4 / atol 1e-6 (``F32``);
whole float64 backends at rtol 1e-12 on the CPU (same formulas, same order) and 1e-10 on CUDA
(its atomic sums run in another order).
"""

import importlib
from types import SimpleNamespace

import numpy as np
import pytest

from helpers import random_triplets
from kernel_cases import (
    F32,
    random_tables,
    assert_user_metrics,
    check_backend_matches_reference_float64,
    check_clip_matches_reference,
    check_fused_theta_updates,
    check_lambda_update_rows,
    lambda_update_case,
    rank_case,
    run_backends,
)
from lopt_np.math.lambda_update import clip_scale
from lopt_np.math.optimizers import EPS_PLACEMENTS


def _cuda_usable():
    try:
        import numba_cuda  # noqa: F401
        from numba import cuda
    except ImportError:
        return False
    return cuda.is_available()


NO_CUDA = "numba-cuda is not installed, or no GPU and the simulator is off"
LAYERS = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not _cuda_usable(), reason=NO_CUDA))]

FLOAT32_CASES = {
    "cpu": dict(lambda_optimizer="adam", steps=3),
    "cuda": dict(lambda_optimizer="amsgrad", steps=2),
}


def _cpu_squared_norm(lambda_update, G, n_rows):
    return lambda_update.sum_of_squares(G, n_rows)


def _cuda_squared_norm(lambda_update, G, n_rows):
    out = np.zeros(1)
    lambda_update.accumulate_sum_of_squares(G, n_rows, out)
    return out[0]


@pytest.fixture(params=LAYERS)
def layer(request, monkeypatch):
    """The layer's name, its kernel modules by name (``layer.kernels("optimizers")``) and
    ``layer.squared_norm(G, n_rows)``, Σ G² of the first rows by the layer's own kernel."""
    name = request.param
    if name == "cuda":
        from lopt_np.kernels.cuda import _jit

        monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 8)
    kernels = lambda module: importlib.import_module(f"lopt_np.kernels.{name}.{module}")  # noqa: E731
    norm = _cpu_squared_norm if name == "cpu" else _cuda_squared_norm
    return SimpleNamespace(
        name=name,
        kernels=kernels,
        squared_norm=lambda G, n: norm(kernels("lambda_update"), G, n),
    )


def test_bpr_forward_computes_exactly_the_triplets_that_touch_a_held_row(layer):
    """The lookahead's B̄ pass scatters onto V's held rows only: ``bpr_forward`` computes δ and
    the loss of the triplets touching a held row (by user, positive or negative) and puts 0 for
    the rest, and the scatter of that δ is the reference gradient on the held rows."""
    from lopt_np.math import bpr as ref_bpr

    bpr = layer.kernels("bpr")
    rng = np.random.default_rng(3)
    P, Q = random_tables(rng, 11, 13, 6)
    u, i, j = random_triplets(rng, 11, 13, 80)
    idP, idQ = np.arange(11), np.arange(13)
    slotP, slotQ = np.full(11, -1, np.int64), np.full(13, -1, np.int64)
    slotP[[2, 7]] = [0, 1]
    slotQ[[0, 5, 9]] = [0, 1, 2]
    touches = (slotP[u] >= 0) | (slotQ[i] >= 0) | (slotQ[j] >= 0)
    assert 0 < touches.sum() < len(u)
    delta, loss = np.full(80, 9, np.float32), np.full(80, 9, np.float32)
    bpr.bpr_forward(P, Q, idP, idQ, u, i, j, slotP, slotQ, delta, loss)
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    x = ref_bpr.bpr_margin(P64, Q64, u, i, j)
    np.testing.assert_allclose(delta[touches], ref_bpr.bpr_delta(P64, Q64, u, i, j)[touches], **F32)
    np.testing.assert_allclose(loss[touches], ref_bpr.softplus(-x)[touches], **F32)
    assert (delta[~touches] == 0).all() and (loss[~touches] == 0).all()
    gP, gQ = np.zeros((2, 6), np.float32), np.zeros((3, 6), np.float32)
    cP, cQ = np.zeros(2, np.int64), np.zeros(3, np.int64)
    scale = np.float32(1 / 80)
    bpr.bpr_grad_scatter(
        P, Q, idP, idQ, u, i, j, delta, scale, slotP, slotQ, gP, gQ, cP, cQ, True, 2
    )
    rP, rQ = ref_bpr.bpr_grad(P64, Q64, u, i, j)
    np.testing.assert_allclose(gP, rP[[2, 7]], **F32)
    np.testing.assert_allclose(gQ, rQ[[0, 5, 9]], **F32)


@pytest.mark.parametrize("eps_placement", EPS_PLACEMENTS)
def test_fused_theta_updates_match_reference(layer, granularity, optimizer, scope, eps_placement):
    check_fused_theta_updates(
        layer.kernels("optimizers"), granularity, optimizer, scope, eps_placement
    )


@pytest.mark.parametrize("eps_placement", EPS_PLACEMENTS)
def test_lambda_update_kernels_match_reference(layer, lambda_optimizer, eps_placement):
    got, slot, held, n_held, Gc, (m, v, vmax), consts, want = lambda_update_case(
        lambda_optimizer, eps_placement
    )
    sq = layer.squared_norm(Gc, n_held)
    np.testing.assert_allclose(sq, np.sum(Gc[:n_held].astype(np.float64) ** 2), rtol=1e-12)
    scale = np.float32(clip_scale(np.sqrt(sq), 1.5))
    lu = layer.kernels("lambda_update")
    if lambda_optimizer == "sgd":
        lu.lambda_sgd_update(got, held, n_held, Gc, scale, np.float32(0.02))
    else:
        lu.lambda_adam_update(got, slot, held, n_held, Gc, m, v, vmax, scale, *consts, False)
    np.testing.assert_allclose(got, want, **F32)


@pytest.mark.parametrize("eps_placement", EPS_PLACEMENTS)
@pytest.mark.parametrize("lambda_optimizer", ["adam", "amsgrad"])
def test_lambda_update_rows_kernel_matches_reference(layer, lambda_optimizer, eps_placement):
    check_lambda_update_rows(
        layer.kernels("lambda_update"),
        lambda_optimizer,
        eps_placement,
        lambda G, n: clip_scale(np.sqrt(layer.squared_norm(G, n)), 1.5),
    )


def test_backend_matches_reference_float64(layer, granularity, optimizer, scope):
    check_backend_matches_reference_float64(layer.name, granularity, optimizer, scope)


def test_backend_matches_reference_when_the_clip_fires(layer, granularity):
    check_clip_matches_reference(granularity, layer.name)


def test_backend_matches_reference_float32(layer, granularity, optimizer, scope):
    case = FLOAT32_CASES[layer.name]
    backends, losses = run_backends(
        granularity,
        optimizer,
        scope,
        case["lambda_optimizer"],
        np.float32,
        case["steps"],
        names=("reference", layer.name),
    )
    for ref, got in losses:
        np.testing.assert_allclose(got, ref, rtol=1e-5)
    for a, b in zip(*(bk.parameters() for bk in backends)):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
    mean_P, mean_Q = backends[1].mean_lambda()
    _, _, lam_P, lam_Q = backends[1].parameters()
    assert mean_P == pytest.approx(float(lam_P.mean()), rel=1e-6)
    assert mean_Q == pytest.approx(float(lam_Q.mean()), rel=1e-6)
    assert not (np.allclose(lam_P, 0.05) and np.allclose(lam_Q, 0.05))  # Λ was updated
    assert backends[1].all_finite()


@pytest.mark.parametrize("block_size", [2, 64])
def test_rank_users_matches_reference_evaluation(layer, block_size):
    P, Q, t_indptr, t_items, s_indptr, s_items, ks, ref = rank_case()
    nU = len(P)
    users = np.flatnonzero(np.diff(t_indptr) > 0)
    ranks = np.zeros(len(t_items))
    auc, hr, nd = np.zeros(nU), np.zeros((nU, 3)), np.zeros((nU, 3))
    layer.kernels("evaluation").rank_users(
        P,
        Q,
        users,
        t_indptr,
        t_items,
        s_indptr,
        s_items,
        ks,
        ranks,
        auc,
        hr,
        nd,
        block_size=block_size,
    )
    assert_user_metrics(auc, hr, nd, ks, ref)
