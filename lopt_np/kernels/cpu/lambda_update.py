"""Λ update (SPEC §5 step 5), Numba CPU: clipped gradient, SGD/Adam/AMSGrad step and the
projection Λ ≥ 0 in one pass; the pass also clears the gradient accumulator.
Mirrors ``math.lambda_update``."""
from numba import prange

from ._jit import adam_moments, adam_update, jit, pjit, sgd_update


@jit
def sum_of_squares(G):
    """Σ G² in a fixed order (for the global-norm clip)."""
    s = 0.0
    for r in range(G.shape[0]):
        for k in range(G.shape[1]):
            s += G[r, k] * G[r, k]
    return s


@pjit
def lambda_adam_update(lam, G, m, v, vmax, scale, alpha, beta1, beta2, eps, amsgrad):
    """In place: Λ ← max(Adam/AMSGrad(Λ, scale·G), 0); G ← 0."""
    for r in prange(lam.shape[0]):
        for k in range(lam.shape[1]):
            m2, v2 = adam_moments(m[r, k], v[r, k], scale * G[r, k], beta1, beta2)
            m[r, k] = m2
            v[r, k] = v2
            if amsgrad:
                if v2 > vmax[r, k]:
                    vmax[r, k] = v2
                v2 = vmax[r, k]
            lam[r, k] = max(adam_update(lam[r, k], m2, v2, alpha, eps), 0.0)
            G[r, k] = 0.0


@pjit
def lambda_sgd_update(lam, G, scale, lr):
    """In place: Λ ← max(Λ − η·scale·G, 0); G ← 0."""
    for r in prange(lam.shape[0]):
        for k in range(lam.shape[1]):
            lam[r, k] = max(sgd_update(lam[r, k], scale * G[r, k], lr), 0.0)
            G[r, k] = 0.0
