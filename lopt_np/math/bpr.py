"""BPR loss and its gradient for matrix factorization (paper Eq. 2, 9; SPEC §1-2).

Plain NumPy, dense arrays: the teaching text every kernel is checked against.
A batch is three integer arrays ``users``, ``pos``, ``neg`` of equal length |B|.
"""

import numpy as np


def softplus(x):
    """Numerically stable ``ln(1 + e^x)`` (no overflow for large |x|)."""
    return np.logaddexp(0.0, x)


def sigmoid(x):
    """Numerically stable logistic function ``1 / (1 + e^{-x})``."""
    x = np.asarray(x)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def bpr_margin(P, Q, users, pos, neg):
    """Triplet margin ``x_uij = P_u·Q_i − P_u·Q_j`` (SPEC §1), one value per triplet."""
    Pu = P[users]
    return np.sum(Pu * (Q[pos] - Q[neg]), axis=1)


def bpr_loss(P, Q, users, pos, neg):
    """``L_fit = (1/|B|) Σ_b softplus(−x_uij)`` (Eq. 2 and 9 averaged over the batch, SPEC §2)."""
    return np.mean(softplus(-bpr_margin(P, Q, users, pos, neg)))


def bpr_delta(P, Q, users, pos, neg):
    """``δ_b = σ(x_uij) − 1 = ∂ softplus(−x)/∂x`` for each triplet (SPEC §2)."""
    return sigmoid(bpr_margin(P, Q, users, pos, neg)) - 1.0


def bpr_grad(P, Q, users, pos, neg):
    """Closed-form ``(∂L_fit/∂P, ∂L_fit/∂Q)`` (SPEC §2), scatter-added over repeated rows.

    ∂L/∂P_u += δ_b (Q_i − Q_j)/|B|,  ∂L/∂Q_i += δ_b P_u/|B|,  ∂L/∂Q_j −= δ_b P_u/|B|.
    """
    n = len(users)
    delta = bpr_delta(P, Q, users, pos, neg)[:, None] / n
    gP = np.zeros_like(P)
    gQ = np.zeros_like(Q)
    np.add.at(gP, users, delta * (Q[pos] - Q[neg]))
    np.add.at(gQ, pos, delta * P[users])
    np.add.at(gQ, neg, -delta * P[users])
    return gP, gQ
