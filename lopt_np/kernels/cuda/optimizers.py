"""Θ updates fused with the penalty gradient (SPEC §3-4), Numba CUDA; mirrors
``kernels.cpu.optimizers`` (same arguments, same compact gradient layout: ``slot``/``held``/
``count`` of the rows the batch touches, see ``kernels.cpu.hypergradient.hold_rows``). One
thread per updated element; Λ's layout is read from its shape (:func:`lambda_at`), a branch
that is uniform across a warp.
"""

from numba import cuda

from ._jit import (
    adam_moments,
    adam_update as _adam,
    device,
    kernel,
    lambda_entry,
    launch,
    penalty_grad,
    row_weight,
    sgd_update as _sgd,
)


@device
def lambda_at(lam, r, k):
    """Λ_{r,k} broadcast from Λ's shape ``(n or 1, K or 1)`` (SPEC §3)."""
    return lambda_entry(lam, r, k, lam.shape[0] > 1, lam.shape[1] > 1)


@kernel
def _adam_update(
    T,
    m,
    v,
    slot,
    g,
    count,
    lam,
    inv_batch,
    full_scope,
    alpha,
    beta1,
    beta2,
    c1,
    c2,
    eps_in,
    eps_out,
):
    K = T.shape[1]
    e = cuda.grid(1)
    if e < T.shape[0] * K:
        r = e // K
        k = e - r * K
        s = slot[r]
        d = T.dtype.type(0.0)  # a row B does not touch, batch scope: w_r = 0, Λ not read
        if s >= 0 or full_scope:
            w = row_weight(T, count, s, inv_batch, full_scope)
            d = penalty_grad(w, lambda_at(lam, r, k), T[r, k])
        if s >= 0:
            d += g[s, k]
        m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
        T[r, k] = _adam(T[r, k], m2, v2, alpha, eps_in, eps_out)
        m[r, k] = m2
        v[r, k] = v2


def adam_update(
    T,
    m,
    v,
    slot,
    g,
    count,
    lam,
    inv_batch,
    full_scope,
    alpha,
    beta1,
    beta2,
    c1,
    c2,
    eps_in,
    eps_out,
):
    """In place: T, m, v ← Adam(T, m, v, d) on every element (dense, SPEC §4)."""
    _adam_update[launch(T.shape[0] * T.shape[1])](
        T,
        m,
        v,
        slot,
        g,
        count,
        lam,
        inv_batch,
        full_scope,
        alpha,
        beta1,
        beta2,
        c1,
        c2,
        eps_in,
        eps_out,
    )


@kernel
def _lazy_adam_update(
    T, m, v, held, n_held, g, count, lam, inv_batch, alpha, beta1, beta2, c1, c2, eps_in, eps_out
):
    K = T.shape[1]
    e = cuda.grid(1)
    if e < n_held * K:
        s = e // K
        k = e - s * K
        r = held[s]
        w = row_weight(T, count, s, inv_batch, False)
        d = g[s, k] + penalty_grad(w, lambda_at(lam, r, k), T[r, k])
        m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
        T[r, k] = _adam(T[r, k], m2, v2, alpha, eps_in, eps_out)
        m[r, k] = m2
        v[r, k] = v2


def lazy_adam_update(
    T, m, v, held, n_held, g, count, lam, inv_batch, alpha, beta1, beta2, c1, c2, eps_in, eps_out
):
    """In place: Adam on the held rows only (batch scope, ``math.optimizers.lazy_adam_step``)."""
    _lazy_adam_update[launch(n_held * T.shape[1])](
        T,
        m,
        v,
        held,
        n_held,
        g,
        count,
        lam,
        inv_batch,
        alpha,
        beta1,
        beta2,
        c1,
        c2,
        eps_in,
        eps_out,
    )


@kernel
def _sgd_update(T, slot, held, n_held, g, count, lam, inv_batch, full_scope, lr):
    K = T.shape[1]
    e = cuda.grid(1)
    if full_scope:  # every row moves: one thread per table element
        if e < T.shape[0] * K:
            r = e // K
            k = e - r * K
            s = slot[r]
            d = penalty_grad(T.dtype.type(1.0), lambda_at(lam, r, k), T[r, k])
            if s >= 0:
                d += g[s, k]
            T[r, k] = _sgd(T[r, k], d, lr)
    elif e < n_held * K:  # only held rows move: one thread per held element
        s = e // K
        k = e - s * K
        r = held[s]
        w = row_weight(T, count, s, inv_batch, False)
        d = g[s, k] + penalty_grad(w, lambda_at(lam, r, k), T[r, k])
        T[r, k] = _sgd(T[r, k], d, lr)


def sgd_update(T, slot, held, n_held, g, count, lam, inv_batch, full_scope, lr):
    """In place: T ← T − η d (every row for the ``full`` scope, the held rows for ``batch``)."""
    rows = T.shape[0] if full_scope else n_held
    _sgd_update[launch(rows * T.shape[1])](
        T, slot, held, n_held, g, count, lam, inv_batch, full_scope, lr
    )
