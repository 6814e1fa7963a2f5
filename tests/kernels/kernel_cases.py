"""Cases and checks shared by the kernel tests of both layers (``test_kernels_cpu.py`` and
``test_kernels_cuda.py`` run them on their own kernel modules): small random tables, held-row
maps, the reference results the kernels must match, and the backends run side by side.

float32 kernels are compared with the float64 reference at :data:`F32` (a few float32 roundings
of O(1) values)."""

import numpy as np
import pytest

from helpers import random_triplets
from lopt_np.backends import make_backend
from lopt_np.math.granularity import get_granularity, init_lambda
from lopt_np.kernels.cpu.hypergradient import hold_rows
from lopt_np.math.evaluation import evaluate_users
from lopt_np.math.hypergradient import ThetaOptimizer, theta_update_full
from lopt_np.math.lambda_update import LambdaOptimizer, init_lambda_optimizer_state, lambda_step
from lopt_np.math.optimizers import adam_eps_terms, adam_step_size
from lopt_np.math.penalty import batch_row_weights, penalty_grad

F32 = dict(rtol=1e-4, atol=1e-6)


def random_tables(rng, nU=11, nI=13, K=6, dtype=np.float32):
    return (rng.normal(0, 0.5, (nU, K)).astype(dtype), rng.normal(0, 0.5, (nI, K)).astype(dtype))


def held_rows(rows, n):
    """Slot map, held rows and counts of ``rows`` (the real step's compact layout)."""
    slot = np.full(n, -1, np.int64)
    held = np.zeros(n, np.int64)
    n_held = hold_rows(rows, slot, held, 0)
    return slot, held, n_held, np.bincount(rows, minlength=n)[held[:n_held]].astype(np.int64)


def check_fused_theta_updates(kernels, granularity, optimizer, scope, eps_placement="inside"):
    """The fused penalty + Θ-optimizer kernels of module ``kernels`` (CPU or CUDA, same
    arguments) against ``math.hypergradient.theta_update_full``."""
    rng = np.random.default_rng(2)
    P, _ = random_tables(rng)
    g = get_granularity(granularity)
    lam = rng.uniform(0, 0.5, g.P.shape(11, 6)).astype(np.float32)
    u, i, j = random_triplets(rng, 11, 13, 8)
    u[u == 10] = 9  # row 10 is never touched
    grad = rng.normal(0, 0.1, P.shape).astype(np.float32)
    grad[np.bincount(u, minlength=11) == 0] = 0.0  # untouched rows have no data gradient
    w, _ = batch_row_weights(u, i, j, 11, 13, scope)
    d = grad.astype(np.float64) + penalty_grad(
        w, np.broadcast_to(lam, P.shape), P.astype(np.float64)
    )
    slot, held, n_held, count = held_rows(u, 11)
    g_compact = grad[held[:n_held]].copy()
    m = rng.normal(0, 0.01, P.shape).astype(np.float32)
    v = rng.uniform(1e-4, 1e-3, P.shape).astype(np.float32)
    opt = ThetaOptimizer(
        optimizer, 0.01 if optimizer != "sgd" else 0.1, eps_placement=eps_placement
    )
    ref = theta_update_full(P.astype(np.float64), d, opt, m, v, 4, w > 0)
    T, m2, v2 = P.copy(), m.copy(), v.copy()
    f = np.float32
    eps_terms = adam_eps_terms(1e-8, eps_placement, 0.999, 4)
    consts = (f(0.9), f(0.999), f(0.1), f(1 - 0.999), *map(f, eps_terms))
    alpha = f(adam_step_size(0.01, 0.9, 0.999, 4))
    if optimizer == "adam":
        kernels.adam_update(
            T, m2, v2, slot, g_compact, count, lam, f(1 / 8), scope == "full", alpha, *consts
        )
    elif optimizer == "lazy_adam":
        kernels.lazy_adam_update(
            T, m2, v2, held, n_held, g_compact, count, lam, f(1 / 8), alpha, *consts
        )
    else:
        kernels.sgd_update(
            T, slot, held, n_held, g_compact, count, lam, f(1 / 8), scope == "full", f(0.1)
        )
    for got, want in zip((T, m2, v2), ref):
        np.testing.assert_allclose(got, want, **F32)
    if optimizer != "adam" and scope == "batch":
        np.testing.assert_array_equal(T[10], P[10])  # untouched row did not move


def lambda_update_case(lambda_optimizer, eps_placement="inside", rows="all"):
    """Λ, a compact gradient (rows 2 and 5 have none), optimizer state and the reference
    ``math.lambda_update.lambda_step`` result (clip 1.5, projection exercised); with
    ``rows="batch"`` the reference updates only the rows with a gradient."""
    rng = np.random.default_rng(3)
    lam = rng.uniform(0, 0.01, (7, 5))
    G = rng.normal(0, 1, (7, 5))
    G[[2, 5]] = 0.0  # rows without a gradient
    opt = LambdaOptimizer(lambda_optimizer, 0.02, clip=1.5, eps_placement=eps_placement, rows=rows)
    state = init_lambda_optimizer_state([lam])
    state["t"] = 2
    state["m"] = [rng.normal(0, 0.1, lam.shape)]
    state["v"] = [rng.uniform(0, 0.1, lam.shape)]
    state["vmax"] = [state["v"][0] + rng.uniform(0, 0.05, lam.shape)]
    rows = np.array([6, 0, 3, 1, 4])  # compact gradient of the rows that have one
    mask = np.isin(np.arange(7), rows)
    (want,), new_state = lambda_step([lam], [G], state, opt, [mask])
    assert (want >= 0).all() and (want == 0).any()  # the projection is exercised
    slot, held, n_held, _ = held_rows(rows, 7)
    f = np.float32
    Gc = G[held[:n_held]].astype(f)
    state32 = [state[k][0].astype(f) for k in ("m", "v", "vmax")]
    consts = (
        f(adam_step_size(0.02, 0.9, 0.999, 3)),
        f(0.9),
        f(0.999),
        f(0.1),
        f(1 - 0.999),
        *map(f, adam_eps_terms(1e-8, eps_placement, 0.999, 3)),
        lambda_optimizer == "amsgrad",
    )
    return lam.astype(f), slot, held, n_held, Gc, state32, consts, want


def check_lambda_update_rows(kernels, lambda_optimizer, eps_placement, clip_scale_of):
    """``lambda_adam_update`` of a kernel module with ``batch_rows`` against the reference with
    rows "batch": the rows with a gradient as the reference, the others (2, 5) keep Λ and
    moments bit for bit, where the dense update (rows "all") moves them."""
    got, slot, held, n_held, Gc, (m, v, vmax), consts, want = lambda_update_case(
        lambda_optimizer, eps_placement, rows="batch"
    )
    before = [a.copy() for a in (got, m, v, vmax)]
    scale = np.float32(clip_scale_of(Gc, n_held))
    kernels.lambda_adam_update(got, slot, held, n_held, Gc, m, v, vmax, scale, *consts, True)
    np.testing.assert_allclose(got, want, **F32)
    for new, old in zip((got, m, v, vmax), before):
        np.testing.assert_array_equal(new[[2, 5]], old[[2, 5]])
    dense = lambda_update_case(lambda_optimizer, eps_placement)[-1]
    assert np.abs(dense[[2, 5]] - want[[2, 5]]).max() > 1e-4


def run_backends(
    granularity,
    optimizer,
    scope,
    lambda_optimizer,
    dtype,
    steps,
    names=("reference", "cpu"),
    lambda_rows="all",
    clip=0.5,
):
    rng = np.random.default_rng(4)
    nU, nI, K = 13, 17, 6
    P, Q = random_tables(rng, nU, nI, K, dtype)
    lP, lQ = init_lambda(granularity, nU, nI, K, 0.05, dtype)
    args = (
        granularity,
        ThetaOptimizer(optimizer, 0.05),
        LambdaOptimizer(lambda_optimizer, 0.05, clip=clip, rows=lambda_rows),
    )
    backends = [make_backend(n, P, Q, lP, lQ, *args, scope=scope) for n in names]
    losses = []
    for _ in range(steps):
        B, Bbar, V = (random_triplets(rng, nU, nI, 9) for _ in range(3))
        losses.append([(b.lambda_step(Bbar, V), b.theta_step(B)) for b in backends])
    return backends, losses


def rank_case():
    """Scores with ties, each user's seen items and targets (user 4 has none), and the
    reference ``math.evaluation.evaluate_users`` per user."""
    rng = np.random.default_rng(6)
    nU, nI = 9, 40
    P, Q = rng.normal(size=(nU, 5)), rng.normal(size=(nI, 5))
    Q[7] = Q[3]  # ties: strictly-higher counting must hold
    seen = {u: sorted(rng.choice(nI, 8, replace=False)) for u in range(nU)}
    targets = {u: seen[u][:3] for u in range(nU) if u != 4}  # user 4 has no targets
    ks = np.array([1, 5, 10])
    t_indptr = np.zeros(nU + 1, np.int64)
    t_indptr[1:] = np.cumsum([len(targets.get(u, [])) for u in range(nU)])
    t_items = np.concatenate([targets.get(u, []) for u in range(nU)]).astype(np.int64)
    s_indptr = np.r_[0, np.cumsum([8] * nU)].astype(np.int64)
    s_items = np.concatenate([seen[u] for u in range(nU)]).astype(np.int64)
    return P, Q, t_indptr, t_items, s_indptr, s_items, ks, evaluate_users(P, Q, targets, seen, ks)


def assert_user_metrics(auc, hr, nd, ks, ref):
    for u, row in ref.items():
        assert auc[u] == pytest.approx(row["auc"], abs=1e-12)
        for q, k in enumerate(ks):
            assert hr[u, q] == pytest.approx(row[f"hr@{k}"], abs=1e-12)
            assert nd[u, q] == pytest.approx(row[f"ndcg@{k}"], abs=1e-12)


def check_clip_matches_reference(granularity, backend_name):
    """With a clip that fires at every Λ step (SGD on Λ, whose step is proportional to the clip
    scale), the backend equals the reference: the norm of G_Λ is summed over every learned
    block once (a tied Λ's one array counted once). Without the clip the result differs, so the
    clip did fire."""
    runs = {
        clip: run_backends(
            granularity,
            "adam",
            "batch",
            "sgd",
            np.float64,
            3,
            ("reference", backend_name),
            clip=clip,
        )[0]
        for clip in (1e-4, np.inf)
    }
    for a, b in zip(*(bk.parameters() for bk in runs[1e-4])):
        np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-14)
    clipped, free = (runs[c][0].parameters()[2:] for c in (1e-4, np.inf))
    assert max(np.abs(a - b).max() for a, b in zip(clipped, free)) > 1e-8


# What each layer's backend runs in the whole-backend comparisons (the simulator is slow: CUDA
# runs fewer steps and Λ optimizers; AMSGrad is in its float32 case).
BACKEND_CASES = {
    "cpu": dict(rtol=1e-12, atol=1e-14, steps=4, lambda_optimizers=("adam", "amsgrad", "sgd")),
    "cuda": dict(rtol=1e-10, atol=1e-13, steps=2, lambda_optimizers=("adam", "sgd")),
}


def check_backend_matches_reference_float64(name, granularity, optimizer, scope):
    """The whole backend ``name`` against the reference backend, float64, every Λ optimizer of
    :data:`BACKEND_CASES`: the losses of each step and every parameter at the end."""
    case = BACKEND_CASES[name]
    for lam_opt in case["lambda_optimizers"]:
        backends, losses = run_backends(
            granularity,
            optimizer,
            scope,
            lam_opt,
            np.float64,
            case["steps"],
            names=("reference", name),
        )
        for ref, got in losses:
            np.testing.assert_allclose(got, ref, rtol=case["rtol"])
        for a, b in zip(*(bk.parameters() for bk in backends)):
            np.testing.assert_allclose(b, a, rtol=case["rtol"], atol=case["atol"])
