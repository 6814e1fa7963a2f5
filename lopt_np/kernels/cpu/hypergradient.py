"""λOpt lookahead and hypergradient on the rows the validation batch touches (SPEC §5.4),
Numba CPU. Mirrors ``math.hypergradient``; ``kernels.step_order`` calls these
kernels in SPEC §5's order.

The touched rows of a table are *held* in compact buffers: ``held[s]`` is the table row in
buffer row s and ``slot[r]`` the buffer row of table row r (−1 when not held).
"""

from numba import prange

from .. import LAZY_ADAM, SGD
from ._jit import (
    adam_jacobian,
    adam_moments,
    adam_update,
    by_lambda_layout,
    lambda_entry,
    jit,
    penalty_grad,
    penalty_grad_lambda,
    pjit,
    row_weight,
    sgd_update,
)


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
def hold_in_table_order(first, second, slot, held):
    """Hold the rows of two index arrays (:func:`hold_rows`), then number the held rows in
    table order (``held[:n]`` sorted, ``slot`` to match) by a scan of the slot map, which stops
    at the last held row; returns ``n_held``. The kernels that visit held rows (lookahead rows,
    lazy Adam, SGD) then read the tables at increasing addresses, which the hardware prefetches
    (docs/performance.rst, "Held rows in table order")."""
    n = hold_rows(second, slot, held, hold_rows(first, slot, held, 0))
    s = 0
    for r in range(slot.shape[0]):
        if s == n:
            break
        if slot[r] >= 0:
            held[s] = r
            slot[r] = s
            s += 1
    return n


@jit
def release_rows(slot, held, n_held):
    """Reset the slot map of the held rows to −1 (ready for the next step)."""
    for s in range(n_held):
        slot[held[s]] = -1


@pjit
def zero_rows(buffers, counts, n_held):
    """Clear the first ``n_held`` rows of a 3-D stack of compact buffers and of the counts."""
    zero = buffers.dtype.type(0.0)
    for s in prange(n_held):
        for a in range(buffers.shape[0]):
            for k in range(buffers.shape[2]):
                buffers[a, s, k] = zero
        counts[s] = 0


def _lookahead_rows(per_row, per_dim):
    """For every held row: ``T̄ = f(T, ḡ + ∂Ω/∂T)`` and ``∂T̄/∂Λ = ∂T̄/∂d · 2 w T`` (SPEC §5).
    ``optimizer``: a code of ``lopt_np.kernels.OPTIMIZER_CODES``; lazy Adam leaves rows that
    B̄ does not touch (count 0) where they are, so their ∂T̄/∂Λ is 0.

    ``assumed_penalty``: ḡ also holds B̄'s batch-scope penalty 2 (c_r/|B̄|) Λ T, a constant for
    ∂T̄/∂Λ (SPEC §8); ``full_scope``: the lookahead's own penalty term has weight 1.

    ``lookahead_rows(T, m, v, gbar, count, held, n_held, lam, inv_batch, full_scope,
    assumed_penalty, optimizer, alpha, lr, beta1, beta2, c1, c2, eps_in, eps_out, Tbar,
    dTbar_dlam)``"""

    @pjit
    def lookahead_rows(
        T,
        m,
        v,
        gbar,
        count,
        held,
        n_held,
        lam,
        inv_batch,
        full_scope,
        assumed_penalty,
        optimizer,
        alpha,
        lr,
        beta1,
        beta2,
        c1,
        c2,
        eps_in,
        eps_out,
        Tbar,
        dTbar_dlam,
    ):
        K = T.shape[1]
        zero = T.dtype.type(0.0)
        for s in prange(n_held):
            r = held[s]
            w = row_weight(T, count, s, inv_batch, full_scope)
            w_assumed = row_weight(T, count, s, inv_batch, False) if assumed_penalty else zero
            if optimizer == LAZY_ADAM and count[s] == 0:
                for k in range(K):
                    Tbar[s, k] = T[r, k]
                    dTbar_dlam[s, k] = zero
            elif optimizer == SGD:
                for k in range(K):
                    t_rk = T[r, k]
                    lam_rk = lambda_entry(lam, r, k, per_row, per_dim)
                    d = (
                        gbar[s, k]
                        + penalty_grad(w_assumed, lam_rk, t_rk)
                        + penalty_grad(w, lam_rk, t_rk)
                    )
                    Tbar[s, k] = sgd_update(t_rk, d, lr)
                    dTbar_dlam[s, k] = -lr * penalty_grad_lambda(w, t_rk)
            else:
                for k in range(K):
                    t_rk = T[r, k]
                    lam_rk = lambda_entry(lam, r, k, per_row, per_dim)
                    d = (
                        gbar[s, k]
                        + penalty_grad(w_assumed, lam_rk, t_rk)
                        + penalty_grad(w, lam_rk, t_rk)
                    )
                    m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                    Tbar[s, k] = adam_update(t_rk, m2, v2, alpha, eps_in, eps_out)
                    jac = adam_jacobian(m2, v2, d, alpha, c1, c2, eps_in, eps_out)
                    dTbar_dlam[s, k] = jac * penalty_grad_lambda(w, t_rk)

    return lookahead_rows


lookahead_rows = by_lambda_layout(_lookahead_rows, lam_arg=7)


@pjit
def accumulate_lambda_grad(Gbar, dTbar_dlam, n_held, per_row, G_lam):
    """``G_Λ += reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ)`` over held rows, summed over the axes Λ is broadcast
    across (``math.hypergradient.reduce_to_shape``). A per-row Λ's gradient is compact like the
    held rows (``G_lam[s]`` belongs to table row ``held[s]``); a shared Λ has one row. Each
    output element has one writer, and every sum runs in a fixed order."""
    K = Gbar.shape[1]
    per_dim = G_lam.shape[1] > 1
    if per_row:
        for s in prange(n_held):
            if per_dim:
                for k in range(K):
                    G_lam[s, k] += Gbar[s, k] * dTbar_dlam[s, k]
            else:
                acc = 0.0
                for k in range(K):
                    acc += Gbar[s, k] * dTbar_dlam[s, k]
                G_lam[s, 0] += acc
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
