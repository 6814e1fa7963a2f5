"""Finite-difference checks of every closed-form derivative (SPEC §6), for tests and the
``lopt gradcheck`` command.

:func:`check_grads` compares a closed-form gradient with central differences along random
unit directions: ``(f(x + h v) − f(x − h v)) / 2h`` against ``⟨∇f, v⟩``; the error is relative
to ``‖∇f‖`` (the largest ``⟨∇f, v⟩`` can be), so a direction nearly orthogonal to the gradient
cannot turn round-off into a false alarm. A vector-valued map F is
checked through a random cotangent c: ``f = ⟨c, F⟩`` whose gradient is the vector-Jacobian product.
"""

from typing import NamedTuple

import numpy as np

from .math.granularity import get_granularity, learned_blocks, replace_blocks
from .math.apr import apr_grad, apr_loss
from .math.bpr import bpr_grad, bpr_loss
from .math.hypergradient import (
    Lookahead,
    OptimizerState,
    ThetaOptimizer,
    lambda_hypergradient,
    lookahead_jacobian_lambda,
    reduce_to_shape,
    regularized_direction,
    theta_update,
    theta_update_jacobian,
    validation_loss_after_lookahead,
)
from .math.neumf import init_neumf, neumf_bpr_grad, neumf_bpr_loss
from .math.penalty import batch_row_weights, penalty, penalty_grad

# Relative tolerance on the directional derivative, and the finite-difference step, by dtype.
# h = 1e-5 in float64 keeps both truncation (h²) and round-off (ε·|f|/h) below 1e-7 here.
TOLERANCES = {np.dtype(np.float64): 1e-6, np.dtype(np.float32): 1e-2}
STEPS = {np.dtype(np.float64): 1e-5, np.dtype(np.float32): 1e-3}


class GradCheckResult(NamedTuple):
    name: str
    max_rel_error: float
    tolerance: float

    @property
    def passed(self):
        return bool(self.max_rel_error <= self.tolerance)


def check_grads(f, x, grad, name="gradient", n_directions=4, rng=None, h=None, rtol=None):
    """Directional central-difference check of ``grad`` = ∇f(x); returns a :class:`GradCheckResult`.

    ``x`` and ``grad`` may be arrays or lists of arrays (several inputs checked jointly).
    """
    xs = [np.asarray(a) for a in (x if isinstance(x, (list, tuple)) else [x])]
    gs = [np.asarray(a) for a in (grad if isinstance(grad, (list, tuple)) else [grad])]
    dtype = xs[0].dtype
    h = STEPS[dtype] if h is None else h
    rtol = TOLERANCES[dtype] if rtol is None else rtol
    rng = np.random.default_rng(0) if rng is None else rng
    grad_norm = np.sqrt(sum(float(np.sum(np.square(g))) for g in gs))
    worst = 0.0
    for _ in range(n_directions):
        vs = [rng.standard_normal(a.shape).astype(dtype) for a in xs]
        norm = np.sqrt(sum(float(np.sum(v * v)) for v in vs))
        vs = [v / norm for v in vs]
        plus = f(*[a + h * v for a, v in zip(xs, vs)])
        minus = f(*[a - h * v for a, v in zip(xs, vs)])
        numeric = (plus - minus) / (2.0 * h)
        analytic = sum(float(np.sum(g * v)) for g, v in zip(gs, vs))
        scale = max(abs(numeric), grad_norm)
        if scale == 0.0:
            continue
        worst = max(worst, abs(numeric - analytic) / scale)
    return GradCheckResult(name, worst, rtol)


class Problem(NamedTuple):
    """A small λOpt problem with repeated rows in every batch (for checks and tests)."""

    P: np.ndarray
    Q: np.ndarray
    lam_P: np.ndarray
    lam_Q: np.ndarray
    state: OptimizerState
    train_batch: tuple
    valid_batch: tuple


def make_problem(
    granularity="DUI", n_users=6, n_items=8, dim=4, batch=12, seed=0, dtype=np.float64
):
    """Random Θ, positive Λ, a nonzero Adam state (t = 3) and batches that repeat rows."""
    if n_users < 4 or n_items < 4:
        raise ValueError("make_problem needs at least 4 users and 4 items")
    g = get_granularity(granularity)
    rng = np.random.default_rng(seed)
    P = rng.normal(0, 0.5, (n_users, dim)).astype(dtype)
    Q = rng.normal(0, 0.5, (n_items, dim)).astype(dtype)
    lam_P = rng.uniform(0.05, 0.5, g.P.shape(n_users, dim)).astype(dtype)
    lam_Q = lam_P if g.tied else rng.uniform(0.05, 0.5, g.Q.shape(n_items, dim)).astype(dtype)

    def moments(n):
        return (
            rng.normal(0, 0.05, (n, dim)).astype(dtype),
            rng.uniform(1e-3, 1e-2, (n, dim)).astype(dtype),
        )

    mP, vP = moments(n_users)
    mQ, vQ = moments(n_items)

    def triplets(n_u, n_i):
        u = rng.integers(0, n_u, batch)
        i = rng.integers(0, n_i, batch)
        j = (i + 1 + rng.integers(0, n_i - 1, batch)) % n_i
        return u, i, j

    # The last two users and items never appear in the training batch, so rows that the
    # validation batch touches but the training batch does not are always exercised.
    return Problem(
        P,
        Q,
        lam_P,
        lam_Q,
        OptimizerState(mP, vP, mQ, vQ, 3),
        triplets(n_users - 2, n_items - 2),
        triplets(n_users, n_items),
    )


def check_bpr_grad(pb, rng):
    """∂L_fit/∂P and ∂L_fit/∂Q (SPEC §2) on a batch with repeated rows."""
    gP, gQ = bpr_grad(pb.P, pb.Q, *pb.train_batch)
    return [
        check_grads(lambda P: bpr_loss(P, pb.Q, *pb.train_batch), pb.P, gP, "dL_fit/dP", rng=rng),
        check_grads(lambda Q: bpr_loss(pb.P, Q, *pb.train_batch), pb.Q, gQ, "dL_fit/dQ", rng=rng),
    ]


def _broadcast(lam, T):
    return np.broadcast_to(lam, T.shape)


def check_penalty_grad(pb, scope, rng):
    """∂Ω/∂P and ∂Ω/∂Q (SPEC §3) for one scope."""
    wP, wQ = batch_row_weights(*pb.train_batch, pb.P.shape[0], pb.Q.shape[0], scope)
    out = []
    for name, T, lam, w in (("P", pb.P, pb.lam_P, wP), ("Q", pb.Q, pb.lam_Q, wQ)):
        lam_b = _broadcast(lam, T)
        out.append(
            check_grads(
                lambda X, lam_b=lam_b, w=w: penalty(w, lam_b, X),
                T,
                penalty_grad(w, lam_b, T),
                f"dOmega/d{name} [{scope}]",
                rng=rng,
            )
        )
    return out


def check_update_jacobians(pb, opt, scope, rng):
    """∂Θ'/∂d of the Θ optimizer and ∂Θ'/∂Λ through it (SPEC §5 step 4), per table."""
    gP, gQ = bpr_grad(pb.P, pb.Q, *pb.train_batch)
    wP, wQ = batch_row_weights(*pb.train_batch, pb.P.shape[0], pb.Q.shape[0], scope)
    s, t = pb.state, pb.state.t + 1
    out = []
    tables = (("P", pb.P, gP, pb.lam_P, wP, s.mP, s.vP), ("Q", pb.Q, gQ, pb.lam_Q, wQ, s.mQ, s.vQ))
    for name, T, g, lam, w, m, v in tables:
        c = rng.standard_normal(T.shape)
        d0 = g + penalty_grad(w, _broadcast(lam, T), T)
        active = w > 0
        jac = theta_update_jacobian(T, d0, opt, m, v, t, active)
        tag = f"{opt.name}, eps {opt.eps_placement}"
        out.append(
            check_grads(
                lambda d, T=T, m=m, v=v, c=c, a=active: float(
                    np.sum(c * theta_update(T, d, opt, m, v, t, a))
                ),
                d0,
                c * jac,
                f"d{name}'/dd [{tag}]",
                rng=rng,
            )
        )
        jl = lookahead_jacobian_lambda(
            T, _broadcast(lam, T), (g, w, active), opt, m, v, t, opt.eps_placement
        )
        out.append(
            check_grads(
                lambda L, T=T, g=g, w=w, m=m, v=v, c=c, a=active: float(
                    np.sum(
                        c
                        * theta_update(
                            T, regularized_direction(g, T, _broadcast(L, T), w), opt, m, v, t, a
                        )
                    )
                ),
                lam,
                reduce_to_shape(c * jl, lam.shape),
                f"d{name}'/dLambda [{tag}, {scope}]",
                rng=rng,
            )
        )
    return out


def check_hypergradient(pb, granularity, opt, rule, rng):
    """∂L_val(Θ̄)/∂Λ end to end (SPEC §5) for every learned Λ block of the granularity, with the
    lookahead built by ``rule`` (SPEC §8 variants)."""
    _, grads = lambda_hypergradient(
        granularity,
        pb.P,
        pb.Q,
        pb.lam_P,
        pb.lam_Q,
        pb.state,
        opt,
        pb.train_batch,
        pb.valid_batch,
        rule,
    )
    blocks = learned_blocks(granularity, pb.lam_P, pb.lam_Q)

    def f(*bs):
        lam_P, lam_Q = replace_blocks(granularity, pb.lam_P, pb.lam_Q, bs)
        return validation_loss_after_lookahead(
            pb.P,
            pb.Q,
            lam_P,
            lam_Q,
            pb.state,
            opt,
            pb.train_batch,
            pb.valid_batch,
            rule,
            assumed_lambda=(pb.lam_P, pb.lam_Q),
        )

    name = (
        f"dL_val/dLambda [{get_granularity(granularity).name}, {opt.name}, scope "
        f"{rule.scope}, eps {rule.eps_placement}, t {rule.count}"
        f"{', assumed penalty' if rule.assumed_penalty else ''}]"
    )
    return [check_grads(f, blocks, grads, name, rng=rng)]


def run_gradchecks(
    granularity="DUI",
    optimizer="adam",
    scope="batch",
    seed=0,
    lr=None,
    eps_placement="inside",
    lookahead=None,
):
    """Every SPEC §6 check for one configuration, in float64; a list of :class:`GradCheckResult`.

    The default Θ learning rate (0.05 for Adam, 0.5 for SGD) makes the lookahead move Θ enough
    that the hypergradient is far above the finite-difference round-off. ``lookahead``: a
    :class:`~lopt_np.math.hypergradient.Lookahead` (default: SPEC §5 with ``scope`` and
    ``eps_placement``).
    """
    lr = (0.5 if optimizer == "sgd" else 0.05) if lr is None else lr
    opt = ThetaOptimizer(optimizer, lr, eps_placement=eps_placement)
    rule = lookahead or Lookahead(scope=scope, eps_placement=eps_placement)
    pb = make_problem(granularity, seed=seed)
    rng = np.random.default_rng(seed + 1)
    return (
        check_bpr_grad(pb, rng)
        + check_penalty_grad(pb, scope, rng)
        + check_update_jacobians(pb, opt, scope, rng)
        + check_hypergradient(pb, granularity, opt, rule, rng)
    )


def check_apr_grad(pb, rng, eps=0.3, reg_adv=0.7):
    """∂L_APR/∂P and ∂L_APR/∂Q (AMF, ``math.apr``) with the perturbation Δ held fixed."""
    users, pos, neg = pb.train_batch
    gP, gQ, dP, dQ = apr_grad(pb.P, pb.Q, users, pos, neg, eps, reg_adv)
    return [
        check_grads(
            lambda P: apr_loss(P, pb.Q, dP, dQ, users, pos, neg, reg_adv),
            pb.P,
            gP,
            "dL_APR/dP",
            rng=rng,
        ),
        check_grads(
            lambda Q: apr_loss(pb.P, Q, dP, dQ, users, pos, neg, reg_adv),
            pb.Q,
            gQ,
            "dL_APR/dQ",
            rng=rng,
        ),
    ]


def make_neumf_params(pb, seed=0, mlp_dim=3, layers=(5, 4)):
    """A small float64 NeuMF built on the problem's P, Q, with nonzero biases and output."""
    rng = np.random.default_rng(seed)
    params = init_neumf(pb.P, pb.Q, mlp_dim, layers, rng, init_std=0.5, dtype=np.float64)
    for name in params:
        if name.startswith("b") or name == "h_m":
            params[name] = rng.normal(0, 0.3, params[name].shape)
    params["h_g"] = rng.uniform(0.5, 1.5, params["h_g"].shape)
    return params


def check_neumf_grad(pb, rng, params=None):
    """∂L_NeuMF/∂(every parameter) of the BPR loss (``math.neumf``), one check per parameter."""
    params = make_neumf_params(pb) if params is None else params
    batch = pb.train_batch
    _, grads = neumf_bpr_grad(params, *batch)
    out = []
    for name in params:

        def f(x, name=name):
            return neumf_bpr_loss({**params, name: x}, *batch)

        out.append(check_grads(f, params[name], grads[name], f"dL_NeuMF/d{name}", rng=rng))
    return out


def run_baseline_gradchecks(seed=0):
    """The AMF and NeuMF checks (float64) on a :func:`make_problem` batch."""
    pb = make_problem("global", seed=seed)
    rng = np.random.default_rng(seed + 1)
    return check_apr_grad(pb, rng) + check_neumf_grad(pb, rng)
