"""Λ update (SPEC §5 step 5), Numba CPU: clipped gradient, SGD/Adam/AMSGrad step and the
projection Λ ≥ 0 in one pass. Mirrors ``math.lambda_update``.

The gradient G is compact like the lookahead's held rows: ``G[slot[r]]`` is the gradient of Λ's
row r (no row: G = 0), ``held[s]`` the reverse map. A Λ shared by all rows (global, D) has
``slot = held = [0]``.
"""

import numpy as np
from numba import prange

from ._jit import fast_reduction, lambda_adam_entry, pjit, sgd_update


@fast_reduction
def sum_of_squares(G, n_rows):
    """Σ G² over the first ``n_rows`` rows (for the global-norm clip), accumulated in float64."""
    s = 0.0
    for r in range(n_rows):
        for k in range(G.shape[1]):
            s += np.float64(G[r, k]) * np.float64(G[r, k])
    return s


@pjit
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
    """In place: :func:`lambda_adam_entry` with gradient scale·G on every row (rows ``all``:
    moments decay where G = 0; the rows in table order through ``slot``) or, with
    ``batch_rows``, on the ``n_held`` rows with a gradient only (rows ``batch``: every other row
    keeps its value and moments; ``held`` is in table order, as the steps hold rows), so memory
    is read in address order either way."""
    zero = lam.dtype.type(0.0)
    K = lam.shape[1]
    if batch_rows:
        for s in prange(n_held):
            r = held[s]
            for k in range(K):
                g = scale * G[s, k]
                lambda_adam_entry(
                    lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in, eps_out, amsgrad
                )
    else:
        for r in prange(lam.shape[0]):
            s = slot[r]
            for k in range(K):
                g = scale * G[s, k] if s >= 0 else zero
                lambda_adam_entry(
                    lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in, eps_out, amsgrad
                )


@pjit
def lambda_sgd_update(lam, held, n_held, G, scale, lr):
    """In place: Λ ← max(Λ − η·scale·G, 0) on the rows with a gradient (elsewhere G = 0 and
    SGD leaves Λ unchanged)."""
    zero = lam.dtype.type(0.0)
    for s in prange(n_held):
        r = held[s]
        for k in range(lam.shape[1]):
            lam[r, k] = max(sgd_update(lam[r, k], scale * G[s, k], lr), zero)
