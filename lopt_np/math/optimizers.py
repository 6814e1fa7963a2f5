"""Θ optimizers and their derivatives with respect to the update direction d (Eq. 10-14; SPEC §4-5).

``d = g + ∂Ω/∂Θ`` is the regularized gradient. The real step and the λOpt lookahead call the
same update function; only the lookahead discards the new state.

``lazy_adam`` is the row-sparse Adam SPEC §4 allows as a separate optimizer: only the rows the
batch touches are stepped (their moments included); every other row, and its moments, stays as
it is. It is defined for the ``batch`` penalty scope, where untouched rows have d = 0.
"""
import numpy as np

THETA_OPTIMIZERS = ("sgd", "adam", "lazy_adam")
ROW_SPARSE_OPTIMIZERS = ("lazy_adam",)     # need the ``batch`` penalty scope


def check_optimizer_scope(optimizer, scope):
    """Raise ``ValueError`` for a row-sparse optimizer with the ``full`` scope (whose penalty
    gradient touches every row every step, so no row could be skipped)."""
    if optimizer in ROW_SPARSE_OPTIMIZERS and scope != "batch":
        raise ValueError(f"optimizer {optimizer!r} updates only the rows of the batch and needs "
                         f"the 'batch' penalty scope (got {scope!r})")


def sgd_step(theta, d, lr):
    """SGD, Eq. 10-11: ``Θ' = Θ − η d``."""
    return theta - lr * d


def sgd_step_jacobian(lr):
    """``∂Θ'/∂d = −η`` for SGD (elementwise; SPEC §5 step 4)."""
    return -lr


def adam_step_size(lr, beta1, beta2, t):
    """``α_t = η √(1 − β2^t) / (1 − β1^t)`` (Eq. 12 bias correction; t = 1 for the first update)."""
    return lr * np.sqrt(1.0 - beta2 ** t) / (1.0 - beta1 ** t)


def adam_step(theta, m, v, t, d, lr, beta1, beta2, eps):
    """Adam, Eq. 12-14 with Eq. 14's typo fixed (second moment uses β2), ε inside the root (SPEC §4).

    ``t`` is the index of this update (1 for the first). Returns ``(Θ', m', v')``.
    """
    m_new = beta1 * m + (1.0 - beta1) * d
    v_new = beta2 * v + (1.0 - beta2) * d * d
    alpha = adam_step_size(lr, beta1, beta2, t)
    return theta - alpha * m_new / np.sqrt(v_new + eps), m_new, v_new


def adam_step_jacobian(m, v, t, d, lr, beta1, beta2, eps):
    """Elementwise ``∂Θ'/∂d`` of :func:`adam_step`, including the path through v' (SPEC §5 step 4).

    ∂Θ'/∂d = −α_t [ (1−β1)/√(v'+ε) − (1−β2) m' d / (v'+ε)^{3/2} ]
    """
    m_new = beta1 * m + (1.0 - beta1) * d
    v_new = beta2 * v + (1.0 - beta2) * d * d
    alpha = adam_step_size(lr, beta1, beta2, t)
    s = v_new + eps
    return -alpha * ((1.0 - beta1) / np.sqrt(s) - (1.0 - beta2) * m_new * d / (s * np.sqrt(s)))


def amsgrad_step(theta, m, v, vmax, t, d, lr, beta1, beta2, eps):
    """AMSGrad (Reddi et al. 2018) with :func:`adam_step`'s conventions: the root uses
    ``max(v̂, v')`` so the effective step never grows. Returns ``(Θ', m', v', v̂')``."""
    m_new = beta1 * m + (1.0 - beta1) * d
    v_new = beta2 * v + (1.0 - beta2) * d * d
    vmax_new = np.maximum(vmax, v_new)
    alpha = adam_step_size(lr, beta1, beta2, t)
    return theta - alpha * m_new / np.sqrt(vmax_new + eps), m_new, v_new, vmax_new


def lazy_adam_step(theta, m, v, t, d, rows_active, lr, beta1, beta2, eps):
    """Row-sparse Adam: :func:`adam_step` on the rows where ``rows_active`` is true (the rows the
    batch touches); other rows keep Θ, m and v unchanged. ``t`` counts every step taken (the bias
    correction is global, as in TensorFlow's LazyAdam). Returns ``(Θ', m', v')``."""
    T2, m2, v2 = adam_step(theta, m, v, t, d, lr, beta1, beta2, eps)
    a = np.asarray(rows_active, bool)[:, None]
    return np.where(a, T2, theta), np.where(a, m2, m), np.where(a, v2, v)


def lazy_adam_step_jacobian(m, v, t, d, rows_active, lr, beta1, beta2, eps):
    """Elementwise ``∂Θ'/∂d`` of :func:`lazy_adam_step`: Adam's on active rows, 0 elsewhere."""
    jac = adam_step_jacobian(m, v, t, d, lr, beta1, beta2, eps)
    return np.where(np.asarray(rows_active, bool)[:, None], jac, 0.0)
