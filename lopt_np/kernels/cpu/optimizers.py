"""Θ updates fused with the penalty gradient (SPEC §3-4), Numba CPU, parallel over rows.

One pass per table: ``d = g + 2 w_r Λ_{r,k} T_{r,k}`` (w_r = 1 for the ``full`` scope,
c_r/|B| for ``batch``), then the SGD or dense-Adam update; the pass also clears the gradient
buffer and the row counts for the next step. Dense Adam decays every element's moments every
step, as ``math.optimizers.adam_step`` (the exact mode of SPEC §4).
"""
from numba import prange

from ._jit import adam_moments, adam_update as _adam, penalty_grad, pjit, sgd_update as _sgd


@pjit
def adam_update(T, m, v, g, count, lam, inv_batch, full_scope, alpha, beta1, beta2, eps):
    """In place: T, m, v ← Adam(T, m, v, d) with d = g + ∂Ω/∂T; then g ← 0, count ← 0."""
    K = T.shape[1]
    row_mask = 1 if lam.shape[0] > 1 else 0
    col_mask = 1 if lam.shape[1] > 1 else 0
    for r in prange(T.shape[0]):
        w = T.dtype.type(1.0) if full_scope else count[r] * inv_batch
        lr_row = r * row_mask
        for k in range(K):
            d = g[r, k] + penalty_grad(w, lam[lr_row, k * col_mask], T[r, k])
            m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2)
            T[r, k] = _adam(T[r, k], m2, v2, alpha, eps)
            m[r, k] = m2
            v[r, k] = v2
            g[r, k] = 0.0
        count[r] = 0


@pjit
def sgd_update(T, g, count, lam, inv_batch, full_scope, lr):
    """In place: T ← T − η d with d = g + ∂Ω/∂T; then g ← 0, count ← 0."""
    K = T.shape[1]
    row_mask = 1 if lam.shape[0] > 1 else 0
    col_mask = 1 if lam.shape[1] > 1 else 0
    for r in prange(T.shape[0]):
        if not full_scope and count[r] == 0:
            continue  # batch scope, row not in the batch: g and d are exactly 0
        w = T.dtype.type(1.0) if full_scope else count[r] * inv_batch
        lr_row = r * row_mask
        for k in range(K):
            d = g[r, k] + penalty_grad(w, lam[lr_row, k * col_mask], T[r, k])
            T[r, k] = _sgd(T[r, k], d, lr)
            g[r, k] = 0.0
        count[r] = 0
