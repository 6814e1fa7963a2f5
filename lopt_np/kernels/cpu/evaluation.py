"""Full-ranking evaluation of a block of users (SPEC §7), Numba CPU, parallel over users.

Mirrors ``math.evaluation`` with the comparison turned around: instead of sorting a user's
≈|I| negative scores, its few target scores are sorted and every negative is placed among
them. ``n_above[m]`` counts the negatives with exactly m targets scoring strictly below them,
``n_below[m]`` those with exactly m targets scoring at most them; then the target at sorted
position k has ``Σ_{m>k} n_above[m]`` negatives strictly higher (its rank − 1) and
``Σ_{m≤k} n_below[m]`` strictly lower; the rest tie with it and count ½ in its rank and its
AUC term (SPEC §7). The counts are vector compares over
the t targets: O(|I|·t) per user but branch-free, no allocation of size |I|.
"""

import numpy as np
from numba import prange

from ._jit import jit, pjit


@jit
def count_below(values, x):
    """How many of ``values`` are < x: a branch-free count that compiles to vector compares
    (faster than a binary search over the few targets of a user, whose steps mispredict)."""
    n = 0
    for k in range(values.shape[0]):
        n += values[k] < x
    return n


@jit
def count_at_most(values, x):
    """How many of ``values`` are ≤ x."""
    n = 0
    for k in range(values.shape[0]):
        n += values[k] <= x
    return n


@pjit
def rank_block(
    scores,
    block_users,
    target_indptr,
    target_items,
    seen_indptr,
    seen_items,
    ks,
    ranks,
    auc,
    hr,
    ndcg,
):
    """For each user ``block_users[b]`` (row b of ``scores``): ``ranks[p]`` of its target pairs
    p (indices into ``target_items``), ``auc[u]``, ``hr[u, k]``, ``ndcg[u, k]``. Each user's
    ``seen_items`` (train ∪ valid ∪ test, the non-negatives) must be sorted ascending."""
    n_items = scores.shape[1]
    for b in prange(block_users.shape[0]):
        u = block_users[b]
        t0 = target_indptr[u]
        n_t = target_indptr[u + 1] - t0
        if n_t == 0:
            continue
        target_score = np.empty(n_t)
        for k in range(n_t):
            target_score[k] = scores[b, target_items[t0 + k]]
        order = np.argsort(target_score)
        sorted_score = target_score[order]
        n_above = np.zeros(n_t + 1, np.int64)
        n_below = np.zeros(n_t + 1, np.int64)
        p = seen_indptr[u]
        p_end = seen_indptr[u + 1]
        n_neg = 0
        for j in range(n_items):
            if p < p_end and seen_items[p] == j:
                p += 1
                continue
            x = scores[b, j]
            m = count_below(sorted_score, x)
            n_above[m] += 1
            if m < n_t and sorted_score[m] == x:  # ties with a target
                m = count_at_most(sorted_score, x)
            n_below[m] += 1
            n_neg += 1
        for q in range(ks.shape[0]):
            hr[u, q] = 0.0
            ndcg[u, q] = 0.0
        higher = 0
        for m in range(1, n_t + 1):
            higher += n_above[m]
        lower = 0
        auc_sum = 0.0
        for k in range(n_t):  # ascending score: `higher` shrinks, `lower` grows
            lower += n_below[k]
            half_ties = 0.5 * (n_neg - higher - lower)  # ties count ½ (SPEC §7)
            r = 1.0 + higher + half_ties
            ranks[t0 + order[k]] = r
            auc_sum += (lower + half_ties) / n_neg
            for q in range(ks.shape[0]):
                if r <= ks[q]:
                    hr[u, q] += 1.0
                    ndcg[u, q] += 1.0 / np.log2(r + 1.0)
            higher -= n_above[k + 1]
        auc[u] = auc_sum / n_t
        for q in range(ks.shape[0]):
            hr[u, q] /= n_t
            ndcg[u, q] /= n_t


def rank_scored_users(
    score_users,
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
    block_size=512,
):
    """:func:`rank_block` over ``users`` in blocks of ``block_size``: ``score_users(block)``
    gives the block's float64 scores against every item (any model)."""
    for start in range(0, len(users), block_size):
        block = users[start : start + block_size]
        scores = np.ascontiguousarray(score_users(block), dtype=np.float64)
        rank_block(
            scores,
            block,
            target_indptr,
            target_items,
            seen_indptr,
            seen_items,
            ks,
            ranks,
            auc,
            hr,
            ndcg,
        )


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
    block_size=512,
):
    """Fill ``ranks`` (per target pair), ``auc``, ``hr``, ``ndcg`` (per user) for the users
    ``users`` (ascending, each with ≥ 1 target) of MF, scores P_u·Q_i in float64 (the same
    arguments as ``kernels.cuda.evaluation.rank_users``)."""
    QT = np.ascontiguousarray(Q, dtype=np.float64).T.copy()
    rank_scored_users(
        lambda block: np.asarray(P[block], dtype=np.float64) @ QT,
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
        block_size,
    )
