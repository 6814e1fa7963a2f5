"""λOpt lookahead and hypergradient on the rows the validation batch touches (SPEC §5.4),
Numba CUDA; mirrors ``kernels.cpu.hypergradient``.

Held rows: ``held[s]`` is the table row in compact buffer row s, ``slot[r]`` the buffer row of
table row r (−1 when not held). The *order* of the held rows is decided on the host by the CPU's
``hold_in_table_order`` (table order; ``kernels.cuda.step``), so both backends lay their compact
buffers out identically; :func:`map_held_rows` here only writes that order into the device slot
map.
"""

from numba import cuda

from .. import LAZY_ADAM, SGD
from ._jit import (
    adam_jacobian,
    adam_moments,
    adam_update,
    kernel,
    launch,
    penalty_grad,
    penalty_grad_lambda,
    row_weight,
    sgd_update,
)
from .optimizers import lambda_at


@kernel
def _map_held_rows(slot, held, n_held):
    s = cuda.grid(1)
    if s < n_held:
        slot[held[s]] = s


def map_held_rows(slot, held, n_held):
    """``slot[held[s]] = s`` for the first ``n_held`` held rows."""
    _map_held_rows[launch(n_held)](slot, held, n_held)


@kernel
def _release_rows(slot, held, n_held):
    s = cuda.grid(1)
    if s < n_held:
        slot[held[s]] = -1


def release_rows(slot, held, n_held):
    """Reset the slot map of the held rows to −1 (ready for the next step)."""
    _release_rows[launch(n_held)](slot, held, n_held)


@kernel
def _zero_rows(buffers, counts, n_held):
    K = buffers.shape[2]
    e = cuda.grid(1)
    if e < buffers.shape[0] * n_held * K:
        a = e // (n_held * K)
        rest = e - a * n_held * K
        s = rest // K
        buffers[a, s, rest - s * K] = buffers.dtype.type(0.0)
        if a == 0 and rest - s * K == 0:
            counts[s] = 0


def zero_rows(buffers, counts, n_held):
    """Clear the first ``n_held`` rows of a 3-D stack of compact buffers and of the counts."""
    _zero_rows[launch(buffers.shape[0] * n_held * buffers.shape[2])](buffers, counts, n_held)


@kernel
def _zero_matrix_rows(A, n_rows):
    e = cuda.grid(1)
    if e < n_rows * A.shape[1]:
        r = e // A.shape[1]
        A[r, e - r * A.shape[1]] = A.dtype.type(0.0)


def zero_matrix_rows(A, n_rows):
    """Clear the first ``n_rows`` rows of a 2-D array (the compact Λ gradient)."""
    _zero_matrix_rows[launch(n_rows * A.shape[1])](A, n_rows)


@kernel
def _lookahead_rows(
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
    e = cuda.grid(1)
    if e < n_held * K:
        s = e // K
        k = e - s * K
        r = held[s]
        t_rk = T[r, k]
        if optimizer == LAZY_ADAM and count[s] == 0:
            Tbar[s, k] = t_rk
            dTbar_dlam[s, k] = T.dtype.type(0.0)
        else:
            w = row_weight(T, count, s, inv_batch, full_scope)
            w_assumed = (
                row_weight(T, count, s, inv_batch, False) if assumed_penalty else T.dtype.type(0.0)
            )
            lam_rk = lambda_at(lam, r, k)
            d = gbar[s, k] + penalty_grad(w_assumed, lam_rk, t_rk) + penalty_grad(w, lam_rk, t_rk)
            if optimizer == SGD:
                Tbar[s, k] = sgd_update(t_rk, d, lr)
                dTbar_dlam[s, k] = -lr * penalty_grad_lambda(w, t_rk)
            else:
                m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                Tbar[s, k] = adam_update(t_rk, m2, v2, alpha, eps_in, eps_out)
                jac = adam_jacobian(m2, v2, d, alpha, c1, c2, eps_in, eps_out)
                dTbar_dlam[s, k] = jac * penalty_grad_lambda(w, t_rk)


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
    """For every held element: ``T̄ = f(T, ḡ + ∂Ω/∂T)`` and ``∂T̄/∂Λ = ∂T̄/∂d · 2 w T``
    (SPEC §5); lazy Adam leaves rows B̄ does not touch where they are (∂T̄/∂Λ = 0).
    ``assumed_penalty``: ḡ also holds B̄'s batch penalty, a constant for ∂T̄/∂Λ (SPEC §8)."""
    _lookahead_rows[launch(n_held * T.shape[1])](
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
    )


@kernel
def _accumulate_lambda_grad(Gbar, dTbar_dlam, n_held, per_row, G_lam):
    K = Gbar.shape[1]
    per_dim = G_lam.shape[1] > 1
    e = cuda.grid(1)
    if e < n_held * K:
        s = e // K
        k = e - s * K
        if per_row and per_dim:  # one writer per element
            G_lam[s, k] += Gbar[s, k] * dTbar_dlam[s, k]
        elif per_row:  # one thread per held row sums its K products
            if k == 0:
                acc = 0.0  # float64, as on the CPU
                for c in range(K):
                    acc += Gbar[s, c] * dTbar_dlam[s, c]
                G_lam[s, 0] += acc
        else:  # Λ shared by all rows: atomic sums over the rows
            cuda.atomic.add(G_lam, (0, k if per_dim else 0), Gbar[s, k] * dTbar_dlam[s, k])


def accumulate_lambda_grad(Gbar, dTbar_dlam, n_held, per_row, G_lam):
    """``G_Λ += reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ)`` over held rows, summed over the axes Λ is broadcast
    across (``math.hypergradient.reduce_to_shape``); G_Λ is compact like the held rows for a
    per-row Λ and has one row for a shared Λ."""
    _accumulate_lambda_grad[launch(n_held * Gbar.shape[1])](
        Gbar, dTbar_dlam, n_held, per_row, G_lam
    )
