"""The embedded default dataset: synthetic long-tailed implicit feedback, deterministic per seed.

User activity follows a power law (Pareto tail above a floor), item popularity a Zipf law, and
each user picks items by popularity × a low-rank latent preference (Gumbel top-k sampling without
replacement). Timestamps increase along each user's history, with a slow drift of the user's
taste so that a chronological split is a real forecasting task.
"""
import numpy as np
import pandas as pd


def synthetic_interactions(n_users=2000, n_items=1500, min_activity=20, activity_alpha=1.6,
                           max_activity=400, popularity_exponent=0.9, rank=8,
                           preference_scale=2.0, seed=0):
    """A DataFrame with string columns ``user``, ``item`` and int64 ``timestamp``."""
    rng = np.random.default_rng(seed)
    activity = np.minimum(min_activity * (1.0 + rng.pareto(activity_alpha, n_users)),
                          min(max_activity, n_items // 2)).astype(np.int64)
    popularity = 1.0 / np.arange(1, n_items + 1) ** popularity_exponent
    popularity = popularity[rng.permutation(n_items)]
    log_pop = np.log(popularity / popularity.sum())
    U = rng.normal(0, 1 / np.sqrt(rank), (n_users, rank))
    V = rng.normal(0, 1 / np.sqrt(rank), (n_items, rank))
    drift = rng.normal(0, 0.3 / np.sqrt(rank), (n_users, rank))
    users, items, times = [], [], []
    for u in range(n_users):
        n = activity[u]
        # early and late halves of the history see a slightly different taste
        for half, (lo, hi) in enumerate(((0, n // 2), (n // 2, n))):
            taste = U[u] + drift[u] * half
            logits = log_pop + preference_scale * V @ taste
            logits = logits + rng.gumbel(size=n_items)
            if half == 1:
                logits[items_u] = -np.inf
            chosen = np.argpartition(-logits, hi - lo)[: hi - lo]
            items_u = chosen if half == 0 else np.concatenate([items_u, chosen])
        start = rng.integers(1_000_000_000, 1_200_000_000)
        t = start + np.cumsum(rng.integers(60, 86_400, n))
        users.append(np.full(n, u))
        items.append(items_u)
        times.append(t)
    users = np.concatenate(users)
    items = np.concatenate(items)
    order = rng.permutation(len(users))  # records arrive in no particular order
    return pd.DataFrame({"user": np.char.add("u", users[order].astype(str)),
                         "item": np.char.add("i", items[order].astype(str)),
                         "timestamp": np.concatenate(times)[order].astype(np.int64)})
