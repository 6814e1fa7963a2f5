"""λOpt lookahead Θ̄ and the hypergradient G_Λ (paper Eq. 4-8, 10-14; SPEC §5).

Dense reference: every function takes whole tables. The fast kernels compute the same values on
the rows the validation batch touches only (SPEC §5.4).
"""
from typing import NamedTuple

import numpy as np

from ..granularity import get_granularity
from .bpr import bpr_grad, bpr_loss
from .optimizers import (adam_step, adam_step_jacobian, lazy_adam_step, lazy_adam_step_jacobian,
                         sgd_step, sgd_step_jacobian)
from .penalty import batch_row_weights, penalty_grad, penalty_grad_lambda


class ThetaOptimizer(NamedTuple):
    """Settings of the Θ optimizer f (SPEC §4)."""
    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


def regularized_direction(g, T, lam, w):
    """``d = g + ∂Ω/∂T`` (Eq. 4-5; SPEC §4)."""
    return g + penalty_grad(T, lam, w)


def theta_update_full(T, d, opt, m, v, t, w):
    """The Θ optimizer f by name: ``(Θ', m', v')`` for update index ``t`` (SPEC §4). ``w`` are the
    per-row penalty weights of the batch: ``lazy_adam`` steps the rows with w_r > 0 (with the
    batch scope, exactly the rows the batch touches)."""
    if opt.name == "sgd":
        return sgd_step(T, d, opt.lr), m, v
    if opt.name == "lazy_adam":
        return lazy_adam_step(T, m, v, t, d, w > 0, opt.lr, opt.beta1, opt.beta2, opt.eps)
    return adam_step(T, m, v, t, d, opt.lr, opt.beta1, opt.beta2, opt.eps)


def theta_update(T, d, opt, m, v, t, w):
    """Θ' of :func:`theta_update_full` (the lookahead discards the state)."""
    return theta_update_full(T, d, opt, m, v, t, w)[0]


def theta_update_jacobian(T, d, opt, m, v, t, w):
    """Elementwise ``∂Θ'/∂d`` of :func:`theta_update` (SPEC §5 step 4)."""
    if opt.name == "sgd":
        return np.full_like(T, sgd_step_jacobian(opt.lr))
    if opt.name == "lazy_adam":
        return lazy_adam_step_jacobian(m, v, t, d, w > 0, opt.lr, opt.beta1, opt.beta2, opt.eps)
    return adam_step_jacobian(m, v, t, d, opt.lr, opt.beta1, opt.beta2, opt.eps)


def lookahead_table(T, gbar, lam, w, opt, m, v, t):
    """Assumed step ``T̄ = f(T, ḡ + ∂Ω/∂T(T|Λ))`` for one table (SPEC §5 step 2, Eq. 10/12)."""
    return theta_update(T, regularized_direction(gbar, T, lam, w), opt, m, v, t, w)


def lookahead_table_jacobian_lambda(T, gbar, lam, w, opt, m, v, t):
    """Elementwise ``∂T̄/∂Λ = ∂T̄/∂d ⊙ ∂d/∂Λ`` before reduction to Λ's shape (SPEC §5 step 4)."""
    d = regularized_direction(gbar, T, lam, w)
    return theta_update_jacobian(T, d, opt, m, v, t, w) * penalty_grad_lambda(T, w)


def reduce_to_shape(G, shape):
    """Sum an elementwise (n × K) hypergradient over the axes Λ is broadcast across."""
    axes = tuple(a for a in (0, 1) if shape[a] == 1 and G.shape[a] != 1)
    return np.sum(G, axis=axes, keepdims=True) if axes else G


def reduce_hypergradient(granularity, GP, GQ, lam_P, lam_Q):
    """Elementwise G_Λ on both tables → one gradient per learned Λ array, in
    :func:`lopt_np.granularity.learned_blocks` order; tied tables are summed (SPEC §5 step 4)."""
    g = get_granularity(granularity)
    grads = []
    if g.P.learned:
        gp = reduce_to_shape(GP, lam_P.shape)
        if g.tied:
            gp = gp + reduce_to_shape(GQ, lam_Q.shape)
        grads.append(gp)
    if g.Q.learned and not g.tied:
        grads.append(reduce_to_shape(GQ, lam_Q.shape))
    return grads


class OptimizerState(NamedTuple):
    """Θ optimizer state: moments (unused by SGD) and ``t``, the number of updates done so far."""
    mP: np.ndarray
    vP: np.ndarray
    mQ: np.ndarray
    vQ: np.ndarray
    t: int


def lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, scope):
    """SPEC §5 steps 1-2: ``(P̄, Q̄)`` and the ``ḡ, w`` they were built from.

    The assumed step is update number ``state.t + 1``.
    """
    u, i, j = train_batch
    gP, gQ = bpr_grad(P, Q, u, i, j)
    wP, wQ = batch_row_weights(u, i, j, P.shape[0], Q.shape[0], scope)
    t = state.t + 1
    Pbar = lookahead_table(P, gP, lam_P, wP, opt, state.mP, state.vP, t)
    Qbar = lookahead_table(Q, gQ, lam_Q, wQ, opt, state.mQ, state.vQ, t)
    return Pbar, Qbar, (gP, gQ, wP, wQ)


def validation_loss_after_lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, valid_batch,
                                    scope):
    """``L_val(Θ̄(Λ))`` (Eq. 6-7; SPEC §5 step 3): the function G_Λ differentiates."""
    Pbar, Qbar, _ = lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, scope)
    return bpr_loss(Pbar, Qbar, *valid_batch)


def lambda_hypergradient(granularity, P, Q, lam_P, lam_Q, state, opt, train_batch, valid_batch,
                         scope):
    """SPEC §5 steps 1-4 end to end: ``(L_val(Θ̄), [G_Λ per learned block])``.

    G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂d ⊙ ∂d/∂Λ), G_Θ̄ = ∂L_val/∂Θ̄ from the BPR gradient at Θ̄.
    """
    Pbar, Qbar, (gP, gQ, wP, wQ) = lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, scope)
    loss = bpr_loss(Pbar, Qbar, *valid_batch)
    GPbar, GQbar = bpr_grad(Pbar, Qbar, *valid_batch)
    t = state.t + 1
    GP = GPbar * lookahead_table_jacobian_lambda(P, gP, lam_P, wP, opt, state.mP, state.vP, t)
    GQ = GQbar * lookahead_table_jacobian_lambda(Q, gQ, lam_Q, wQ, opt, state.mQ, state.vQ, t)
    return loss, reduce_hypergradient(granularity, GP, GQ, lam_P, lam_Q)


def real_step(P, Q, lam_P, lam_Q, state, opt, train_batch, scope):
    """The real Θ update of SPEC §5 (after Λ_{t+1}): returns ``(P', Q', state', L_fit)``."""
    u, i, j = train_batch
    loss = bpr_loss(P, Q, u, i, j)
    gP, gQ = bpr_grad(P, Q, u, i, j)
    wP, wQ = batch_row_weights(u, i, j, P.shape[0], Q.shape[0], scope)
    dP = regularized_direction(gP, P, lam_P, wP)
    dQ = regularized_direction(gQ, Q, lam_Q, wQ)
    t = state.t + 1
    P2, mP, vP = theta_update_full(P, dP, opt, state.mP, state.vP, t, wP)
    Q2, mQ, vQ = theta_update_full(Q, dQ, opt, state.mQ, state.vQ, t, wQ)
    return P2, Q2, OptimizerState(mP, vP, mQ, vQ, t), loss
