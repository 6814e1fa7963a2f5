"""Θ updates fused with the penalty gradient (SPEC §3-4), Numba CPU, parallel over rows.

One pass per table: ``d = g + 2 w_r Λ_{r,k} T_{r,k}`` (w_r = 1 for the ``full`` scope,
c_r/|B| for ``batch``), then the optimizer step. The batch gradient ``g`` is compact: the
rows the batch touches are *held* (``slot[r]`` is the row of ``g`` holding table row r, −1 when
untouched; ``held[s]`` the reverse map; ``count[s]`` the occurrences c_r), see
``kernels.cpu.hypergradient.hold_rows``. Constants come in the table's dtype
(c1 = 1 − β1, c2 = 1 − β2). One compiled variant per Λ layout (``by_lambda_layout``).

- ``adam_update``: dense Adam, every element's moments decay every step (the exact mode of
  SPEC §4, ``math.optimizers.adam_step``);
- ``lazy_adam_update``: row-sparse Adam on the held rows only (``math.optimizers.lazy_adam_step``);
- ``sgd_update``: SGD; with the ``batch`` scope only held rows move (d = 0 elsewhere).
"""

from numba import prange

from ._jit import (
    adam_moments,
    adam_update as _adam,
    by_lambda_layout,
    lambda_entry,
    penalty_grad,
    pjit,
    row_weight,
    sgd_update as _sgd,
)


def _adam_update(per_row, per_dim):
    """In place: T, m, v ← Adam(T, m, v, d) on every row.

    ``adam_update(T, m, v, slot, g, count, lam, inv_batch, full_scope, alpha, beta1, beta2, c1,
    c2, eps_in, eps_out)``"""

    @pjit
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
        K = T.shape[1]
        zero = T.dtype.type(0.0)
        for r in prange(T.shape[0]):
            s = slot[r]
            w = row_weight(T, count, s, inv_batch, full_scope)
            if s >= 0:
                for k in range(K):
                    d = g[s, k] + penalty_grad(
                        w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k]
                    )
                    m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                    T[r, k] = _adam(T[r, k], m2, v2, alpha, eps_in, eps_out)
                    m[r, k] = m2
                    v[r, k] = v2
            else:  # a row B does not touch: d is its penalty (full scope) or 0 (batch scope,
                for k in range(K):  # w_r = 0: Λ is not read, a third less memory traffic)
                    d = (
                        penalty_grad(w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k])
                        if full_scope
                        else zero
                    )
                    m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                    T[r, k] = _adam(T[r, k], m2, v2, alpha, eps_in, eps_out)
                    m[r, k] = m2
                    v[r, k] = v2

    return adam_update


def _lazy_adam_update(per_row, per_dim):
    """In place: Adam on the held rows only (batch scope); other rows and moments unchanged.

    ``lazy_adam_update(T, m, v, held, n_held, g, count, lam, inv_batch, alpha, beta1, beta2, c1,
    c2, eps_in, eps_out)``"""

    @pjit
    def lazy_adam_update(
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
    ):
        K = T.shape[1]
        for s in prange(n_held):
            r = held[s]
            w = row_weight(T, count, s, inv_batch, False)
            for k in range(K):
                d = g[s, k] + penalty_grad(w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k])
                m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                T[r, k] = _adam(T[r, k], m2, v2, alpha, eps_in, eps_out)
                m[r, k] = m2
                v[r, k] = v2

    return lazy_adam_update


def _sgd_update(per_row, per_dim):
    """In place: T ← T − η d (every row for the ``full`` scope, the held rows for ``batch``).

    ``sgd_update(T, slot, held, n_held, g, count, lam, inv_batch, full_scope, lr)``"""

    @pjit
    def sgd_update(T, slot, held, n_held, g, count, lam, inv_batch, full_scope, lr):
        K = T.shape[1]
        zero = T.dtype.type(0.0)
        if full_scope:
            for r in prange(T.shape[0]):
                s = slot[r]
                w = row_weight(T, count, s, inv_batch, True)
                for k in range(K):
                    gk = g[s, k] if s >= 0 else zero
                    d = gk + penalty_grad(w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k])
                    T[r, k] = _sgd(T[r, k], d, lr)
        else:
            for s in prange(n_held):
                r = held[s]
                w = row_weight(T, count, s, inv_batch, False)
                for k in range(K):
                    d = g[s, k] + penalty_grad(
                        w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k]
                    )
                    T[r, k] = _sgd(T[r, k], d, lr)

    return sgd_update


def _adam_moments_update(per_row, per_dim):
    """In place: m, v ← Adam's moments of d on every row (Θ unchanged), d = g + (if
    ``with_penalty``) the batch-scope penalty gradient: a shared-state assumed step (SPEC §8).

    ``adam_moments_update(T, m, v, slot, g, count, lam, inv_batch, with_penalty, beta1, beta2,
    c1, c2)``"""

    @pjit
    def adam_moments_update(
        T, m, v, slot, g, count, lam, inv_batch, with_penalty, beta1, beta2, c1, c2
    ):
        K = T.shape[1]
        zero = T.dtype.type(0.0)
        for r in prange(T.shape[0]):
            s = slot[r]
            w = row_weight(T, count, s, inv_batch, False) if with_penalty else zero
            for k in range(K):
                gk = g[s, k] if s >= 0 else zero
                d = gk + penalty_grad(w, lambda_entry(lam, r, k, per_row, per_dim), T[r, k])
                m2, v2 = adam_moments(m[r, k], v[r, k], d, beta1, beta2, c1, c2)
                m[r, k] = m2
                v[r, k] = v2

    return adam_moments_update


adam_update = by_lambda_layout(_adam_update, lam_arg=6)
adam_moments_update = by_lambda_layout(_adam_moments_update, lam_arg=6)
lazy_adam_update = by_lambda_layout(_lazy_adam_update, lam_arg=7)
sgd_update = by_lambda_layout(_sgd_update, lam_arg=6)
