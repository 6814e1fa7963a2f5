"""Negative sampling for BPR triplets (SPEC §7), Numba CPU, parallel and reproducible.

Each draw comes from a counter-based hash (SplitMix64 of ``seed``, the triplet's index and the
attempt number), so the result is the same for any thread count and on every backend.
A negative j is drawn uniformly from all items and redrawn while it is in the user's excluded
set (``indptr``/``indices``: each user's sorted item list).
"""
import numpy as np
from numba import prange

from ._jit import jit, pjit, sorted_contains

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@jit
def splitmix64(z):
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


@pjit
def sample_negatives(users, indptr, indices, n_items, seed, out):
    """``out[b]``: an item uniformly drawn among those user ``users[b]`` is not excluded from."""
    base = splitmix64(np.uint64(seed))
    n = np.uint64(n_items)
    for b in prange(users.shape[0]):
        u = users[b]
        lo = indptr[u]
        hi = indptr[u + 1]
        key = splitmix64(base ^ (np.uint64(b) * _GOLDEN))
        while True:
            key = splitmix64(key)
            j = np.int64(key % n)
            if not sorted_contains(indices, lo, hi, j):
                out[b] = j
                break
