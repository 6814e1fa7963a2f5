"""The train/validation/test split every trainer and evaluator works on (SPEC §7)."""

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from ..errors import NPZ_READ_ERRORS, DataError

SPLIT_NAMES = ("train", "valid", "test")
EMPTY_PAIRS = np.zeros((0, 2), np.int64)


def pairs_to_csr(pairs, n_users):
    """``(indptr, items, sorted_pairs)``: each user's items, sorted, as compressed rows."""
    pairs = np.asarray(pairs, dtype=np.int64)
    n_items = int(pairs[:, 1].max()) + 1 if len(pairs) else 1
    codes = np.sort(pairs[:, 0] * n_items + pairs[:, 1])  # by user, then item
    pairs = np.stack([codes // n_items, codes % n_items], axis=1)
    indptr = np.zeros(n_users + 1, np.int64)
    np.cumsum(np.bincount(pairs[:, 0], minlength=n_users), out=indptr[1:])
    return indptr, np.ascontiguousarray(pairs[:, 1], dtype=np.int64), pairs


def plain_ids(ids):
    """Original ids as an array ``np.load`` reads without pickle: int64 when every id is an
    integer, else strings."""
    ids = np.asarray(ids)
    if ids.dtype.kind in "iub":
        return ids.astype(np.int64)
    return ids.astype(str)


@dataclass
class Split:
    """Dense user/item indices: ``train``, ``valid``, ``test`` are (n, 2) int64 arrays of
    (user, item) pairs; ``user_ids`` / ``item_ids`` map dense indices back to original ids.
    ``selection``: validation interactions held out from Λ for model selection (SPEC §8; empty
    unless :func:`hold_out_selection` made them)."""

    n_users: int
    n_items: int
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    user_ids: np.ndarray
    item_ids: np.ndarray
    info: dict = field(default_factory=dict)
    selection: np.ndarray = field(default_factory=lambda: EMPTY_PAIRS)

    def csr(self, parts=SPLIT_NAMES + ("selection",)):
        """``(indptr, indices)`` of each user's items in the given parts (default: all of them),
        sorted per user."""
        pairs = np.concatenate([getattr(self, p) for p in parts])
        return pairs_to_csr(pairs, self.n_users)[:2]

    def user_frequency(self):
        """Training interactions per user (Figure 6-8 grouping)."""
        return np.bincount(self.train[:, 0], minlength=self.n_users)

    def item_frequency(self):
        """Training interactions per item."""
        return np.bincount(self.train[:, 1], minlength=self.n_items)

    def summary(self):
        """Table-1-like counts of the split."""
        n = len(self.train) + len(self.valid) + len(self.test) + len(self.selection)
        return {
            "users": self.n_users,
            "items": self.n_items,
            "interactions": n,
            "density": n / float(self.n_users * self.n_items),
            "train": len(self.train),
            "valid": len(self.valid),
            "test": len(self.test),
            **({"selection": len(self.selection)} if len(self.selection) else {}),
            **self.info,
        }

    def save(self, path):
        """Write ``split.npz`` (plain arrays; readable without lopt_np)."""
        np.savez_compressed(
            path,
            train=self.train,
            valid=self.valid,
            test=self.test,
            user_ids=plain_ids(self.user_ids),
            item_ids=plain_ids(self.item_ids),
            n_users=self.n_users,
            n_items=self.n_items,
        )

    def validate(self, source="the split"):
        """Shapes, dtypes and index ranges; a :class:`DataError` naming the first problem
        (a Numba kernel fed an out-of-range index would read and write out of bounds)."""
        if len(self.user_ids) != self.n_users or len(self.item_ids) != self.n_items:
            raise DataError(
                f"{source}: {len(self.user_ids)} user ids for {self.n_users} users, "
                f"{len(self.item_ids)} item ids for {self.n_items} items"
            )
        for part in SPLIT_NAMES + ("selection",):
            pairs = getattr(self, part)
            if pairs.ndim != 2 or pairs.shape[1] != 2 or pairs.dtype.kind not in "iu":
                raise DataError(
                    f"{source}: {part} is not an (n, 2) integer array of (user, item) pairs"
                )
            if len(pairs) == 0:
                continue
            low, high = pairs.min(axis=0), pairs.max(axis=0)
            if low.min() < 0 or high[0] >= self.n_users or high[1] >= self.n_items:
                raise DataError(f"{source}: {part} holds user or item indices out of range")
        return self

    @classmethod
    def load(cls, path, info=None):
        """The split saved in ``path``, validated; any problem is one :class:`DataError`."""
        try:
            with np.load(path, allow_pickle=False) as z:
                split = cls(
                    int(z["n_users"]),
                    int(z["n_items"]),
                    z["train"].astype(np.int64),
                    z["valid"].astype(np.int64),
                    z["test"].astype(np.int64),
                    z["user_ids"],
                    z["item_ids"],
                    dict(info or {}),
                )
        except (KeyError, *NPZ_READ_ERRORS) as exc:
            raise DataError(
                f"cannot read split file {path} (damaged or not a split): {exc}"
            ) from None
        return split.validate(str(path))


def hold_out_selection(split, fraction):
    """A copy of ``split`` whose ``selection`` holds ⌊fraction·n⌋ of each user's n validation
    interactions, evenly spaced in time order (the validation pairs are stored by user and time),
    and whose ``valid`` keeps the rest: Λ is fitted on ``valid``, early stopping and model
    selection use ``selection`` (SPEC §8). ``fraction`` 0 returns ``split`` itself."""
    if fraction <= 0 or len(split.valid) == 0:
        return split
    users = split.valid[:, 0]
    counts = np.bincount(users, minlength=split.n_users)
    starts = np.cumsum(counts) - counts
    order = np.argsort(users, kind="stable")
    rank = np.empty(len(users), np.int64)
    rank[order] = np.arange(len(users)) - np.repeat(starts, counts)
    # position r is held out where ⌊(r+1)·f⌋ steps up: ⌊n·f⌋ of n, spread evenly
    held = np.floor((rank + 1) * fraction + 1e-9) > np.floor(rank * fraction + 1e-9)
    out = dataclasses.replace(
        split, valid=split.valid[~held], selection=split.valid[held], info=dict(split.info)
    )
    out.info["selection_fraction"] = fraction
    return out


def selection_target(split, target, selection_frac):
    """``(split, target)`` to evaluate "valid" on the held-out selection slice (SPEC §8)."""
    if target != "valid" or not selection_frac:
        return split, target
    split = split if len(split.selection) else hold_out_selection(split, selection_frac)
    return split, "selection" if len(split.selection) else "valid"
