"""λOpt lookahead and hypergradient on the rows the validation batch touches (SPEC §5.4),
Numba CPU. Mirrors ``math.hypergradient``; the host orchestration of one lookahead lives in
``lopt_np.backends`` and calls these kernels in SPEC §5's order.

The touched rows of a table are *held* in compact buffers: ``held[s]`` is the table row in
buffer row s and ``slot[r]`` the buffer row of table row r (−1 when not held).
"""
from numba import prange

from ._jit import (adam_jacobian, adam_moments, adam_update, jit, penalty_grad,
                   penalty_grad_lambda, pjit, sgd_update)


@jit
def hold_rows(rows, slot, held, n_held):
    """Give every not-yet-held row in ``rows`` a buffer slot; returns the new ``n_held``."""
    for b in range(rows.shape[0]):
        r = rows[b]
        if slot[r] < 0:
            slot[r] = n_held
            held[n_held] = r
            n_held += 1
    return n_held


@jit
def release_rows(slot, held, n_held):
    """Reset the slot map of the held rows to −1 (ready for the next step)."""
    for s in range(n_held):
        slot[held[s]] = -1


@pjit
def zero_rows(buffers_2d, counts, n_held):
    """Clear the first ``n_held`` rows of a 3-D stack of compact buffers and of the counts."""
    for s in prange(n_held):
        for a in range(buffers_2d.shape[0]):
            for k in range(buffers_2d.shape[2]):
                buffers_2d[a, s, k] = 0.0
        counts[s] = 0


@pjit
def lookahead_rows(T, m, v, gbar, count, held, n_held, lam, inv_batch, full_scope, use_adam,
                   alpha, lr, beta1, beta2, eps, Tbar, dTbar_dlam):
    """For every held row: ``T̄ = f(T, ḡ + ∂Ω/∂T)`` and ``∂T̄/∂Λ = ∂T̄/∂d · 2 w T`` (SPEC §5)."""
    K = T.shape[1]
    row_mask = 1 if lam.shape[0] > 1 else 0
    col_mask = 1 if lam.shape[1] > 1 else 0
    for s in prange(n_held):
        r = held[s]
        w = T.dtype.type(1.0) if full_scope else count[s] * inv_batch
        for k in range(K):
            t_rk = T[r, k]
            d = gbar[s, k] + penalty_grad(w, lam[r * row_mask, k * col_mask], t_rk)
            if use_adam:
                m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2)
                Tbar[s, k] = adam_update(t_rk, m2, v2, alpha, eps)
                jac = adam_jacobian(m2, v2, d, alpha, beta1, beta2, eps)
            else:
                Tbar[s, k] = sgd_update(t_rk, d, lr)
                jac = -lr
            dTbar_dlam[s, k] = jac * penalty_grad_lambda(w, t_rk)


@pjit
def accumulate_lambda_grad(Gbar, dTbar_dlam, held, n_held, G_lam):
    """``G_Λ += reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ)`` over held rows, summed over the axes Λ is broadcast
    across (``math.hypergradient.reduce_to_shape``). Each output element has one writer."""
    K = Gbar.shape[1]
    per_row = G_lam.shape[0] > 1
    per_dim = G_lam.shape[1] > 1
    if per_row:
        for s in prange(n_held):
            r = held[s]
            if per_dim:
                for k in range(K):
                    G_lam[r, k] += Gbar[s, k] * dTbar_dlam[s, k]
            else:
                acc = 0.0
                for k in range(K):
                    acc += Gbar[s, k] * dTbar_dlam[s, k]
                G_lam[r, 0] += acc
    elif per_dim:
        for k in prange(K):
            acc = 0.0
            for s in range(n_held):
                acc += Gbar[s, k] * dTbar_dlam[s, k]
            G_lam[0, k] += acc
    else:
        acc = 0.0
        for s in range(n_held):
            for k in range(K):
                acc += Gbar[s, k] * dTbar_dlam[s, k]
        G_lam[0, 0] += acc
