"""Every Numba CPU kernel against the NumPy reference (SPEC §2-5, §7).

float32 kernels are compared with the float64 reference at rtol 1e-4 / atol 1e-6 (a few float32
roundings of O(1) values); float64 kernels must agree to 1e-12 (same formulas, same order).
"""
import numba
import numpy as np
import pytest

from conftest import random_triplets
from lopt_np.backends import make_backend
from lopt_np.granularity import get_granularity, init_lambda
from lopt_np.kernels.cpu.bpr import bpr_forward, bpr_grad_scatter
from lopt_np.kernels.cpu.evaluation import rank_block
from lopt_np.kernels.cpu.hypergradient import hold_rows
from lopt_np.kernels.cpu.lambda_update import (lambda_adam_update, lambda_sgd_update,
                                               sum_of_squares)
from lopt_np.kernels.cpu import optimizers as cpu_optimizers
from lopt_np.math import bpr as ref_bpr
from lopt_np.math.evaluation import evaluate_users
from lopt_np.math.hypergradient import ThetaOptimizer, theta_update_full
from lopt_np.math.lambda_update import (LambdaOptimizer, init_lambda_optimizer_state,
                                        lambda_step)
from lopt_np.math.lambda_update import clip_scale
from lopt_np.math.optimizers import EPS_PLACEMENTS, adam_eps_terms, adam_step_size
from lopt_np.math.penalty import batch_row_weights, penalty_grad

F32 = dict(rtol=1e-4, atol=1e-6)


def _tables(rng, nU=11, nI=13, K=6, dtype=np.float32):
    return (rng.normal(0, 0.5, (nU, K)).astype(dtype), rng.normal(0, 0.5, (nI, K)).astype(dtype))


def test_bpr_kernels_match_reference_with_repeated_rows():
    rng = np.random.default_rng(0)
    P, Q = _tables(rng)
    u, i, j = random_triplets(rng, 11, 13, 200)   # every row repeats many times
    n = len(u)
    delta, loss = np.zeros(n, np.float32), np.zeros(n, np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    bpr_forward(P, Q, idP, idQ, u, i, j, delta, loss)
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    np.testing.assert_allclose(loss.mean(), ref_bpr.bpr_loss(P64, Q64, u, i, j), **F32)
    np.testing.assert_allclose(delta, ref_bpr.bpr_delta(P64, Q64, u, i, j), **F32)
    gP, gQ = np.zeros_like(P), np.zeros_like(Q)
    cP, cQ = np.zeros(11, np.int64), np.zeros(13, np.int64)
    for blocks in (1, 2, 5):  # any column split gives the same sums
        gP[:], gQ[:] = 0, 0
        bpr_grad_scatter(P, Q, idP, idQ, u, i, j, delta, np.float32(1 / n), idP, idQ, gP, gQ,
                         cP, cQ, False, blocks)
        rP, rQ = ref_bpr.bpr_grad(P64, Q64, u, i, j)
        np.testing.assert_allclose(gP, rP, **F32)
        np.testing.assert_allclose(gQ, rQ, **F32)
    bpr_grad_scatter(P, Q, idP, idQ, u, i, j, delta, np.float32(1 / n), idP, idQ, gP, gQ,
                     cP, cQ, True, 3)
    np.testing.assert_array_equal(cP, np.bincount(u, minlength=11))
    np.testing.assert_array_equal(cQ, np.bincount(np.r_[i, j], minlength=13))


def test_bpr_scatter_is_identical_for_any_thread_count():
    rng = np.random.default_rng(1)
    P, Q = _tables(rng, K=16)
    u, i, j = random_triplets(rng, 11, 13, 300)
    delta = rng.uniform(-1, 0, 300).astype(np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    out = []
    for blocks in (1, 2, 7):
        gP, gQ = np.zeros_like(P), np.zeros_like(Q)
        bpr_grad_scatter(P, Q, idP, idQ, u, i, j, delta, np.float32(0.01), idP, idQ, gP, gQ,
                         np.zeros(11, np.int64), np.zeros(13, np.int64), False, blocks)
        out.append((gP, gQ))
    for gP, gQ in out[1:]:
        np.testing.assert_array_equal(gP, out[0][0])
        np.testing.assert_array_equal(gQ, out[0][1])


def _held(rows, n):
    """Slot map, held rows and counts of ``rows`` (the real step's compact layout)."""
    slot = np.full(n, -1, np.int64)
    held = np.zeros(n, np.int64)
    n_held = hold_rows(rows, slot, held, 0)
    return slot, held, n_held, np.bincount(rows, minlength=n)[held[:n_held]].astype(np.int64)


def check_fused_theta_updates(kernels, granularity, optimizer, scope, eps_placement="inside"):
    """The fused penalty + Θ-optimizer kernels of module ``kernels`` (CPU or CUDA, same
    arguments) against ``math.hypergradient.theta_update_full``."""
    rng = np.random.default_rng(2)
    P, _ = _tables(rng)
    g = get_granularity(granularity)
    lam = rng.uniform(0, 0.5, g.P.shape(11, 6)).astype(np.float32)
    u, i, j = random_triplets(rng, 11, 13, 8)
    u[u == 10] = 9                                  # row 10 is never touched
    grad = rng.normal(0, 0.1, P.shape).astype(np.float32)
    grad[np.bincount(u, minlength=11) == 0] = 0.0   # untouched rows have no data gradient
    w, _ = batch_row_weights(u, i, j, 11, 13, scope)
    d = grad.astype(np.float64) + penalty_grad(P.astype(np.float64), np.broadcast_to(lam, P.shape), w)
    slot, held, n_held, count = _held(u, 11)
    g_compact = grad[held[:n_held]].copy()
    m = rng.normal(0, 0.01, P.shape).astype(np.float32)
    v = rng.uniform(1e-4, 1e-3, P.shape).astype(np.float32)
    opt = ThetaOptimizer(optimizer, 0.01 if optimizer != "sgd" else 0.1,
                         eps_placement=eps_placement)
    ref = theta_update_full(P.astype(np.float64), d, opt, m, v, 4, w > 0)
    T, m2, v2 = P.copy(), m.copy(), v.copy()
    f = np.float32
    eps_terms = adam_eps_terms(1e-8, eps_placement, 0.999, 4)
    consts = (f(0.9), f(0.999), f(0.1), f(1 - 0.999), *map(f, eps_terms))
    alpha = f(adam_step_size(0.01, 0.9, 0.999, 4))
    if optimizer == "adam":
        kernels.adam_update(T, m2, v2, slot, g_compact, count, lam, f(1 / 8), scope == "full", alpha,
                    *consts)
    elif optimizer == "lazy_adam":
        kernels.lazy_adam_update(T, m2, v2, held, n_held, g_compact, count, lam, f(1 / 8), alpha, *consts)
    else:
        kernels.sgd_update(T, slot, held, n_held, g_compact, count, lam, f(1 / 8), scope == "full",
                   f(0.1))
    for got, want in zip((T, m2, v2), ref):
        np.testing.assert_allclose(got, want, **F32)
    if optimizer != "adam" and scope == "batch":
        np.testing.assert_array_equal(T[10], P[10])     # untouched row did not move


@pytest.mark.parametrize("eps_placement", EPS_PLACEMENTS)
def test_fused_theta_updates_match_reference(granularity, optimizer, scope, eps_placement):
    check_fused_theta_updates(cpu_optimizers, granularity, optimizer, scope, eps_placement)


def lambda_update_case(lambda_optimizer, eps_placement="inside"):
    """Λ, a compact gradient (rows 2 and 5 have none), optimizer state and the reference
    ``math.lambda_update.lambda_step`` result (clip 1.5, projection exercised)."""
    rng = np.random.default_rng(3)
    lam = rng.uniform(0, 0.01, (7, 5))
    G = rng.normal(0, 1, (7, 5))
    G[[2, 5]] = 0.0                                 # rows without a gradient
    opt = LambdaOptimizer(lambda_optimizer, 0.02, clip=1.5, eps_placement=eps_placement)
    state = init_lambda_optimizer_state([lam])
    state["t"] = 2
    state["m"] = [rng.normal(0, 0.1, lam.shape)]
    state["v"] = [rng.uniform(0, 0.1, lam.shape)]
    state["vmax"] = [state["v"][0] + rng.uniform(0, 0.05, lam.shape)]
    (want,), _ = lambda_step([lam], [G], state, opt)
    assert (want >= 0).all() and (want == 0).any()   # the projection is exercised
    rows = np.array([6, 0, 3, 1, 4])                 # compact gradient of the rows that have one
    slot, held, n_held, _ = _held(rows, 7)
    f = np.float32
    Gc = G[held[:n_held]].astype(f)
    state32 = [state[k][0].astype(f) for k in ("m", "v", "vmax")]
    consts = (f(adam_step_size(0.02, 0.9, 0.999, 3)), f(0.9), f(0.999), f(0.1), f(1 - 0.999),
              *map(f, adam_eps_terms(1e-8, eps_placement, 0.999, 3)),
              lambda_optimizer == "amsgrad")
    return lam.astype(f), slot, held, n_held, Gc, state32, consts, want


@pytest.mark.parametrize("eps_placement", EPS_PLACEMENTS)
def test_lambda_update_kernels_match_reference(lambda_optimizer, eps_placement):
    got, slot, held, n_held, Gc, (m, v, vmax), consts, want = lambda_update_case(lambda_optimizer,
                                                                                eps_placement)
    scale = np.float32(clip_scale(np.sqrt(sum_of_squares(Gc, n_held)), 1.5))
    if lambda_optimizer == "sgd":
        lambda_sgd_update(got, held, n_held, Gc, scale, np.float32(0.02))
    else:
        lambda_adam_update(got, slot, Gc, m, v, vmax, scale, *consts)
    np.testing.assert_allclose(got, want, **F32)


def _run_backends(granularity, optimizer, scope, lambda_optimizer, dtype, steps,
                  names=("reference", "cpu")):
    rng = np.random.default_rng(4)
    nU, nI, K = 13, 17, 6
    P, Q = _tables(rng, nU, nI, K, dtype)
    lP, lQ = init_lambda(granularity, nU, nI, K, 0.05, dtype)
    args = (granularity, ThetaOptimizer(optimizer, 0.05), LambdaOptimizer(lambda_optimizer, 0.05,
                                                                          clip=0.5))
    backends = [make_backend(n, P, Q, lP, lQ, *args, scope=scope) for n in names]
    losses = []
    for _ in range(steps):
        B, Bbar, V = (random_triplets(rng, nU, nI, 9) for _ in range(3))
        losses.append([(b.lambda_step(Bbar, V), b.theta_step(B)) for b in backends])
    return backends, losses


def test_cpu_backend_matches_reference_float64(granularity, optimizer, scope):
    for lam_opt in ("adam", "amsgrad", "sgd"):
        backends, losses = _run_backends(granularity, optimizer, scope, lam_opt, np.float64, 4)
        for ref, cpu in losses:
            np.testing.assert_allclose(cpu, ref, rtol=1e-12)
        for a, b in zip(*(bk.parameters() for bk in backends)):
            np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)


def test_cpu_backend_matches_reference_float32(granularity, optimizer, scope):
    backends, losses = _run_backends(granularity, optimizer, scope, "adam", np.float32, 3)
    for ref, cpu in losses:
        np.testing.assert_allclose(cpu, ref, rtol=1e-5)
    for a, b in zip(*(bk.parameters() for bk in backends)):
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)
    _, _, lam_P, lam_Q = backends[1].parameters()
    assert not (np.allclose(lam_P, 0.05) and np.allclose(lam_Q, 0.05))   # Λ was updated


def test_compiled_steps_have_one_version_for_every_layout():
    """The compiled steps take the Λ layouts as arguments: once one granularity has run, every
    other one (tied, shared, per-row Λ) reuses its compiled versions, which Numba can cache on
    disk; none is compiled per layout."""
    from lopt_np.granularity import GRANULARITIES
    from lopt_np.kernels.cpu.hypergradient import lookahead_step
    from lopt_np.kernels.cpu.optimizers import theta_step_adam
    names = list(GRANULARITIES)
    _run_backends(names[0], "adam", "batch", "adam", np.float32, 1, names=("cpu",))
    before = [list(step.signatures) for step in (lookahead_step, theta_step_adam)]
    for name in names[1:]:
        _run_backends(name, "adam", "batch", "adam", np.float32, 1, names=("cpu",))
    assert [list(step.signatures) for step in (lookahead_step, theta_step_adam)] == before


def test_lookahead_touches_only_validation_rows():
    """SPEC §5.4: Λ rows of users absent from V get no hypergradient (SGD on Λ, no momentum)."""
    rng = np.random.default_rng(5)
    P, Q = _tables(rng, 20, 15, 4, np.float32)
    lP, lQ = init_lambda("DUI", 20, 15, 4, 0.1, np.float32)
    b = make_backend("cpu", P, Q, lP, lQ, "DUI", ThetaOptimizer("adam", 0.05),
                     LambdaOptimizer("sgd", 1.0))
    V = (np.array([1, 1, 3]), np.array([2, 4, 2]), np.array([5, 6, 7]))
    B = random_triplets(rng, 20, 15, 40)
    b.lambda_step(B, V)
    lam_P = b.parameters()[2]
    changed = np.flatnonzero(np.any(lam_P != np.float32(0.1), axis=1))
    assert set(changed) <= {1, 3} and len(changed) > 0


def rank_case():
    """Scores with ties, each user's seen items and targets (user 4 has none), and the
    reference ``math.evaluation.evaluate_users`` per user."""
    rng = np.random.default_rng(6)
    nU, nI = 9, 40
    P, Q = rng.normal(size=(nU, 5)), rng.normal(size=(nI, 5))
    Q[7] = Q[3]   # ties: strictly-higher counting must hold
    seen = {u: sorted(rng.choice(nI, 8, replace=False)) for u in range(nU)}
    targets = {u: seen[u][:3] for u in range(nU) if u != 4}   # user 4 has no targets
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


def test_rank_block_matches_reference_evaluation():
    P, Q, t_indptr, t_items, s_indptr, s_items, ks, ref = rank_case()
    nU = len(P)
    ranks = np.zeros(len(t_items))
    auc, hr, nd = np.zeros(nU), np.zeros((nU, 3)), np.zeros((nU, 3))
    rank_block(P @ Q.T, np.arange(nU), t_indptr, t_items, s_indptr, s_items, ks, ranks, auc, hr, nd)
    assert_user_metrics(auc, hr, nd, ks, ref)


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_block_counts_ties_and_many_targets_like_the_reference(seed):
    """Integer scores in [-3, 3] (ties everywhere, between targets and with negatives) and
    users with 0 to 30 targets: every rank, AUC, HR and NDCG equal the reference's."""
    rng = np.random.default_rng(seed)
    nU, nI = 30, 60
    P, Q = rng.integers(-1, 2, (nU, 3)).astype(float), rng.integers(-1, 2, (nI, 3)).astype(float)
    seen = {u: sorted(rng.choice(nI, 40, replace=False)) for u in range(nU)}
    targets = {u: list(rng.permutation(seen[u])[:u]) for u in range(1, nU)}   # unsorted
    ks = np.array([1, 3, 20])
    t_indptr = np.r_[0, np.cumsum([len(targets.get(u, [])) for u in range(nU)])].astype(np.int64)
    t_items = np.concatenate([targets.get(u, []) for u in range(nU)]).astype(np.int64)
    s_indptr = np.r_[0, np.cumsum([40] * nU)].astype(np.int64)
    s_items = np.concatenate([seen[u] for u in range(nU)]).astype(np.int64)
    ranks = np.zeros(len(t_items))
    auc, hr, nd = np.zeros(nU), np.zeros((nU, 3)), np.zeros((nU, 3))
    rank_block(P @ Q.T, np.arange(nU), t_indptr, t_items, s_indptr, s_items, ks, ranks, auc, hr,
               nd)
    ref = evaluate_users(P, Q, targets, seen, ks)
    assert_user_metrics(auc, hr, nd, ks, ref)
    from lopt_np.math.evaluation import rank_user
    for u in range(1, nU):
        expected, _ = rank_user(P[u] @ Q.T, np.asarray(targets[u]), np.asarray(seen[u]))
        np.testing.assert_array_equal(ranks[t_indptr[u]:t_indptr[u + 1]], expected)


def test_sorted_contains_matches_membership_on_every_range():
    """The branch-free binary search: every sub-range [lo, hi) of a sorted list (empty ones
    too), every value from below the first to above the last."""
    from lopt_np.kernels.cpu._jit import sorted_contains
    values = np.array([1, 3, 4, 8, 9, 15, 20], np.int64)
    for lo in range(len(values) + 1):
        for hi in range(lo, len(values) + 1):
            for x in range(0, 22):
                assert sorted_contains(values, lo, hi, x) == (x in values[lo:hi]), (lo, hi, x)


def test_negative_sampler_is_valid_reproducible_and_thread_independent(small_split):
    from lopt_np.sampling import TripletSampler
    s = TripletSampler(small_split, seed=11)
    a = s.train_triplets(1)
    seen = set(map(tuple, small_split.train))
    assert not any((u, j) in seen for u, j in zip(a.users, a.neg))
    v = s.valid_triplets(1, 500)
    allseen = seen | set(map(tuple, small_split.valid))
    assert not any((u, j) in allseen for u, j in zip(v.users, v.neg))
    assert set(map(tuple, zip(v.users, v.pos))) <= set(map(tuple, small_split.valid))
    n0 = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        b = TripletSampler(small_split, seed=11).train_triplets(1)
    finally:
        numba.set_num_threads(n0)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a.neg, s.train_triplets(2).neg)
    # negatives are spread over the catalogue (uniform draw, not a few items)
    assert len(np.unique(a.neg)) > 0.8 * small_split.n_items


def test_excluded_bitmap_marks_exactly_the_csr_items(small_split):
    """Bit j of user u's row is set iff j is in u's excluded list (the last word partly used)."""
    from lopt_np.sampling import TripletSampler
    ex = TripletSampler(small_split).valid_excluded
    n_users, n_items = small_split.n_users, small_split.n_items
    assert n_items % 64 != 0 and ex.bits.shape == (n_users, -(-n_items // 64))
    as_bytes = ex.bits.astype("<u8").view(np.uint8).reshape(n_users, -1)
    marked = np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n_items].astype(bool)
    expected = np.zeros((n_users, n_items), bool)
    for u in range(n_users):
        expected[u, ex.indices[ex.indptr[u]:ex.indptr[u + 1]]] = True
    np.testing.assert_array_equal(marked, expected)


def test_bitmap_and_binary_search_draw_the_same_triplets(small_split):
    """The bitmap is only a faster membership test: with it and without it (a sampler whose
    memory budget allows no bitmap), every stream gives the same triplets, and users/pos are
    the epoch's permutation of the pairs."""
    from lopt_np.sampling import STREAM_LOOKAHEAD, STREAM_TRAIN, TripletSampler
    fast = TripletSampler(small_split, seed=3)
    slow = TripletSampler(small_split, seed=3, bitmap_max_bytes=0)
    assert fast.train_excluded.bits.shape[1] > 0 and slow.train_excluded.bits.shape[1] == 0
    for draw in (lambda s: s.train_triplets(2), lambda s: s.train_triplets(2, STREAM_LOOKAHEAD),
                 lambda s: s.valid_triplets(2, 700)):
        for x, y in zip(draw(fast), draw(slow)):
            np.testing.assert_array_equal(x, y)
    order = fast._stream(2, STREAM_TRAIN)[0].permutation(len(small_split.train))
    a = fast.train_triplets(2)
    np.testing.assert_array_equal(a.users, small_split.train[order, 0])
    np.testing.assert_array_equal(a.pos, small_split.train[order, 1])


def test_kernel_cache_follows_the_shared_formulas(tmp_path, monkeypatch):
    """A cached CPU kernel is stamped with its own file and with elementwise.py/_jit.py, which
    are compiled into it: editing a shared formula recompiles the kernels that inline it."""
    from lopt_np.kernels.cpu import _cache
    from lopt_np.kernels.cpu.recommend import select_top_block
    locator = select_top_block._cache._impl._locator
    assert type(locator).__name__.startswith("Kernel")
    stamp = locator.get_source_stamp()
    assert stamp[1] == _cache.DIGEST
    copy = tmp_path / "elementwise.py"
    copy.write_bytes(open(_cache.SHARED[0], "rb").read() + b"\n# edited\n")
    monkeypatch.setattr(_cache, "SHARED", (str(copy), _cache.SHARED[1]))
    assert _cache._digest() != _cache.DIGEST
