"""Full-ranking evaluation (SPEC §7), Numba CUDA; mirrors ``kernels.cpu.evaluation``.

For a block of users: scores of all items in float64 (one thread per user × item), a mask of
each user's negatives (items it has no interaction with), then one thread per target pair
counts the negatives scored above and below it (rank and AUC term, ties counting ½, as on
the CPU), and one thread per user turns its pairs into AUC, HR@K
and NDCG@K. :func:`rank_users` is the host wrapper: it owns the device buffers and transfers.
"""

import math

import numpy as np
from numba import cuda

from ._jit import kernel, launch, sorted_contains


@kernel
def _score_block(P, QT, block_users, scores):
    n_items = QT.shape[1]
    e = cuda.grid(1)
    if e < block_users.shape[0] * n_items:
        b = e // n_items
        i = e - b * n_items
        u = block_users[b]
        s = 0.0
        for k in range(QT.shape[0]):
            s += np.float64(P[u, k]) * QT[k, i]
        scores[b, i] = s


@kernel
def _mark_negatives(block_users, seen_indptr, seen_items, negative):
    n_items = negative.shape[1]
    e = cuda.grid(1)
    if e < block_users.shape[0] * n_items:
        b = e // n_items
        i = e - b * n_items
        u = block_users[b]
        seen = sorted_contains(seen_items, seen_indptr[u], seen_indptr[u + 1], i)
        negative[b, i] = 0 if seen else 1


@kernel
def _rank_targets(
    scores, negative, block_start, user_pos, pair_user, target_items, p0, p1, ranks, lower_frac
):
    p = p0 + cuda.grid(1)
    if p < p1:
        b = user_pos[pair_user[p]] - block_start
        s = scores[b, target_items[p]]
        higher = 0
        lower = 0
        n_neg = 0
        for i in range(scores.shape[1]):
            if negative[b, i]:
                n_neg += 1
                if scores[b, i] > s:
                    higher += 1
                elif scores[b, i] < s:
                    lower += 1
        half_ties = 0.5 * (n_neg - higher - lower)  # ties count ½ (SPEC §7)
        ranks[p] = 1.0 + higher + half_ties
        lower_frac[p] = (lower + half_ties) / n_neg


@kernel
def _user_metrics(block_users, target_indptr, ranks, lower_frac, ks, auc, hr, ndcg):
    b = cuda.grid(1)
    if b < block_users.shape[0]:
        u = block_users[b]
        t0 = target_indptr[u]
        t1 = target_indptr[u + 1]
        auc_sum = 0.0
        for q in range(ks.shape[0]):
            hr[u, q] = 0.0
            ndcg[u, q] = 0.0
        for p in range(t0, t1):
            r = ranks[p]
            auc_sum += lower_frac[p]
            for q in range(ks.shape[0]):
                if r <= ks[q]:
                    hr[u, q] += 1.0
                    ndcg[u, q] += 1.0 / math.log2(r + 1.0)
        n_t = t1 - t0
        auc[u] = auc_sum / n_t
        for q in range(ks.shape[0]):
            hr[u, q] /= n_t
            ndcg[u, q] /= n_t


def rank_users(
    P,
    Q,
    users,
    target_indptr,
    target_items,
    seen_indptr,
    seen_items,
    ks,
    ranks,
    auc,
    hr,
    ndcg,
    block_size=4096,
):
    """Fill the host arrays ``ranks`` (per target pair), ``auc``, ``hr``, ``ndcg`` (per user)
    for the users ``users`` (ascending, each with ≥ 1 target), as the CPU's ``rank_block``."""
    d = cuda.to_device
    P_d = d(np.ascontiguousarray(P))
    QT_d = d(np.ascontiguousarray(np.asarray(Q, np.float64).T))
    t_indptr, t_items = d(target_indptr), d(target_items)
    s_indptr, s_items = d(seen_indptr), d(seen_items)
    ks_d = d(np.asarray(ks, np.int64))
    n_items = Q.shape[0]
    user_pos = np.zeros(len(target_indptr) - 1, np.int64)
    user_pos[users] = np.arange(len(users))
    pair_user = np.repeat(np.arange(len(target_indptr) - 1), np.diff(target_indptr))
    user_pos_d, pair_user_d, users_d = d(user_pos), d(pair_user), d(np.asarray(users, np.int64))
    ranks_d = cuda.device_array(len(target_items), np.float64)
    lower_d = cuda.device_array(len(target_items), np.float64)
    auc_d, hr_d, ndcg_d = d(auc), d(hr), d(ndcg)
    rows = min(block_size, max(1, len(users)))
    scores = cuda.device_array((rows, n_items), np.float64)
    negative = cuda.device_array((rows, n_items), np.uint8)
    for start in range(0, len(users), block_size):
        block = users_d[start : start + block_size]
        n_b = block.shape[0]
        _score_block[launch(n_b * n_items)](P_d, QT_d, block, scores)
        _mark_negatives[launch(n_b * n_items)](block, s_indptr, s_items, negative)
        p0 = int(target_indptr[users[start]])
        p1 = int(target_indptr[users[start + n_b - 1] + 1])
        _rank_targets[launch(p1 - p0)](
            scores, negative, start, user_pos_d, pair_user_d, t_items, p0, p1, ranks_d, lower_d
        )
        _user_metrics[launch(n_b)](block, t_indptr, ranks_d, lower_d, ks_d, auc_d, hr_d, ndcg_d)
    ranks[:] = ranks_d.copy_to_host()
    auc[:] = auc_d.copy_to_host()
    hr[:] = hr_d.copy_to_host()
    ndcg[:] = ndcg_d.copy_to_host()
