"""Every Numba CPU kernel against the NumPy reference (SPEC §2-5, §7); the cases and checks
both kernel layers share are in ``kernel_cases.py``.

float32 kernels are compared with the float64 reference at rtol 1e-4 / atol 1e-6 (a few float32
roundings of O(1) values); float64 kernels must agree to 1e-12 (same formulas, same order).
"""

import os
import numba
import numpy as np
import pytest

from helpers import random_triplets
from kernel_cases import (
    F32,
    assert_user_metrics,
    random_tables,
    rank_case,
    run_backends,
)
from lopt_np.backends import make_backend
from lopt_np.math.granularity import init_lambda
from lopt_np.kernels.cpu.bpr import bpr_forward, bpr_grad_scatter
from lopt_np.kernels.cpu.evaluation import rank_block
from lopt_np.math import bpr as ref_bpr
from lopt_np.math.evaluation import evaluate_users
from lopt_np.math.hypergradient import ThetaOptimizer
from lopt_np.math.lambda_update import LambdaOptimizer


def test_bpr_kernels_match_reference_with_repeated_rows():
    rng = np.random.default_rng(0)
    P, Q = random_tables(rng)
    u, i, j = random_triplets(rng, 11, 13, 200)  # every row repeats many times
    n = len(u)
    delta, loss = np.zeros(n, np.float32), np.zeros(n, np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    bpr_forward(P, Q, idP, idQ, u, i, j, idP, idQ, delta, loss)
    P64, Q64 = P.astype(np.float64), Q.astype(np.float64)
    np.testing.assert_allclose(loss.mean(), ref_bpr.bpr_loss(P64, Q64, u, i, j), **F32)
    np.testing.assert_allclose(delta, ref_bpr.bpr_delta(P64, Q64, u, i, j), **F32)
    gP, gQ = np.zeros_like(P), np.zeros_like(Q)
    cP, cQ = np.zeros(11, np.int64), np.zeros(13, np.int64)
    for blocks in (1, 2, 5):  # any column split gives the same sums
        gP[:], gQ[:] = 0, 0
        bpr_grad_scatter(
            P,
            Q,
            idP,
            idQ,
            u,
            i,
            j,
            delta,
            np.float32(1 / n),
            idP,
            idQ,
            gP,
            gQ,
            cP,
            cQ,
            False,
            blocks,
        )
        rP, rQ = ref_bpr.bpr_grad(P64, Q64, u, i, j)
        np.testing.assert_allclose(gP, rP, **F32)
        np.testing.assert_allclose(gQ, rQ, **F32)
    bpr_grad_scatter(
        P, Q, idP, idQ, u, i, j, delta, np.float32(1 / n), idP, idQ, gP, gQ, cP, cQ, True, 3
    )
    np.testing.assert_array_equal(cP, np.bincount(u, minlength=11))
    np.testing.assert_array_equal(cQ, np.bincount(np.r_[i, j], minlength=13))


def test_bpr_scatter_is_identical_for_any_thread_count():
    rng = np.random.default_rng(1)
    P, Q = random_tables(rng, K=16)
    u, i, j = random_triplets(rng, 11, 13, 300)
    delta = rng.uniform(-1, 0, 300).astype(np.float32)
    idP, idQ = np.arange(11), np.arange(13)
    out = []
    for blocks in (1, 2, 7):
        gP, gQ = np.zeros_like(P), np.zeros_like(Q)
        bpr_grad_scatter(
            P,
            Q,
            idP,
            idQ,
            u,
            i,
            j,
            delta,
            np.float32(0.01),
            idP,
            idQ,
            gP,
            gQ,
            np.zeros(11, np.int64),
            np.zeros(13, np.int64),
            False,
            blocks,
        )
        out.append((gP, gQ))
    for gP, gQ in out[1:]:
        np.testing.assert_array_equal(gP, out[0][0])
        np.testing.assert_array_equal(gQ, out[0][1])


def test_cpu_backend_matches_reference_with_lambda_rows_batch(granularity, optimizer, scope):
    """rows "batch" through the CPU backend (held rows of V) equals the reference (rows of V's
    users and items), and for a per-row Λ it is another result than rows "all"."""
    runs = {
        rows: run_backends(
            granularity,
            optimizer,
            scope,
            "amsgrad",
            np.float64,
            4,
            names=("reference", "cpu"),
            lambda_rows=rows,
        )
        for rows in ("all", "batch")
    }
    backends, losses = runs["batch"]
    for ref, cpu in losses:
        np.testing.assert_allclose(cpu, ref, rtol=1e-12)
    for a, b in zip(*(bk.parameters() for bk in backends)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
    dense = runs["all"][0][0].parameters()
    moved = max(np.abs(a - b).max() for a, b in zip(dense[2:], backends[0].parameters()[2:]))
    per_row = any(b.lam.shape[0] > 1 for b in backends[1].blocks)
    assert (moved > 1e-8) == per_row


def test_compiled_steps_have_one_version_for_every_layout():
    """The compiled steps take the Λ layouts as arguments: once one granularity has run, every
    other one (tied, shared, per-row Λ) reuses its compiled versions, which Numba can cache on
    disk; none is compiled per layout."""
    from lopt_np.math.granularity import GRANULARITIES
    from lopt_np.kernels.cpu.step import lookahead_step, theta_step_adam

    names = list(GRANULARITIES)
    run_backends(names[0], "adam", "batch", "adam", np.float32, 1, names=("cpu",))
    before = [list(step.signatures) for step in (lookahead_step, theta_step_adam)]
    for name in names[1:]:
        run_backends(name, "adam", "batch", "adam", np.float32, 1, names=("cpu",))
    assert [list(step.signatures) for step in (lookahead_step, theta_step_adam)] == before


def test_lookahead_touches_only_validation_rows():
    """SPEC §5.4: Λ rows of users absent from V get no hypergradient (SGD on Λ, no momentum)."""
    rng = np.random.default_rng(5)
    P, Q = random_tables(rng, 20, 15, 4, np.float32)
    lP, lQ = init_lambda("DUI", 20, 15, 4, 0.1, np.float32)
    b = make_backend(
        "cpu", P, Q, lP, lQ, "DUI", ThetaOptimizer("adam", 0.05), LambdaOptimizer("sgd", 1.0)
    )
    V = (np.array([1, 1, 3]), np.array([2, 4, 2]), np.array([5, 6, 7]))
    B = random_triplets(rng, 20, 15, 40)
    b.lambda_step(B, V)
    lam_P = b.parameters()[2]
    changed = np.flatnonzero(np.any(lam_P != np.float32(0.1), axis=1))
    assert set(changed) <= {1, 3} and len(changed) > 0


@pytest.mark.parametrize("n_rows", [1, 9, 40])
def test_held_rows_are_numbered_in_table_order(n_rows):
    """``hold_in_table_order``: every row of both arrays held once, ``held[:n]`` sorted (the
    lookahead and lazy-Adam kernels then read the tables at increasing addresses), ``slot`` its
    inverse and −1 elsewhere; the step's ``release_rows`` clears the map again."""
    from lopt_np.kernels.cpu.hypergradient import hold_in_table_order, release_rows

    rng = np.random.default_rng(n_rows)
    first = rng.integers(0, n_rows, 30)
    second = rng.integers(0, n_rows, 17)
    slot = np.full(n_rows, -1, np.int64)
    held = np.full(n_rows, -7, np.int64)
    n = hold_in_table_order(first, second, slot, held)
    expected = np.unique(np.concatenate([first, second]))
    assert n == len(expected)
    np.testing.assert_array_equal(held[:n], expected)
    np.testing.assert_array_equal(slot[held[:n]], np.arange(n))
    assert (np.delete(slot, held[:n]) == -1).all()
    release_rows(slot, held, n)
    assert (slot == -1).all()
    assert hold_in_table_order(first[:0], second[:0], slot, held) == 0


def test_the_step_holds_rows_in_table_order():
    """After a λ step's lookahead the held rows of both tables are V's, sorted: the layout both
    layers share (CUDA decides it on the host with the same function)."""
    from lopt_np.kernels.cpu import step

    rng = np.random.default_rng(6)
    P, Q = random_tables(rng, 20, 15, 4, np.float32)
    lP, lQ = init_lambda("DUI", 20, 15, 4, 0.1, np.float32)
    b = make_backend(
        "cpu", P, Q, lP, lQ, "DUI", ThetaOptimizer("adam", 0.05), LambdaOptimizer("amsgrad", 0.1)
    )
    V = (np.array([7, 1, 7, 3]), np.array([9, 4, 2, 2]), np.array([5, 11, 0, 4]))
    b.theta_step(random_triplets(rng, 20, 15, 40))
    tP, tQ = b.tP.arrays, b.tQ.arrays
    *_, nP, nQ = step.lookahead_step(
        tP,
        tQ,
        random_triplets(rng, 20, 15, 40),
        V,
        b.lambda_grads,
        *b._layouts,
        b._rule,
        b._step_scalars(*b._lookahead_scalars()),
        b._work(),
    )
    np.testing.assert_array_equal(tP.held[:nP], [1, 3, 7])
    np.testing.assert_array_equal(tQ.held[:nQ], [0, 2, 4, 5, 9, 11])
    step.release_rows(tP.slot, tP.held, nP)
    step.release_rows(tQ.slot, tQ.held, nQ)


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
    targets = {u: list(rng.permutation(seen[u])[:u]) for u in range(1, nU)}  # unsorted
    ks = np.array([1, 3, 20])
    t_indptr = np.r_[0, np.cumsum([len(targets.get(u, [])) for u in range(nU)])].astype(np.int64)
    t_items = np.concatenate([targets.get(u, []) for u in range(nU)]).astype(np.int64)
    s_indptr = np.r_[0, np.cumsum([40] * nU)].astype(np.int64)
    s_items = np.concatenate([seen[u] for u in range(nU)]).astype(np.int64)
    ranks = np.zeros(len(t_items))
    auc, hr, nd = np.zeros(nU), np.zeros((nU, 3)), np.zeros((nU, 3))
    rank_block(P @ Q.T, np.arange(nU), t_indptr, t_items, s_indptr, s_items, ks, ranks, auc, hr, nd)
    ref = evaluate_users(P, Q, targets, seen, ks)
    assert_user_metrics(auc, hr, nd, ks, ref)
    from lopt_np.math.evaluation import rank_user

    for u in range(1, nU):
        expected, _ = rank_user(P[u] @ Q.T, np.asarray(targets[u]), np.asarray(seen[u]))
        np.testing.assert_array_equal(ranks[t_indptr[u] : t_indptr[u + 1]], expected)


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
        expected[u, ex.indices[ex.indptr[u] : ex.indptr[u + 1]]] = True
    np.testing.assert_array_equal(marked, expected)


def test_bitmap_and_binary_search_draw_the_same_triplets(small_split):
    """The bitmap is only a faster membership test: with it and without it (a sampler whose
    memory budget allows no bitmap), every stream gives the same triplets, and users/pos are
    the epoch's permutation of the pairs."""
    from lopt_np.sampling import STREAM_LOOKAHEAD, STREAM_TRAIN, TripletSampler

    fast = TripletSampler(small_split, seed=3)
    slow = TripletSampler(small_split, seed=3, bitmap_max_bytes=0)
    assert fast.train_excluded.bits.shape[1] > 0 and slow.train_excluded.bits.shape[1] == 0
    for draw in (
        lambda s: s.train_triplets(2),
        lambda s: s.train_triplets(2, STREAM_LOOKAHEAD),
        lambda s: s.valid_triplets(2, 700),
    ):
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
    monkeypatch.setattr(_cache, "SHARED", (str(copy), *_cache.SHARED[1:]))
    assert _cache._digest() != _cache.DIGEST


def test_a_compiled_step_is_stamped_with_every_kernel_it_links_in():
    """``step.py``'s compiled calls link in the kernels of the other modules of the folder:
    editing any of them must recompile the steps too."""
    import lopt_np.kernels.cpu as cpu_kernels
    from lopt_np.kernels.cpu import _cache

    folder = os.path.dirname(cpu_kernels.__file__)
    modules = {os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".py")}
    assert {"step.py", "optimizers.py", "hypergradient.py"} <= {
        os.path.basename(m) for m in modules
    }
    assert modules <= set(_cache.SHARED)


def test_adam_catch_up_is_the_dense_pass_run_later_bit_for_bit():
    """Rows no batch touches, 1 to 12 steps behind, caught up in one call equal the dense Adam
    kernel run over every row at each of those steps with nothing held (d = 0), in every bit;
    ε outside the root, so each step has its own scalars."""
    from lopt_np.kernels.cpu.optimizers import adam_catch_up, adam_update, rows_behind

    rng = np.random.default_rng(8)
    n, K, steps = 9, 16, 12
    T = rng.normal(0, 0.1, (n, K)).astype(np.float32)
    m = rng.normal(0, 0.01, (n, K)).astype(np.float32)
    v = (rng.random((n, K)) * 1e-4).astype(np.float32)
    lam = np.full((1, 1), 0.01, np.float32)
    f = np.float32
    alpha = (1e-3 * rng.random(steps) + 1e-4).astype(np.float32)
    eps_out = (1e-8 * rng.random(steps)).astype(np.float32)
    eps_in = np.zeros(steps, np.float32)
    betas = (f(0.9), f(0.999), f(0.1), f(0.001))
    last = rng.integers(0, steps, n)  # row r has had steps 1 … last[r]
    base = 0
    ref = [a.copy() for a in (T, m, v)]
    T0 = T.copy()
    for s in range(1, steps + 1):  # the dense pass, one row at a time from its own start
        rows = np.flatnonzero(last < s)
        sub = [a[rows] for a in ref]
        none = np.full(len(rows), -1, np.int64)
        g, count = np.zeros((1, K), np.float32), np.zeros(1, np.int64)
        adam_update(
            *sub,
            none,
            g,
            count,
            lam,
            f(1.0),
            False,
            alpha[s - 1],
            *betas,
            eps_in[s - 1],
            eps_out[s - 1],
        )
        for a, b in zip(ref, sub):
            a[rows] = b
    behind, start = np.zeros(n, np.int64), np.zeros(n, np.int64)
    marks = last.copy()
    order = rng.permutation(np.repeat(np.arange(n), 2))  # each row twice: collected once
    k = rows_behind(order, marks, steps, steps, behind, start, 0)
    assert k == np.count_nonzero(last < steps)
    assert (marks == steps).all()
    adam_catch_up(T, m, v, behind, start, k, steps, base, alpha, eps_in, eps_out, *betas)
    for got, want in zip((T, m, v), ref):
        np.testing.assert_array_equal(got, want)
    moved = last < steps
    assert (T[moved] != T0[moved]).all()  # every waiting entry moved


def test_rows_behind_marks_rows_that_an_update_follows():
    """In the real step (``mark`` = ``upto`` + 1) a row already at ``upto`` waits for nothing
    but is marked as at ``mark``; a row at ``mark`` is left alone."""
    from lopt_np.kernels.cpu.optimizers import rows_behind

    last = np.array([3, 5, 6, 2])
    behind, start = np.zeros(4, np.int64), np.zeros(4, np.int64)
    n = rows_behind(np.array([0, 1, 2, 1, 0]), last, 5, 6, behind, start, 0)
    assert n == 1 and behind[0] == 0 and start[0] == 3
    np.testing.assert_array_equal(last, [6, 6, 6, 2])
