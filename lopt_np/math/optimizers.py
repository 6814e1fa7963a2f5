"""Θ optimizers and their derivatives with respect to the update direction d (Eq. 10-14; SPEC §4-5).

``d = g + ∂Ω/∂Θ`` is the regularized gradient. The real step and the λOpt lookahead call the
same update function; only the lookahead discards the new state.

``lazy_adam`` is the row-sparse Adam SPEC §4 allows as a separate optimizer: only the rows the
batch touches are stepped (their moments included); every other row, and its moments, stays as
it is. It is defined for the ``batch`` penalty scope, where untouched rows have d = 0.
"""

from typing import Callable, NamedTuple

import numpy as np

EPS_PLACEMENTS = ("inside", "outside")  # where Adam's ε sits (SPEC §4)


def check_optimizer_scope(optimizer, scope):
    """Raise ``ValueError`` for a row-sparse optimizer with the ``full`` scope (whose penalty
    gradient touches every row every step, so no row could be skipped)."""
    if optimizer in ROW_SPARSE_OPTIMIZERS and scope != "batch":
        raise ValueError(
            f"optimizer {optimizer!r} updates only the rows of the batch and needs "
            f"the 'batch' penalty scope (got {scope!r})"
        )


def sgd_step(theta, d, lr):
    """SGD, Eq. 10-11: ``Θ' = Θ − η d``."""
    return theta - lr * d


def sgd_step_jacobian(lr):
    """``∂Θ'/∂d = −η`` for SGD (elementwise; SPEC §5 step 4)."""
    return -lr


def adam_step_size(lr, beta1, beta2, t):
    """``α_t = η √(1 − β2^t) / (1 − β1^t)`` (Eq. 12 bias correction; t = 1 for the first update)."""
    return lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


def adam_eps_terms(eps, placement, beta2, t):
    """``(ε_in, ε_out)`` of Adam's denominator √(v' + ε_in) + ε_out (SPEC §4).

    ``inside`` (Eq. 12 as printed): α_t m'/√(v'+ε) → ``(ε, 0)``. ``outside`` (torch.optim.Adam,
    the authors' real step): (η/(1−β1^t)) m'/(√v'/√(1−β2^t) + ε) = α_t m'/(√v' + ε√(1−β2^t))
    → ``(0, ε√(1−β2^t))``. One formula then serves both placements.
    """
    if placement == "inside":
        return eps, 0.0
    if placement == "outside":
        return 0.0, eps * np.sqrt(1.0 - beta2**t)
    raise ValueError(
        f"unknown eps placement {placement!r}; expected one of {', '.join(EPS_PLACEMENTS)}"
    )


def adam_moments(m, v, d, beta1, beta2):
    """``(m', v') = (β1 m + (1−β1) d, β2 v + (1−β2) d⊙d)`` (Eq. 13-14, β2 in the second)."""
    return beta1 * m + (1.0 - beta1) * d, beta2 * v + (1.0 - beta2) * d * d


def adam_direction(m_new, v_den, alpha, eps_in, eps_out):
    """``α_t m' / (√(v' + ε_in) + ε_out)``: the step Adam subtracts (Eq. 12; ``v_den`` is v', or
    the running max for AMSGrad)."""
    return alpha * m_new / (np.sqrt(v_den + eps_in) + eps_out)


def adam_step(theta, m, v, t, d, lr, beta1, beta2, eps, eps_placement="inside"):
    """Adam, Eq. 12-14 with Eq. 14's typo fixed (second moment uses β2); ε inside or outside the
    root (SPEC §4, :func:`adam_eps_terms`).

    ``t`` is the index of this update (1 for the first). Returns ``(Θ', m', v')``.
    """
    m_new, v_new = adam_moments(m, v, d, beta1, beta2)
    alpha = adam_step_size(lr, beta1, beta2, t)
    eps_in, eps_out = adam_eps_terms(eps, eps_placement, beta2, t)
    return theta - adam_direction(m_new, v_new, alpha, eps_in, eps_out), m_new, v_new


def adam_step_jacobian(m, v, t, d, lr, beta1, beta2, eps, eps_placement="inside"):
    """Elementwise ``∂Θ'/∂d`` of :func:`adam_step`, including the path through v' (SPEC §5 step 4).

    With D = √(v'+ε_in) + ε_out:
    ∂Θ'/∂d = −α_t [ (1−β1)/D − (1−β2) m' d / (√(v'+ε_in) D²) ]
    (ε inside: D = √(v'+ε), the familiar (v'+ε)^{3/2}; where v'+ε_in = 0, d = 0 and the second
    term is 0).
    """
    m_new, v_new = adam_moments(m, v, d, beta1, beta2)
    alpha = adam_step_size(lr, beta1, beta2, t)
    eps_in, eps_out = adam_eps_terms(eps, eps_placement, beta2, t)
    root = np.sqrt(v_new + eps_in)
    D = root + eps_out
    with np.errstate(divide="ignore", invalid="ignore"):
        v_path = np.where(root > 0, (1.0 - beta2) * m_new * d / (root * D * D), 0.0)
    return -alpha * ((1.0 - beta1) / D - v_path)


def amsgrad_step(theta, m, v, vmax, t, d, lr, beta1, beta2, eps, eps_placement="inside"):
    """AMSGrad (Reddi et al. 2018) as torch.optim.Adam(amsgrad=True) computes it: the running
    maximum of the *raw* second moment, ``v̂' = max(v̂, v')``, takes v''s place in
    :func:`adam_step`'s denominator (bias-corrected after the maximum). Returns
    ``(Θ', m', v', v̂')``."""
    m_new, v_new = adam_moments(m, v, d, beta1, beta2)
    vmax_new = np.maximum(vmax, v_new)
    alpha = adam_step_size(lr, beta1, beta2, t)
    eps_in, eps_out = adam_eps_terms(eps, eps_placement, beta2, t)
    return theta - adam_direction(m_new, vmax_new, alpha, eps_in, eps_out), m_new, v_new, vmax_new


def lazy_adam_step(theta, m, v, t, d, rows_active, lr, beta1, beta2, eps, eps_placement="inside"):
    """Row-sparse Adam: :func:`adam_step` on the rows where ``rows_active`` is true (the rows the
    batch touches); other rows keep Θ, m and v unchanged. ``t`` counts every step taken (the bias
    correction is global, as in TensorFlow's LazyAdam). Returns ``(Θ', m', v')``."""
    T2, m2, v2 = adam_step(theta, m, v, t, d, lr, beta1, beta2, eps, eps_placement)
    a = np.asarray(rows_active, bool)[:, None]
    return np.where(a, T2, theta), np.where(a, m2, m), np.where(a, v2, v)


def lazy_adam_step_jacobian(m, v, t, d, rows_active, lr, beta1, beta2, eps, eps_placement="inside"):
    """Elementwise ``∂Θ'/∂d`` of :func:`lazy_adam_step`: Adam's on active rows, 0 elsewhere."""
    jac = adam_step_jacobian(m, v, t, d, lr, beta1, beta2, eps, eps_placement)
    return np.where(np.asarray(rows_active, bool)[:, None], jac, 0.0)


# The registry of Θ optimizers -------------------------------------------------------------------
# Each rule takes ``(T, d, m, v, t, active, s)``: the table, the direction d, the moments, the
# update index t, the rows the batch touches, and the settings ``s`` (lr, beta1, beta2, eps,
# eps_placement: ``math.hypergradient.ThetaOptimizer``).


def _sgd(T, d, m, v, t, active, s):
    return sgd_step(T, d, s.lr), m, v


def _sgd_jacobian(T, d, m, v, t, active, s):
    return np.full_like(T, sgd_step_jacobian(s.lr))


def _adam(T, d, m, v, t, active, s):
    return adam_step(T, m, v, t, d, s.lr, s.beta1, s.beta2, s.eps, s.eps_placement)


def _adam_jacobian(T, d, m, v, t, active, s):
    return adam_step_jacobian(m, v, t, d, s.lr, s.beta1, s.beta2, s.eps, s.eps_placement)


def _lazy_adam(T, d, m, v, t, active, s):
    return lazy_adam_step(T, m, v, t, d, active, s.lr, s.beta1, s.beta2, s.eps, s.eps_placement)


def _lazy_adam_jacobian(T, d, m, v, t, active, s):
    return lazy_adam_step_jacobian(
        m, v, t, d, active, s.lr, s.beta1, s.beta2, s.eps, s.eps_placement
    )


class ThetaRule(NamedTuple):
    """One Θ optimizer f of SPEC §4, declared once: ``step`` → ``(Θ', m', v')``, its elementwise
    ``jacobian`` ∂Θ'/∂d (SPEC §5 step 4), ``row_sparse`` (steps only the batch's rows, so it
    needs the ``batch`` scope) and ``code``, the number the compiled kernels branch on
    (``lopt_np.kernels.OPTIMIZER_CODES``)."""

    step: Callable
    jacobian: Callable
    row_sparse: bool
    code: int


THETA_RULES = {
    "sgd": ThetaRule(_sgd, _sgd_jacobian, row_sparse=False, code=0),
    "adam": ThetaRule(_adam, _adam_jacobian, row_sparse=False, code=1),
    "lazy_adam": ThetaRule(_lazy_adam, _lazy_adam_jacobian, row_sparse=True, code=2),
}
THETA_OPTIMIZERS = tuple(THETA_RULES)
ROW_SPARSE_OPTIMIZERS = tuple(n for n, r in THETA_RULES.items() if r.row_sparse)


def theta_rule(name):
    """The :class:`ThetaRule` of ``name``; an unknown name is a ``ValueError`` naming the choices
    (never a fallback to another optimizer)."""
    try:
        return THETA_RULES[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}; expected one of {', '.join(THETA_OPTIMIZERS)}"
        ) from None
