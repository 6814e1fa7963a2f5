"""Λ update with the KKT slack of Eq. 8 (SPEC §5 step 5): clip G_Λ by its global L2 norm, one
step of the Λ optimizer (SGD, Adam or AMSGrad), then project ``Λ ← max(Λ, 0)``.

``rows`` says which entries an Adam/AMSGrad step updates: ``all`` (SPEC §5: the moments decay and
Λ moves on every entry, with G = 0 off the validation batch) or ``batch`` (only the rows of a
per-user or per-item Λ whose user or item is in the validation batch V; every other row keeps
its value and moments, as lazy Adam does for Θ; the bias correction counts every Λ step). SGD
moves only those rows either way, so both settings give it the same numbers.
"""

from typing import Callable, NamedTuple

import numpy as np

from .granularity import learned_blocks
from .optimizers import adam_step, amsgrad_step, sgd_step

LAMBDA_ROWS = ("all", "batch")


# The registry of Λ optimizers: ``step(Λ, G, m, v, v̂, t, opt)`` → ``(Λ', m', v', v̂')`` before the
# projection; ``opt`` is a :class:`LambdaOptimizer`.


def _sgd(lam, g, m, v, vmax, t, opt):
    return sgd_step(lam, g, opt.lr), m, v, vmax


def _adam(lam, g, m, v, vmax, t, opt):
    lam2, m2, v2 = adam_step(
        lam, m, v, t, g, opt.lr, opt.beta1, opt.beta2, opt.eps, opt.eps_placement
    )
    return lam2, m2, v2, vmax


def _amsgrad(lam, g, m, v, vmax, t, opt):
    return amsgrad_step(
        lam, m, v, vmax, t, g, opt.lr, opt.beta1, opt.beta2, opt.eps, opt.eps_placement
    )


class LambdaRule(NamedTuple):
    """One Λ optimizer of SPEC §5 step 5, declared once: ``step`` (the formulas above),
    ``moments`` (keeps Adam's m, v: the compiled layers' ``lambda_adam_update``; otherwise
    ``lambda_sgd_update``) and ``amsgrad`` (the running maximum v̂ takes v's place)."""

    step: Callable
    moments: bool
    amsgrad: bool


LAMBDA_RULES = {
    "sgd": LambdaRule(_sgd, moments=False, amsgrad=False),
    "adam": LambdaRule(_adam, moments=True, amsgrad=False),
    "amsgrad": LambdaRule(_amsgrad, moments=True, amsgrad=True),
}
LAMBDA_OPTIMIZERS = tuple(LAMBDA_RULES)


def lambda_rule(name):
    """The :class:`LambdaRule` of ``name``; an unknown name is a ``ValueError`` naming the
    choices."""
    try:
        return LAMBDA_RULES[name]
    except KeyError:
        raise ValueError(
            f"unknown lambda optimizer {name!r}; expected one of {', '.join(LAMBDA_OPTIMIZERS)}"
        ) from None


class LambdaOptimizer(NamedTuple):
    name: str = "adam"
    lr: float = 1e-2
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    clip: float = float("inf")  # max global L2 norm of G_Λ (inf: no clipping)
    eps_placement: str = "inside"  # Adam/AMSGrad's ε inside or outside the root (SPEC §4)
    rows: str = "all"  # entries Adam/AMSGrad update: all, or V's rows (batch)


def global_norm(grads):
    """``‖G‖₂`` over all learned Λ blocks together."""
    return float(np.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))


def clip_scale(norm, max_norm):
    """Factor that brings a gradient of norm ``norm`` to at most ``max_norm``: torch's
    ``clip_grad_norm_`` rule min(1, max/(‖G‖ + 1e-6)), so 1 below the threshold."""
    return min(1.0, max_norm / (norm + 1e-6))


def clip_by_global_norm(grads, max_norm):
    """Scale every block by :func:`clip_scale` of their joint norm (Eq. 8 slack: "clip G"; the
    Θ gradient's clip of SPEC §8 too); inf: unchanged."""
    if not np.isfinite(max_norm):
        return list(grads)
    s = clip_scale(global_norm(grads), max_norm)
    return [g * s for g in grads]


def project_nonnegative(lam):
    """KKT feasibility Λ ≥ 0 (Eq. 8): ``max(Λ, 0)``."""
    return np.maximum(lam, 0.0)


def init_lambda_optimizer_state(blocks):
    """Moments ``m, v, v̂`` per block (zeros) and the update count t = 0."""
    return {
        "m": [np.zeros_like(b) for b in blocks],
        "v": [np.zeros_like(b) for b in blocks],
        "vmax": [np.zeros_like(b) for b in blocks],
        "t": 0,
    }


def validation_rows(granularity, lam_P, lam_Q, valid_batch):
    """Per learned block (:func:`granularity.learned_blocks` order), the boolean mask of its rows
    whose user (Λ^P) or item (Λ^Q: positive or negative) is in the validation batch, or None for
    a Λ shared by all rows: the rows ``rows="batch"`` updates."""
    users, pos, neg = (np.asarray(a) for a in valid_batch)
    masks = []
    for lam in learned_blocks(granularity, lam_P, lam_Q):
        if lam.shape[0] == 1:
            masks.append(None)
            continue
        mask = np.zeros(lam.shape[0], bool)
        if lam is lam_P:
            mask[users] = True
        else:
            mask[pos] = True
            mask[neg] = True
        masks.append(mask)
    return masks


def lambda_step(blocks, grads, state, opt, row_masks=None):
    """Clip, optimizer step, projection (SPEC §5 step 5). ``row_masks`` (with ``opt.rows ==
    "batch"``): per block, the rows to update (:func:`validation_rows`; None: all). Returns
    ``(new blocks, new state)``."""
    rule = lambda_rule(opt.name)
    grads = clip_by_global_norm(grads, opt.clip)
    if opt.rows == "all" or row_masks is None:
        row_masks = [None] * len(blocks)
    t = state["t"] + 1
    new_blocks, m_new, v_new, vmax_new = [], [], [], []
    for lam, g, m, v, vmax, mask in zip(
        blocks, grads, state["m"], state["v"], state["vmax"], row_masks
    ):
        old = lam, m, v, vmax
        lam2, m, v, vmax = rule.step(lam, g, m, v, vmax, t, opt)
        lam2 = project_nonnegative(lam2)
        if mask is not None:  # rows off the batch keep value and moments
            keep = ~np.asarray(mask, bool)[:, None]
            lam2, m, v, vmax = (np.where(keep, a, b) for a, b in zip(old, (lam2, m, v, vmax)))
        new_blocks.append(lam2)
        m_new.append(m)
        v_new.append(v)
        vmax_new.append(vmax)
    return new_blocks, {"m": m_new, "v": v_new, "vmax": vmax_new, "t": t}
