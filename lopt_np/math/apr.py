"""Adversarial Personalized Ranking for MF (AMF, He et al. SIGIR'18; the paper's baseline, §5.1.3).

APR adds to the BPR loss the BPR loss of the embeddings moved by the worst-case perturbation
of norm ε (APR Eq. 7-9, first-order approximation, per embedding row as in the APR code):

    Δ = ε Γ_r / ‖Γ_r‖   for each row r,   Γ = ∂L_fit/∂Θ   (zero rows stay zero)
    L_APR(Θ) = L_fit(Θ) + γ L_fit(Θ + Δ)                  (γ = ``reg_adv``)

Δ is a constant while Θ is updated (APR's "stop gradient"), so by the chain rule with
∂(Θ + Δ)/∂Θ = I the gradient is the BPR gradient evaluated twice:

    ∂L_APR/∂Θ = ∂L_fit/∂Θ |_Θ + γ ∂L_fit/∂Θ |_{Θ+Δ}

Plain NumPy (the teaching layer); the L2 penalty is added by the trainer (``math.penalty``).
"""

import numpy as np

from .bpr import bpr_grad, bpr_loss


def normalize_rows(G):
    """Each row of ``G`` divided by its Euclidean norm; rows of norm 0 stay 0."""
    norms = np.sqrt(np.sum(G * G, axis=1, keepdims=True))
    return np.divide(G, norms, out=np.zeros_like(G), where=norms > 0)


def adversarial_perturbation(gP, gQ, eps):
    """``(Δ_P, Δ_Q) = ε Γ/‖Γ‖`` row-wise from the BPR gradient ``(gP, gQ)`` (APR Eq. 9)."""
    return eps * normalize_rows(gP), eps * normalize_rows(gQ)


def apr_loss(P, Q, dP, dQ, users, pos, neg, reg_adv):
    """``L_fit(Θ) + γ L_fit(Θ + Δ)`` with the perturbation ``(dP, dQ)`` held fixed."""
    return bpr_loss(P, Q, users, pos, neg) + reg_adv * bpr_loss(P + dP, Q + dQ, users, pos, neg)


def apr_grad(P, Q, users, pos, neg, eps, reg_adv):
    """``(∂L_APR/∂P, ∂L_APR/∂Q, Δ_P, Δ_Q)``: Δ is built from the clean BPR gradient, then the
    BPR gradient at Θ + Δ is added with weight γ (module docstring)."""
    gP, gQ = bpr_grad(P, Q, users, pos, neg)
    dP, dQ = adversarial_perturbation(gP, gQ, eps)
    aP, aQ = bpr_grad(P + dP, Q + dQ, users, pos, neg)
    return gP + reg_adv * aP, gQ + reg_adv * aQ, dP, dQ
