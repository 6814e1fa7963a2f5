"""Implicit feedback, the record filter and the per-user chronological split (SPEC §7).

- Every record is a positive; duplicates of a (user, item) pair collapse into one interaction
  (its earliest timestamp) and are counted.
- Filter: keep items with at least ``min_count`` interactions, then users with at least
  ``min_count`` (the authors' single pass); ``kcore=True`` repeats until stable.
- Split each user's interactions by time (ties: original order): the latest
  ``⌊test·n⌋`` are test, the latest ``⌊valid/(1−test)·rest⌋`` of the rest validation, the
  remainder train. Rounding down is the authors' code's rule: it reproduces their counts on
  ml-1m-u2999 exactly (294,413 / 96,914 / 96,323), and a user with n = 20 gets 12/4/4, n = 7
  gets 5/1/1. A history shorter than ⌈1/test⌉ (5) has no test item, which is an error.
"""

import hashlib
import json
import os
import warnings

import numpy as np

from ..errors import DataError
from .split import Split, plain_ids


SPLITS = ("auto", "time", "random", "leave-last-out")


def collapse_duplicates(df):
    """One row per (user, item) with its earliest timestamp (without timestamps: its first
    record), first position and record count."""
    df = df.assign(_pos=np.arange(len(df)))
    if "timestamp" not in df.columns:
        df = df.assign(timestamp=df["_pos"])
    g = df.sort_values(["timestamp", "_pos"], kind="stable").groupby(["user", "item"], sort=False)
    out = g.agg(
        timestamp=("timestamp", "first"), _pos=("_pos", "first"), count=("timestamp", "size")
    ).reset_index()
    return out.sort_values("_pos", kind="stable").reset_index(drop=True)


def filter_records(df, min_count=20, kcore=False):
    """Apply the SPEC §7 filter; returns ``(df, rounds)``."""
    if min_count <= 1:
        return df, 0
    rounds = 0
    while True:
        rounds += 1
        n0 = len(df)
        item_n = df["item"].map(df["item"].value_counts())
        df = df[item_n >= min_count]
        user_n = df["user"].map(df["user"].value_counts())
        df = df[user_n >= min_count]
        if not kcore or len(df) == n0 or len(df) == 0:
            return df.reset_index(drop=True), rounds


# Bump when the split rule changes, so cached splits of the old rule are not reused.
SPLIT_RULE = "floor-v3"


def round_down(x):
    """⌊x⌋ with a tolerance of 1e-9, so that 0.2·20 = 4 even where binary floating point gives
    3.9999…"""
    return np.floor(np.asarray(x) + 1e-9).astype(np.int64)


def chronological_split(df, valid_frac=0.2, test_frac=0.2, leave_last_out=False):
    """Per-user split of a collapsed, filtered, densely indexed frame (columns u, i, timestamp,
    _pos; ``timestamp`` is any sort key: times, or a random draw for a random split); returns
    the three (n, 2) pair arrays. Each user's latest ⌊test·n⌋ interactions are test and the
    latest ⌊valid/(1−test)·rest⌋ of the rest validation; ``leave_last_out``: the latest one is
    test and the one before it validation. A history too short for a test item stays in
    training (such users are not evaluated)."""
    if not leave_last_out and not (
        0 < test_frac < 1 and 0 < valid_frac < 1 and valid_frac + test_frac < 1
    ):
        raise DataError(
            f"invalid split fractions valid={valid_frac}, test={test_frac}: each must "
            f"be in (0, 1) and together below 1"
        )
    df = df.sort_values(["u", "timestamp", "_pos"], kind="stable")
    u = df["u"].to_numpy()
    n_per_user = np.bincount(u)
    n = n_per_user[u]
    rank = np.arange(len(u)) - np.repeat(np.cumsum(n_per_user) - n_per_user, n_per_user)
    if leave_last_out:
        n_test = (n >= 3).astype(np.int64)
        n_valid = n_test
    else:
        n_test = round_down(n * test_frac)
        n_valid = round_down((n - n_test) * valid_frac / (1.0 - test_frac))
    part = np.where(rank >= n - n_test, 2, np.where(rank >= n - n_test - n_valid, 1, 0))
    pairs = np.stack([u, df["i"].to_numpy()], axis=1).astype(np.int64)
    if not (part == 2).any():
        raise DataError(
            f"no user has a history long enough for a test item (the longest has "
            f"{int(n_per_user.max())} interaction(s))"
        )
    return pairs[part == 0], pairs[part == 1], pairs[part == 2]


def dense_ids(values):
    """``(ids, index)``: the distinct ids in the order of their string form (so that the same
    ids get the same dense indices whether they arrive as strings or integers), each in its
    original type, and every record's dense index."""
    keys = values.astype(str)
    _, first, index = np.unique(keys, return_index=True, return_inverse=True)
    return plain_ids(values[first]), index


def build_split(
    df, min_count=0, kcore=False, valid_frac=0.2, test_frac=0.2, split="auto", split_seed=0
):
    """Standardized interactions (``loaders.standardize``) → :class:`Split` (SPEC §7), with a
    summary in ``info``: records read, duplicates collapsed, what the filter dropped, which
    split ran. ``split``: ``time`` (needs timestamps), ``random`` (each user's interactions in
    a random order drawn from ``split_seed``), ``leave-last-out`` (by time, else by order in the
    data), ``auto``: time when there are timestamps, else random."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    timed = "timestamp" in df.columns
    if split == "auto":
        split = "time" if timed else "random"
    if split == "time" and not timed:
        raise DataError(
            "a split by time needs timestamps; the data has none (use split "
            "random or leave-last-out)"
        )
    n_records = len(df)
    df = collapse_duplicates(df)
    n_duplicates = n_records - len(df)
    n_users0, n_items0 = df["user"].nunique(), df["item"].nunique()
    n_collapsed = len(df)
    df, rounds = filter_records(df, min_count, kcore)
    if len(df) == 0:
        raise DataError(
            f"no interactions left after keeping users and items with at least "
            f"{min_count} records; lower --min-count"
        )
    users, u = dense_ids(df["user"].to_numpy())
    items, i = dense_ids(df["item"].to_numpy())
    df = df.assign(u=u, i=i)
    if split == "random":
        df = df.assign(timestamp=np.random.default_rng(split_seed).permutation(len(df)))
    train, valid, test = chronological_split(
        df, valid_frac, test_frac, leave_last_out=split == "leave-last-out"
    )
    seen = np.bincount(np.concatenate([train, valid, test])[:, 0], minlength=len(users))
    if (seen >= len(items)).any():
        raise DataError("a user has interacted with every item: no negatives can be sampled")
    if split == "leave-last-out":
        how = "leave-last-out " + ("by time" if timed else "by order in the data")
    else:
        how = f"{1 - valid_frac - test_frac:.0%}/{valid_frac:.0%}/{test_frac:.0%} " + (
            "by time" if split == "time" else f"in random order (seed {split_seed})"
        )
    info = {
        "records": n_records,
        "duplicates_collapsed": n_duplicates,
        "min_count": min_count,
        "filter": ("k-core" if kcore else "single pass") if min_count > 1 else "none",
        "filter_rounds": rounds,
        "dropped_interactions": n_collapsed - len(df),
        "dropped_users": n_users0 - len(users),
        "dropped_items": n_items0 - len(items),
        "users_without_test": int(len(users) - len(np.unique(test[:, 0]))),
        "split": how,
        "timestamps": timed,
    }
    return Split(len(users), len(items), train, valid, test, users, items, info)


def _file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class CacheWarning(UserWarning):
    """A cache entry could not be used and was rebuilt."""


def cache_dir():
    return os.environ.get(
        "LOPT_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "lopt_np")
    )


def load_split(path, options, loader, use_cache=True, reader=None):
    """The split of ``path`` under ``options`` (:func:`build_split`'s keyword arguments), from the
    on-disk cache keyed by the file's content hash, the options and ``reader`` (a JSON-able
    description of how ``loader`` reads the file) when possible, else built by ``loader()`` and
    :func:`build_split` and cached. ``info['cached']`` says which happened."""
    if not os.path.isfile(path):
        raise DataError(f"data file not found: {path}")
    key = hashlib.sha256(
        (_file_digest(path) + json.dumps([options, reader, SPLIT_RULE], sort_keys=True)).encode()
    ).hexdigest()[:24]
    cached = os.path.join(cache_dir(), f"split-{key}.npz")
    meta = cached[:-4] + ".json"
    if use_cache and os.path.exists(cached) and os.path.exists(meta):
        try:
            with open(meta) as fh:
                info = json.load(fh)
            if not isinstance(info, dict):
                raise ValueError("its description is not a JSON object")
            return Split.load(cached, {**info, "cached": True})
        except (DataError, ValueError, OSError) as exc:
            warnings.warn(
                f"the cached split {cached} is damaged ({str(exc)[:200]}); rebuilding it",
                CacheWarning,
                stacklevel=2,
            )
    split = build_split(loader(), **options)
    if use_cache:
        try:
            os.makedirs(cache_dir(), exist_ok=True)
            tmp = cached + f".{os.getpid()}.tmp.npz"
            split.save(tmp)
            with open(meta, "w") as fh:
                json.dump(split.info, fh)
            os.replace(tmp, cached)
        except OSError:
            pass  # caching is an optimization; an unwritable cache is not an error
    split.info["cached"] = False
    return split
