"""Full-ranking evaluation (paper §5.1.2; SPEC §7), plain NumPy, one user at a time.

For each target pair (u, i) the candidates are i and every item u never interacted with;
``rank = 1 + #{negatives scoring strictly higher} + ½ #{negatives scoring the same}``; the
user's AUC is the fraction of (target, negative) pairs where the target scores strictly
higher, ties counting ½; HR@K and NDCG@K are means over
the user's targets of ``[rank ≤ K]`` and ``[rank ≤ K]/log2(rank + 1)``.
"""

import numpy as np


def rank_user(scores, targets, interacted):
    """Ranks of ``targets`` and the user's AUC, from one user's scores over all items."""
    negative = np.ones(len(scores), bool)
    negative[interacted] = False
    neg = scores[negative]
    s = scores[targets][:, None]
    ties = np.sum(neg[None, :] == s, axis=1)
    ranks = 1 + np.sum(neg[None, :] > s, axis=1) + 0.5 * ties
    auc = float(np.mean((np.sum(neg[None, :] < s, axis=1) + 0.5 * ties) / len(neg)))
    return ranks, auc


def hit_ratio(ranks, k):
    """Mean of [rank ≤ K] over a user's targets."""
    return float(np.mean(ranks <= k))


def ndcg(ranks, k):
    """Mean of [rank ≤ K] / log2(rank + 1) over a user's targets."""
    return float(np.mean(np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)))


def evaluate_users(P, Q, targets_by_user, interacted_by_user, ks):
    """Per-user metrics: dict user → {"auc": …, "hr@K": …, "ndcg@K": …}; scores in float64."""
    out = {}
    Q64 = Q.astype(np.float64)
    for u, targets in targets_by_user.items():
        scores = Q64 @ P[u].astype(np.float64)
        ranks, auc = rank_user(scores, np.asarray(targets), np.asarray(interacted_by_user[u]))
        row = {"auc": auc}
        for k in ks:
            row[f"hr@{k}"] = hit_ratio(ranks, k)
            row[f"ndcg@{k}"] = ndcg(ranks, k)
        out[u] = row
    return out
