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
- ``sgd_update``: SGD; with the ``batch`` scope only held rows move (d = 0 elsewhere);
- ``rows_behind`` and ``adam_catch_up``: dense Adam with the ``batch`` scope, deferred. A row
  the batch does not touch has d = 0, so its steps depend on nothing but its own T, m, v and
  each step's scalars; they can wait until the row is next read and then run in the same order
  on the same numbers, with bit-identical results (``kernels.step_order``, "deferred rows").
"""

from numba import prange

from ._jit import (
    adam_moments,
    adam_update as _adam,
    by_lambda_layout,
    jit,
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


@jit
def rows_behind(rows, last, upto, mark, behind, start, n):
    """Collect, once each, the rows of ``rows`` whose dense-Adam steps stop before ``upto``
    (``last[r] < upto``) into ``behind[n:]`` with ``start`` = their last step, and set
    ``last[r] = mark`` for every row of ``rows`` (``mark`` = ``upto`` + 1 where a step that
    updates these rows follows at once, else ``upto``). Returns the new ``n``."""
    for b in range(rows.shape[0]):
        r = rows[b]
        if last[r] < mark:
            if last[r] < upto:
                behind[n] = r
                start[n] = last[r]
                n += 1
            last[r] = mark
    return n


@pjit
def adam_catch_up(
    T, m, v, behind, start, n, upto, base, alpha, eps_in, eps_out, beta1, beta2, c1, c2
):
    """In place: the dense-Adam steps ``start[i] + 1 … upto`` of rows ``behind[:n]`` with d = 0,
    in order, step s with ``alpha[s − base − 1]``, ``eps_in[…]``, ``eps_out[…]``: the same
    operations ``adam_update`` runs on a row no batch touches, so the same bits."""
    K = T.shape[1]
    zero = T.dtype.type(0.0)
    for i in prange(n):
        r = behind[i]
        for s in range(start[i] - base, upto - base):
            a, e_in, e_out = alpha[s], eps_in[s], eps_out[s]
            for k in range(K):
                m2, v2 = adam_moments(m[r, k], v[r, k], zero, beta1, beta2, c1, c2)
                T[r, k] = _adam(T[r, k], m2, v2, a, e_in, e_out)
                m[r, k] = m2
                v[r, k] = v2
