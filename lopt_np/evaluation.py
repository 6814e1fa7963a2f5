"""Evaluation driver (SPEC §7): scores in float64 by user blocks (memory O(block × |I|)), ranked
by the layer's ``rank_users`` (``kernels.cpu.evaluation``, or with ``device="cuda"``
``kernels.cuda.evaluation``: the same arguments), means over users, and the
per-frequency-group breakdown of Figure 6."""

from typing import Optional, Sequence

import numpy as np

from .data.split import pairs_to_csr
from .errors import ConfigError, DataError
from .kernels.cpu.evaluation import rank_scored_users

DEFAULT_KS = (50, 100)
# Lower edges of the training-frequency groups (Figures 6-8): [0,15), [15,30), … , [240, ∞).
DEFAULT_GROUP_EDGES = (0, 15, 30, 60, 120, 240)


def evaluation_device(backend):
    """Where a model trained on ``backend`` is evaluated: on the GPU for ``cuda``, else on the
    CPU (the ``reference`` backend has no evaluation of its own)."""
    return "cuda" if backend == "cuda" else "cpu"


def check_ks(ks, n_items):
    ks = tuple(int(k) for k in ks)
    for k in ks:
        if k < 1:
            raise ConfigError(f"K must be a positive integer, got {k}")
        if k > n_items:
            raise ConfigError(f"K={k} is larger than the catalogue ({n_items} items)")
    return ks


def group_labels(edges):
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])] + [f"{edges[-1]}+"]


def group_of(freq, edges):
    """Group index of each frequency (``edges`` are the groups' lower bounds)."""
    return np.searchsorted(np.asarray(edges), freq, side="right") - 1


def evaluate(
    P: np.ndarray,
    Q: np.ndarray,
    split,
    target: str = "test",
    ks: Sequence[int] = DEFAULT_KS,
    block_size: Optional[int] = None,
    group_edges: Sequence[int] = DEFAULT_GROUP_EDGES,
    device: str = "cpu",
) -> dict:
    """Mean AUC, HR@K and NDCG@K of MF (scores P_u·Q_i) over users with ``target`` items, with
    per-group breakdowns (SPEC §7: full ranking, the user's other known items excluded).

    Parameters
    ----------
    P, Q : ndarray
        User and item embeddings (n_users × K, n_items × K), finite.
    split : Split
        The interactions; ``target`` names its part to rank (``train``, ``valid``, ``test``).
    ks : sequence of int
        Cut-offs of HR@K and NDCG@K (each at most the number of items).
    block_size : int, optional
        Users scored at once (None: the kernel layer's default).
    group_edges : sequence of int
        Training-history lengths that bound the user groups of the breakdown.
    device : {"cpu", "cuda"}
        The kernel layer whose ``rank_users`` ranks (``cpu`` also for the ``reference``
        backend); both take the same arguments.

    Returns
    -------
    dict
        ``metrics`` (``auc``, ``hr@K``, ``ndcg@K``: means over the users with target items),
        ``n_users`` and ``n_pairs`` evaluated, and ``groups``, the breakdown by training
        frequency (:func:`frequency_groups`, Figure 6).
    """
    for name, X in (("user", P), ("item", Q)):
        if not np.isfinite(X).all():
            raise DataError(
                f"the {name} embeddings hold NaN or inf: such a model has no "
                f"ranking to evaluate (SPEC §7)"
            )
    kernels = _evaluation_kernels(device)
    sizes = {} if block_size is None else {"block_size": block_size}
    return _rank_and_summarize(
        lambda *arrays: kernels.rank_users(P, Q, *arrays, **sizes), split, target, ks, group_edges
    )


def _evaluation_kernels(device):
    """``kernels.cpu.evaluation`` or (``device="cuda"``) ``kernels.cuda.evaluation``; a
    one-line error where CUDA is unavailable."""
    if device != "cuda":
        from .kernels.cpu import evaluation

        return evaluation
    from .backends.cuda_support import cuda_module

    cuda_module()
    from .kernels.cuda import evaluation

    return evaluation


def evaluate_scores(
    score_users,
    split,
    target="test",
    ks=DEFAULT_KS,
    block_size=512,
    group_edges=DEFAULT_GROUP_EDGES,
):
    """:func:`evaluate` for any model: ``score_users(users)`` returns the float64 scores of
    those users against every item, ``(len(users), n_items)``; ranked on the CPU."""

    def finite_scores(block):
        scores = score_users(block)
        if not np.isfinite(scores).all():
            raise DataError(
                "the model's scores hold NaN or inf: such a model has no ranking "
                "to evaluate (SPEC §7)"
            )
        return scores

    return _rank_and_summarize(
        lambda *arrays: rank_scored_users(finite_scores, *arrays, block_size),
        split,
        target,
        ks,
        group_edges,
    )


def _rank_and_summarize(rank, split, target, ks, group_edges):
    """The users with ``target`` items ranked by ``rank(users, target_indptr, target_items,
    seen_indptr, seen_items, ks, ranks, auc, hr, ndcg)`` (a kernel layer's ranking with the
    model bound), then the means and the per-group summary."""
    ks = check_ks(ks, split.n_items)
    t_indptr, t_items, t_pairs = pairs_to_csr(getattr(split, target), split.n_users)
    s_indptr, s_items = split.csr()
    users = np.flatnonzero(np.diff(t_indptr) > 0)
    ranks, auc, hr, nd = _metric_arrays(split, t_items, ks)
    rank(users, t_indptr, t_items, s_indptr, s_items, np.asarray(ks, np.int64), ranks, auc, hr, nd)
    return _summary(split, users, t_pairs, ks, auc, hr, nd, group_edges)


def _metric_arrays(split, t_items, ks):
    return (
        np.zeros(len(t_items), np.float64),
        np.zeros(split.n_users),
        np.zeros((split.n_users, len(ks))),
        np.zeros((split.n_users, len(ks))),
    )


def _summary(split, users, t_pairs, ks, auc, hr, nd, group_edges):
    metrics = {"auc": float(auc[users].mean())}
    for q, k in enumerate(ks):
        metrics[f"hr@{k}"] = float(hr[users, q].mean())
    for q, k in enumerate(ks):
        metrics[f"ndcg@{k}"] = float(nd[users, q].mean())
    per_user = {
        "auc": auc,
        **{f"hr@{k}": hr[:, q] for q, k in enumerate(ks)},
        **{f"ndcg@{k}": nd[:, q] for q, k in enumerate(ks)},
    }
    return {
        "metrics": metrics,
        "n_users": int(len(users)),
        "n_pairs": int(len(t_pairs)),
        "groups": frequency_groups(split, users, t_pairs, per_user, group_edges),
    }


def frequency_groups(split, users, t_pairs, per_user, edges=DEFAULT_GROUP_EDGES):
    """Figure 6 breakdown: users (and items) bucketed by training frequency; a user's value is
    its metric, an item's value the mean over the test users who interacted with it."""
    labels = group_labels(edges)
    out = {"edges": list(edges), "labels": labels, "users": [], "items": []}
    ug = group_of(split.user_frequency()[users], edges)
    for g, label in enumerate(labels):
        sel = users[ug == g]
        out["users"].append(
            {
                "group": label,
                "count": int(len(sel)),
                **{m: (float(v[sel].mean()) if len(sel) else None) for m, v in per_user.items()},
            }
        )
    pair_items = t_pairs[:, 1]
    n_pairs_item = np.bincount(pair_items, minlength=split.n_items)
    items = np.flatnonzero(n_pairs_item > 0)
    ig = group_of(split.item_frequency()[items], edges)
    item_values = {
        m: np.bincount(pair_items, weights=v[t_pairs[:, 0]], minlength=split.n_items)[items]
        / n_pairs_item[items]
        for m, v in per_user.items()
    }
    for g, label in enumerate(labels):
        sel = ig == g
        out["items"].append(
            {
                "group": label,
                "count": int(sel.sum()),
                **{
                    m: (float(v[sel].mean()) if sel.any() else None) for m, v in item_values.items()
                },
            }
        )
    return out
