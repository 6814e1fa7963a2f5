"""BPR forward and backward on a batch (SPEC §2), Numba CUDA; mirrors ``kernels.cpu.bpr``.

Rows are addressed through the same slot maps as on the CPU (``src[r]``: row of the source
array holding table row r; ``dst[r]``: row of the gradient buffer, −1 skipped). The scatter runs
one thread per (triplet, column) and accumulates with atomic adds, so repeated rows lose no
update.
"""

import numpy as np
from numba import cuda

from ._jit import bpr_delta as _delta, bpr_margin, kernel, launch, softplus, triplet_touches


@kernel
def _bpr_forward(P, Q, srcP, srcQ, users, pos, neg, dstP, dstQ, delta, loss):
    b = cuda.grid(1)
    if b < users.shape[0]:
        if triplet_touches(dstP, dstQ, users[b], pos[b], neg[b]):
            x = bpr_margin(P, srcP[users[b]], Q, srcQ[pos[b]], srcQ[neg[b]])
            delta[b] = _delta(x)
            loss[b] = softplus(-x)
        else:
            delta[b] = delta.dtype.type(0.0)
            loss[b] = loss.dtype.type(0.0)


def bpr_forward(P, Q, srcP, srcQ, users, pos, neg, dstP, dstQ, delta, loss):
    """``delta[b] = σ(x_uij) − 1`` and ``loss[b] = softplus(−x_uij)`` for every triplet that
    touches a row of ``dstP``/``dstQ`` (0 for the others), one thread per triplet."""
    _bpr_forward[launch(users.shape[0])](P, Q, srcP, srcQ, users, pos, neg, dstP, dstQ, delta, loss)


@kernel
def _bpr_grad_scatter(
    P, Q, srcP, srcQ, users, pos, neg, delta, scale, dstP, dstQ, gP, gQ, countP, countQ, count_rows
):
    K = P.shape[1]
    e = cuda.grid(1)
    if e < users.shape[0] * K:
        b = e // K
        k = e - b * K
        coef = scale * delta[b]
        u = users[b]
        i = pos[b]
        j = neg[b]
        pu = srcP[u]
        du = dstP[u]
        di = dstQ[i]
        dj = dstQ[j]
        if du >= 0:
            cuda.atomic.add(gP, (du, k), coef * (Q[srcQ[i], k] - Q[srcQ[j], k]))
        if di >= 0:
            cuda.atomic.add(gQ, (di, k), coef * P[pu, k])
        if dj >= 0:
            cuda.atomic.add(gQ, (dj, k), -(coef * P[pu, k]))
        if count_rows and k == 0:
            if du >= 0:
                cuda.atomic.add(countP, du, 1)
            if di >= 0:
                cuda.atomic.add(countQ, di, 1)
            if dj >= 0:
                cuda.atomic.add(countQ, dj, 1)


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
    occurrence counts c_r of the batch scope (SPEC §2-3). One thread per (triplet, column), so
    ``nblocks`` (the CPU's column blocks, one per thread) is not used."""
    _bpr_grad_scatter[launch(users.shape[0] * P.shape[1])](
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
    )


@kernel
def _batch_sum(x, out, slot):
    b = cuda.grid(1)
    if b < x.shape[0]:
        cuda.atomic.add(out, slot, np.float64(x[b]))


def batch_sum(x, out, slot):
    """``out[slot] += Σ_b x[b]`` in float64 (atomic adds: the order, and so the last bits,
    vary from run to run). ``out`` is a float64 device array."""
    _batch_sum[launch(x.shape[0])](x, out, slot)
