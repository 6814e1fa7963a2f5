"""Full-ranking evaluation of a block of users (SPEC §7), Numba CPU, parallel over users.
Mirrors ``math.evaluation``: each user's negative scores are sorted once, then every target's
rank and AUC term come from two binary searches."""
import numpy as np
from numba import prange

from ._jit import pjit


@pjit
def rank_block(scores, block_users, target_indptr, target_items, seen_indptr, seen_items, ks,
               ranks, auc, hr, ndcg):
    """For each user ``block_users[b]`` (row b of ``scores``): ``ranks[p]`` of its target pairs
    p (indices into ``target_items``), ``auc[u]``, ``hr[u, k]``, ``ndcg[u, k]``."""
    n_items = scores.shape[1]
    for b in prange(block_users.shape[0]):
        u = block_users[b]
        t0 = target_indptr[u]
        t1 = target_indptr[u + 1]
        if t1 == t0:
            continue
        negative = np.ones(n_items, np.bool_)
        for p in range(seen_indptr[u], seen_indptr[u + 1]):
            negative[seen_items[p]] = False
        neg = np.sort(scores[b][negative])
        n_neg = neg.shape[0]
        auc_sum = 0.0
        for q in range(ks.shape[0]):
            hr[u, q] = 0.0
            ndcg[u, q] = 0.0
        for p in range(t0, t1):
            s = scores[b, target_items[p]]
            higher = n_neg - np.searchsorted(neg, s, side="right")
            lower = np.searchsorted(neg, s, side="left")
            r = 1 + higher
            ranks[p] = r
            auc_sum += lower / n_neg
            for q in range(ks.shape[0]):
                if r <= ks[q]:
                    hr[u, q] += 1.0
                    ndcg[u, q] += 1.0 / np.log2(r + 1.0)
        n_t = t1 - t0
        auc[u] = auc_sum / n_t
        for q in range(ks.shape[0]):
            hr[u, q] /= n_t
            ndcg[u, q] /= n_t
