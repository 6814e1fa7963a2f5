"""λOpt lookahead Θ̄ and the hypergradient G_Λ (paper Eq. 4-8, 10-14; SPEC §5).

Dense reference: every function takes whole tables. The fast kernels compute the same values on
the rows the validation batch touches only (SPEC §5.4).
"""

from typing import NamedTuple

import numpy as np

from .granularity import get_granularity
from .bpr import bpr_grad, bpr_loss
from .optimizers import adam_moments, theta_rule
from .lambda_update import clip_by_global_norm
from .penalty import batch_row_weights, penalty_grad, penalty_grad_lambda


class ThetaOptimizer(NamedTuple):
    """Settings of the Θ optimizer f (SPEC §4): ε's placement in Adam's root, and a global-norm
    clip of the Θ gradient (inf: none; the authors clip at 100, SPEC §8)."""

    name: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    eps_placement: str = "inside"
    clip: float = float("inf")


LOOKAHEAD_COUNTS = ("next", "current")


class Lookahead(NamedTuple):
    """How the assumed step Θ̄ is built (SPEC §5 steps 1-2, the variants of SPEC §8).

    - ``scope``: the penalty scope of the differentiable term ∂Ω/∂Θ(Θ|Λ) (``full``: 2ΛΘ on every
      row, weight 1, as the authors' lookahead);
    - ``assumed_penalty``: ḡ also holds the batch-scope penalty of B̄ at the current Λ, a constant
      (no Λ-gradient path through it), as the authors' assumed gradient;
    - ``eps_placement``: ε inside or outside Adam's root in the lookahead;
    - ``count``: the bias-correction count of the lookahead's Adam: ``next`` = t + 1 (the update
      about to be taken, SPEC §5), ``current`` = t (real updates done so far, the authors');
    - ``shared_state``: the assumed step's gradient ḡ also enters the real optimizer's moments
      and step count (:func:`absorb_assumed_gradient`), as in a port of the authors' code to
      torch ≥ 2.1 whose copied optimizer shares the real one's state (a variant to measure,
      not the authors' code).
    """

    scope: str = "batch"
    assumed_penalty: bool = False
    eps_placement: str = "inside"
    count: str = "next"
    shared_state: bool = False

    def step_count(self, t_done):
        """The t of the lookahead's bias correction, given ``t_done`` real updates."""
        return t_done + 1 if self.count == "next" else t_done


def regularized_direction(g, T, lam, w):
    """``d = g + ∂Ω/∂T`` (Eq. 4-5; SPEC §4)."""
    return g + penalty_grad(w, lam, T)


def theta_update_full(T, d, opt, m, v, t, active, eps_placement=None):
    """The Θ optimizer f of ``opt.name`` (``math.optimizers.THETA_RULES``): ``(Θ', m', v')`` for update
    index ``t`` (SPEC §4). ``active`` marks the rows the batch touches: ``lazy_adam`` steps only
    those. ``eps_placement`` overrides ``opt``'s (the lookahead may place ε differently, SPEC
    §8)."""
    settings = opt._replace(eps_placement=eps_placement or opt.eps_placement)
    return theta_rule(opt.name).step(T, d, m, v, t, active, settings)


def theta_update(T, d, opt, m, v, t, active, eps_placement=None):
    """Θ' of :func:`theta_update_full` (the lookahead discards the state)."""
    return theta_update_full(T, d, opt, m, v, t, active, eps_placement)[0]


def theta_update_jacobian(T, d, opt, m, v, t, active, eps_placement=None):
    """Elementwise ``∂Θ'/∂d`` of :func:`theta_update` (SPEC §5 step 4)."""
    settings = opt._replace(eps_placement=eps_placement or opt.eps_placement)
    return theta_rule(opt.name).jacobian(T, d, m, v, t, active, settings)


def reduce_to_shape(G, shape):
    """Sum an elementwise (n × K) hypergradient over the axes Λ is broadcast across."""
    axes = tuple(a for a in (0, 1) if shape[a] == 1 and G.shape[a] != 1)
    return np.sum(G, axis=axes, keepdims=True) if axes else G


def reduce_hypergradient(granularity, GP, GQ, lam_P, lam_Q):
    """Elementwise G_Λ on both tables → one gradient per learned Λ array, in
    :func:`lopt_np.math.granularity.learned_blocks` order; tied tables are summed (SPEC §5 step 4)."""
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


def assumed_gradient(P, Q, lam_P, lam_Q, opt, train_batch, rule):
    """SPEC §5 step 1: ḡ on B̄ at Θ_t per table — the BPR gradient, plus (``rule.assumed_penalty``)
    the batch-scope penalty at the current Λ, clipped by ``opt.clip``; a constant for G_Λ.
    Returns ``(ḡ_P, ḡ_Q, rows of P in B̄, rows of Q in B̄)``."""
    u, i, j = train_batch
    gP, gQ = bpr_grad(P, Q, u, i, j)
    wP, wQ = batch_row_weights(u, i, j, P.shape[0], Q.shape[0], "batch")
    if rule.assumed_penalty:
        gP, gQ = regularized_direction(gP, P, lam_P, wP), regularized_direction(gQ, Q, lam_Q, wQ)
    gP, gQ = clip_by_global_norm((gP, gQ), opt.clip)
    return gP, gQ, wP > 0, wQ > 0


def lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, rule, assumed_lambda=None):
    """SPEC §5 steps 1-2: ``(P̄, Q̄)`` and what they were built from, ``(ḡ, w, active)`` per table,
    with the lookahead penalty weights ``w`` of ``rule.scope``. ``assumed_lambda``: the
    ``(Λ^P, Λ^Q)`` of ḡ's penalty, if not the Λ being differentiated (ḡ is a constant for G_Λ,
    so a finite-difference check holds it fixed)."""
    u, i, j = train_batch
    aLP, aLQ = assumed_lambda or (lam_P, lam_Q)
    gP, gQ, aP, aQ = assumed_gradient(P, Q, aLP, aLQ, opt, train_batch, rule)
    wP, wQ = batch_row_weights(u, i, j, P.shape[0], Q.shape[0], rule.scope)
    t = rule.step_count(state.t)
    Pbar = theta_update(
        P,
        regularized_direction(gP, P, lam_P, wP),
        opt,
        state.mP,
        state.vP,
        t,
        aP,
        rule.eps_placement,
    )
    Qbar = theta_update(
        Q,
        regularized_direction(gQ, Q, lam_Q, wQ),
        opt,
        state.mQ,
        state.vQ,
        t,
        aQ,
        rule.eps_placement,
    )
    return Pbar, Qbar, ((gP, wP, aP), (gQ, wQ, aQ))


def lookahead_jacobian_lambda(T, lam, built, opt, m, v, t, eps_placement):
    """Elementwise ``∂T̄/∂Λ = ∂T̄/∂d ⊙ ∂d/∂Λ`` of one table before reduction to Λ's shape (SPEC §5
    step 4); ``built = (ḡ, w, active)`` from :func:`lookahead`."""
    gbar, w, active = built
    d = regularized_direction(gbar, T, lam, w)
    return theta_update_jacobian(T, d, opt, m, v, t, active, eps_placement) * penalty_grad_lambda(
        w, T
    )


def validation_loss_after_lookahead(
    P, Q, lam_P, lam_Q, state, opt, train_batch, valid_batch, rule, assumed_lambda=None
):
    """``L_val(Θ̄(Λ))`` (Eq. 6-7; SPEC §5 step 3): the function G_Λ differentiates (with ḡ's Λ
    held at ``assumed_lambda``, see :func:`lookahead`)."""
    Pbar, Qbar, _ = lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, rule, assumed_lambda)
    return bpr_loss(Pbar, Qbar, *valid_batch)


def lambda_hypergradient(
    granularity, P, Q, lam_P, lam_Q, state, opt, train_batch, valid_batch, rule
):
    """SPEC §5 steps 1-4 end to end: ``(L_val(Θ̄), [G_Λ per learned block])``.

    G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂d ⊙ ∂d/∂Λ), G_Θ̄ = ∂L_val/∂Θ̄ from the BPR gradient at Θ̄.
    """
    Pbar, Qbar, (bP, bQ) = lookahead(P, Q, lam_P, lam_Q, state, opt, train_batch, rule)
    loss = bpr_loss(Pbar, Qbar, *valid_batch)
    GPbar, GQbar = bpr_grad(Pbar, Qbar, *valid_batch)
    t = rule.step_count(state.t)
    e = rule.eps_placement
    GP = GPbar * lookahead_jacobian_lambda(P, lam_P, bP, opt, state.mP, state.vP, t, e)
    GQ = GQbar * lookahead_jacobian_lambda(Q, lam_Q, bQ, opt, state.mQ, state.vQ, t, e)
    return loss, reduce_hypergradient(granularity, GP, GQ, lam_P, lam_Q)


def absorb_assumed_gradient(P, Q, lam_P, lam_Q, state, opt, train_batch, rule):
    """``shared_state`` (SPEC §8 variant, dense Adam): the real optimizer's state after the
    assumed step — Adam's moments of ḡ on every row, and t + 1; Θ does not move."""
    gP, gQ, _, _ = assumed_gradient(P, Q, lam_P, lam_Q, opt, train_batch, rule)
    mP, vP = adam_moments(state.mP, state.vP, gP, opt.beta1, opt.beta2)
    mQ, vQ = adam_moments(state.mQ, state.vQ, gQ, opt.beta1, opt.beta2)
    return OptimizerState(mP, vP, mQ, vQ, state.t + 1)


def real_step(P, Q, lam_P, lam_Q, state, opt, train_batch, scope):
    """The real Θ update of SPEC §5 (after Λ_{t+1}): returns ``(P', Q', state', L_fit)``. The
    regularized gradient is clipped by ``opt.clip`` (SPEC §8)."""
    u, i, j = train_batch
    loss = bpr_loss(P, Q, u, i, j)
    gP, gQ = bpr_grad(P, Q, u, i, j)
    wP, wQ = batch_row_weights(u, i, j, P.shape[0], Q.shape[0], scope)
    dP, dQ = clip_by_global_norm(
        (regularized_direction(gP, P, lam_P, wP), regularized_direction(gQ, Q, lam_Q, wQ)), opt.clip
    )
    t = state.t + 1
    P2, mP, vP = theta_update_full(P, dP, opt, state.mP, state.vP, t, wP > 0)
    Q2, mQ, vQ = theta_update_full(Q, dQ, opt, state.mQ, state.vQ, t, wQ > 0)
    return P2, Q2, OptimizerState(mP, vP, mQ, vQ, t), loss
