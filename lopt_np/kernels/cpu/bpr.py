"""BPR forward and backward on a batch (SPEC §2), Numba CPU.

Rows are addressed through *slot maps*: ``src[r]`` is the row of the source array that holds
table row r and ``dst[r]`` the row of the gradient buffer it accumulates into (−1: skipped).
With identity maps this is the dense gradient of ``math.bpr.bpr_grad``; with the lookahead's
compact maps it touches only the rows the validation batch touches (SPEC §5.4).

Race freedom: the scatter splits the K columns among threads and every thread walks the whole
batch in order, so repeated rows lose no update and the sums are identical for any thread count.
The margin's dot product may be reassociated (``fast_reduction``: vectorized partial sums), the
same way on every thread, so it too does not depend on the thread count.
"""

import numba
import numpy as np
from numba import prange

from ._jit import bpr_delta as _delta, bpr_margin, jit, pjit, softplus, triplet_touches


@pjit
def bpr_forward(P, Q, srcP, srcQ, users, pos, neg, dstP, dstQ, delta, loss):
    """``delta[b] = σ(x_uij) − 1`` and ``loss[b] = softplus(−x_uij)`` for every triplet that
    touches a row of the gradient maps ``dstP``/``dstQ`` (an entry ≥ 0); 0 for the others,
    whose gradient a scatter into those maps drops anyway (:func:`triplet_touches`)."""
    zero = delta.dtype.type(0.0)
    for b in prange(users.shape[0]):
        if triplet_touches(dstP, dstQ, users[b], pos[b], neg[b]):
            x = bpr_margin(P, srcP[users[b]], Q, srcQ[pos[b]], srcQ[neg[b]])
            delta[b] = _delta(x)
            loss[b] = softplus(-x)
        else:
            delta[b] = zero
            loss[b] = zero


@pjit
def bpr_grad_scatter(
    P,
    Q,
    srcP,
    srcQ,
    users,
    pos,
    neg,
    delta,
    scale,
    dstP,
    dstQ,
    gP,
    gQ,
    countP,
    countQ,
    count_rows,
    nblocks,
):
    """``g += scale·δ_b·(∂x_uij/∂Θ)`` for every triplet; with ``count_rows`` also the row
    occurrence counts c_r of the batch scope (SPEC §2-3). ``nblocks`` column blocks run in
    parallel (any value gives the same sums; :func:`column_blocks` picks one per thread)."""
    K = P.shape[1]
    nblocks = max(1, min(K, nblocks))
    for c in prange(nblocks):
        # unsigned column bounds: Numba then emits no negative-index wrap-around in the
        # inner loops, which LLVM can vectorize (3-4× faster)
        k0 = np.uint64(c * K // nblocks)
        k1 = np.uint64((c + 1) * K // nblocks)
        for b in range(users.shape[0]):
            u = users[b]
            i = pos[b]
            j = neg[b]
            coef = scale * delta[b]
            pu = srcP[u]
            qi = srcQ[i]
            qj = srcQ[j]
            du = dstP[u]
            di = dstQ[i]
            dj = dstQ[j]
            if du >= 0:
                for k in range(k0, k1):
                    gP[du, k] += coef * (Q[qi, k] - Q[qj, k])
            if di >= 0:
                for k in range(k0, k1):
                    gQ[di, k] += coef * P[pu, k]
            if dj >= 0:
                for k in range(k0, k1):
                    gQ[dj, k] -= coef * P[pu, k]
            if count_rows and c == 0:
                if du >= 0:
                    countP[du] += 1
                if di >= 0:
                    countQ[di] += 1
                if dj >= 0:
                    countQ[dj] += 1


def column_blocks():
    """One column block per Numba thread."""
    return numba.get_num_threads()


@jit
def sum_in_order(x):
    """Sequential sum (the same result for any thread count)."""
    s = 0.0
    for b in range(x.shape[0]):
        s += x[b]
    return s
