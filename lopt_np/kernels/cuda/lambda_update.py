"""Λ update (SPEC §5 step 5), Numba CUDA: clipped gradient, SGD/Adam/AMSGrad step and the
projection Λ ≥ 0 in one pass; mirrors ``kernels.cpu.lambda_update`` (same compact gradient
layout: ``G[slot[r]]`` is the gradient of Λ's row r, ``held[s]`` the reverse map; a shared Λ
has ``slot = held = [0]``).

The clip factor is computed on the host (``math.lambda_update.clip_scale``) from
:func:`accumulate_sum_of_squares`, which needs the norm back on the host once per Λ step,
fetched together with the validation loss.
"""

import numpy as np
from numba import cuda

from ._jit import kernel, lambda_adam_entry, launch, sgd_update


@kernel
def _accumulate_sum_of_squares(G, n_rows, out, slot):
    r = cuda.grid(1)
    if r < n_rows:
        s = 0.0
        for k in range(G.shape[1]):
            s += np.float64(G[r, k]) * np.float64(G[r, k])
        cuda.atomic.add(out, slot, s)


def accumulate_sum_of_squares(G, n_rows, out, slot=0):
    """``out[slot] += Σ G²`` over the first ``n_rows`` rows, in float64 (one thread per row,
    atomic adds across rows)."""
    _accumulate_sum_of_squares[launch(n_rows)](G, n_rows, out, slot)


@kernel
def _row_sums(A, out, slot):
    r = cuda.grid(1)
    if r < A.shape[0]:
        s = 0.0
        for k in range(A.shape[1]):
            s += np.float64(A[r, k])
        cuda.atomic.add(out, slot, s)


def row_sums(A, out, slot=0):
    """``out[slot] += Σ A`` in float64 (mean Λ for progress reports without copying Λ)."""
    _row_sums[launch(A.shape[0])](A, out, slot)


@kernel
def _lambda_adam_update(
    lam,
    slot,
    held,
    n_held,
    G,
    m,
    v,
    vmax,
    scale,
    alpha,
    beta1,
    beta2,
    c1,
    c2,
    eps_in,
    eps_out,
    amsgrad,
    batch_rows,
):
    K = lam.shape[1]
    e = cuda.grid(1)
    if batch_rows:
        if e < n_held * K:
            s = e // K
            k = e - s * K
            r = held[s]
            g = scale * G[s, k]
            lambda_adam_entry(
                lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in, eps_out, amsgrad
            )
    elif e < lam.shape[0] * K:
        r = e // K
        k = e - r * K
        s = slot[r]
        g = scale * G[s, k] if s >= 0 else lam.dtype.type(0.0)
        lambda_adam_entry(
            lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in, eps_out, amsgrad
        )


def lambda_adam_update(
    lam,
    slot,
    held,
    n_held,
    G,
    m,
    v,
    vmax,
    scale,
    alpha,
    beta1,
    beta2,
    c1,
    c2,
    eps_in,
    eps_out,
    amsgrad,
    batch_rows,
):
    """In place: ``lambda_adam_entry`` on every element (rows ``all``) or, with
    ``batch_rows``, on the ``n_held`` rows with a gradient only (rows ``batch``)."""
    rows = n_held if batch_rows else lam.shape[0]
    _lambda_adam_update[launch(rows * lam.shape[1])](
        lam,
        slot,
        held,
        n_held,
        G,
        m,
        v,
        vmax,
        scale,
        alpha,
        beta1,
        beta2,
        c1,
        c2,
        eps_in,
        eps_out,
        amsgrad,
        batch_rows,
    )


@kernel
def _lambda_sgd_update(lam, held, n_held, G, scale, lr):
    K = lam.shape[1]
    e = cuda.grid(1)
    if e < n_held * K:
        s = e // K
        k = e - s * K
        r = held[s]
        lam[r, k] = max(sgd_update(lam[r, k], scale * G[s, k], lr), lam.dtype.type(0.0))


def lambda_sgd_update(lam, held, n_held, G, scale, lr):
    """In place: Λ ← max(Λ − η·scale·G, 0) on the rows with a gradient."""
    _lambda_sgd_update[launch(n_held * lam.shape[1])](lam, held, n_held, G, scale, lr)
