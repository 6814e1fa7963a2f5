"""Negative sampling for BPR triplets (SPEC §7), Numba CPU, parallel and reproducible.

Each draw comes from a counter-based hash (SplitMix64 of ``seed``, the triplet's index and the
attempt number), so the result is the same for any thread count and on every backend.
A negative j is drawn uniformly from all items and redrawn while it is in the user's excluded
set. The excluded sets are each user's sorted item list (``indptr``/``indices``, a CSR array)
and, where it is small enough to build (``lopt_np.sampling.BITMAP_MAX_BYTES``), the same sets
as a bitmap (``bits[u, j >> 6]`` bit ``j & 63``): one load per test instead of a binary
search, 7× faster at MovieLens-1M shape. Both tests are exact, so both give the same draws.
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
def excluded_bitmap(indptr, indices, bits):
    """Fill ``bits`` (zeros, ``n_users × ⌈n_items/64⌉`` uint64) from the CSR excluded sets."""
    for u in prange(indptr.shape[0] - 1):
        for p in range(indptr[u], indptr[u + 1]):
            j = indices[p]
            bits[u, j >> 6] |= np.uint64(1) << np.uint64(j & 63)


@pjit
def sample_negatives(users, indptr, indices, bits, n_items, seed, out):
    """``out[b]``: an item uniformly drawn among those user ``users[b]`` is not excluded from.
    ``bits`` with no columns: test membership by binary search in the CSR lists instead."""
    base = splitmix64(np.uint64(seed))
    n = np.uint64(n_items)
    use_bits = bits.shape[1] > 0
    one = np.uint64(1)
    for b in prange(users.shape[0]):
        u = users[b]
        lo = indptr[u]
        hi = indptr[u + 1]
        key = splitmix64(base ^ (np.uint64(b) * _GOLDEN))
        while True:
            key = splitmix64(key)
            j = np.int64(key % n)
            if use_bits:
                excluded = (bits[u, j >> 6] >> np.uint64(j & 63)) & one
            else:
                excluded = sorted_contains(indices, lo, hi, j)
            if not excluded:
                out[b] = j
                break


@pjit
def gather_pairs(pairs, order, users, pos):
    """``users[b], pos[b] = pairs[order[b]]`` (one parallel pass, instead of two strided
    NumPy gathers of 13 ms each per million pairs)."""
    for b in prange(order.shape[0]):
        r = order[b]
        users[b] = pairs[r, 0]
        pos[b] = pairs[r, 1]
