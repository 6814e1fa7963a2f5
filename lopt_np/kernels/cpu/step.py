"""SPEC §5's two steps as the CPU runs them: each one compiled call over the kernels of
``bpr``, ``hypergradient`` and ``optimizers``, with no return to Python between kernels (a λ
step is ~15 kernels of 0.01-0.3 ms each, so per-call host overhead would be a large share at
ML-1M shape). ``kernels.cuda.step`` has the same functions with the same arguments; the one
driver that calls them is ``backends.kernel.KernelBackend``.

Arguments, on both layers: ``tP``/``tQ`` the tables (``kernels.groups.TableArrays``), batches
``(users, pos, neg)`` sampled on the host, a layout ``(per_row, per_dim)`` of each table's Λ,
``step`` a ``kernels.groups.StepScalars``, ``work`` the backend's scratch (:data:`CpuWork`).
"""

from collections import namedtuple

from .. import ADAM, LAZY_ADAM, SGD
from ._jit import jit, layout_switch
from .bpr import bpr_forward, bpr_grad_scatter, sum_in_order
from .hypergradient import (
    accumulate_lambda_grad,
    hold_rows,
    lookahead_rows,
    release_rows,
    zero_rows,
)
from .lambda_update import sum_of_squares
from .optimizers import adam_moments_update, adam_update, lazy_adam_update, sgd_update

# The CPU step's scratch: the BPR margins δ and losses of one batch, and the number of column
# blocks of the gradient scatter (``bpr.column_blocks``: one per thread).
CpuWork = namedtuple("CpuWork", ["delta", "loss", "nblocks"])

__all__ = ["lookahead_step", "theta_step", "absorb_assumed_gradient", "release_rows", "CpuWork"]

_lookahead_rows_of = layout_switch(lookahead_rows)
_adam_update_of = layout_switch(adam_update)
_adam_moments_update_of = layout_switch(adam_moments_update)
_lazy_adam_update_of = layout_switch(lazy_adam_update)
_sgd_update_of = layout_switch(sgd_update)


@jit
def lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work):
    """SPEC §5 steps 1-4: holds V's rows (the caller releases them after step 5), fills
    ``grads.G_P``/``grads.G_Q`` (``kernels.groups.LambdaGrads``; one array when Λ is tied) and
    returns ``(L_val(Θ̄), ‖G_Λ‖² or 0, rows held in P, rows held in Q)``. ``rule`` and
    ``step`` are the lookahead's (``kernels.groups.LookaheadRule``; SPEC §8: they may differ
    from the real step's)."""
    ub, ib, jb = Bbar
    uv, iv, jv = V
    delta, loss = work.delta, work.loss
    f = tP.T.dtype.type
    nP = hold_rows(uv, tP.slot, tP.held, 0)
    nQ = hold_rows(jv, tQ.slot, tQ.held, hold_rows(iv, tQ.slot, tQ.held, 0))
    zero_rows(tP.buf, tP.count, nP)
    zero_rows(tQ.buf, tQ.count, nQ)
    rows_P = nP if layout_P[0] else 1
    rows_Q = nQ if layout_Q[0] else 1
    grads.G_P[:rows_P] = 0.0
    grads.G_Q[:rows_Q] = 0.0
    # 1. ḡ at Θ_t on the held rows, with their counts in B̄
    inv_b = f(1.0 / ub.shape[0])
    bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, ub, ib, jb, delta, loss)
    bpr_grad_scatter(
        tP.T,
        tQ.T,
        tP.identity,
        tQ.identity,
        ub,
        ib,
        jb,
        delta,
        inv_b,
        tP.slot,
        tQ.slot,
        tP.buf[0],
        tQ.buf[0],
        tP.count,
        tQ.count,
        True,
        work.nblocks,
    )
    # 2. assumed step Θ̄ and ∂Θ̄/∂Λ on the held rows
    for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
        _lookahead_rows_of(
            per_row,
            per_dim,
            t.T,
            t.m,
            t.v,
            t.buf[0],
            t.count,
            t.held,
            n_held,
            t.lam,
            inv_b,
            rule.full_scope,
            rule.assumed_penalty,
            rule.optimizer,
            step.alpha,
            step.lr,
            step.beta1,
            step.beta2,
            step.c1,
            step.c2,
            step.eps_in,
            step.eps_out,
            t.Tbar,
            t.dTbar_dlam,
        )
    # 3. L_val(Θ̄) and G_Θ̄ (Θ̄ is compact: addressed through the slot maps)
    nv = uv.shape[0]
    bpr_forward(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, delta, loss)
    val_loss = sum_in_order(loss[:nv]) / nv
    bpr_grad_scatter(
        tP.Tbar,
        tQ.Tbar,
        tP.slot,
        tQ.slot,
        uv,
        iv,
        jv,
        delta,
        f(1.0 / nv),
        tP.slot,
        tQ.slot,
        tP.buf[1],
        tQ.buf[1],
        tP.scratch_count,
        tQ.scratch_count,
        False,
        work.nblocks,
    )
    # 4. G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ), and its squared norm for step 5's clip
    if grads.learn_P:
        accumulate_lambda_grad(tP.buf[1], tP.dTbar_dlam, nP, layout_P[0], grads.G_P)
    if grads.learn_Q:
        accumulate_lambda_grad(tQ.buf[1], tQ.dTbar_dlam, nQ, layout_Q[0], grads.G_Q)
    sq_norm = 0.0
    if grads.norm and grads.learn_P:
        sq_norm += sum_of_squares(grads.G_P, rows_P)
    if grads.norm and grads.learn_Q and not grads.tied:
        sq_norm += sum_of_squares(grads.G_Q, rows_Q)
    return val_loss, sq_norm, nP, nQ


@jit
def batch_gradient(tP, tQ, B, work):
    """The first half of the real step: hold B's rows and put the BPR gradient on them
    (compact, with their counts). Returns ``(L_fit, 1/|B|, rows held in P, rows held in Q)``."""
    u, i, j = B
    n = u.shape[0]
    inv = tP.T.dtype.type(1.0 / n)
    nP = hold_rows(u, tP.slot, tP.held, 0)
    nQ = hold_rows(j, tQ.slot, tQ.held, hold_rows(i, tQ.slot, tQ.held, 0))
    zero_rows(tP.buf[:1], tP.count, nP)
    zero_rows(tQ.buf[:1], tQ.count, nQ)
    bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, work.delta, work.loss)
    bpr_grad_scatter(
        tP.T,
        tQ.T,
        tP.identity,
        tQ.identity,
        u,
        i,
        j,
        work.delta,
        inv,
        tP.slot,
        tQ.slot,
        tP.buf[0],
        tQ.buf[0],
        tP.count,
        tQ.count,
        True,
        work.nblocks,
    )
    return sum_in_order(work.loss[:n]) / n, inv, nP, nQ


# The real step (SPEC §5, last paragraph) as one compiled call per Θ optimizer (only the one in
# use is compiled): ``batch_gradient``, the fused update of each table for its Λ layout, release
# of the held rows. All three take ``(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)``
# (``step``: the real step's scalars; ε terms: ``math.optimizers.adam_eps_terms``) and return
# L_fit.


@jit
def theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    fit_loss, inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t, (per_row, per_dim) in ((tP, layout_P), (tQ, layout_Q)):
        _adam_update_of(
            per_row,
            per_dim,
            t.T,
            t.m,
            t.v,
            t.slot,
            t.buf[0],
            t.count,
            t.lam,
            inv,
            full_scope,
            step.alpha,
            step.beta1,
            step.beta2,
            step.c1,
            step.c2,
            step.eps_in,
            step.eps_out,
        )
    release_rows(tP.slot, tP.held, nP)
    release_rows(tQ.slot, tQ.held, nQ)
    return fit_loss


@jit
def theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    fit_loss, inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
        _lazy_adam_update_of(
            per_row,
            per_dim,
            t.T,
            t.m,
            t.v,
            t.held,
            n_held,
            t.buf[0],
            t.count,
            t.lam,
            inv,
            step.alpha,
            step.beta1,
            step.beta2,
            step.c1,
            step.c2,
            step.eps_in,
            step.eps_out,
        )
    release_rows(tP.slot, tP.held, nP)
    release_rows(tQ.slot, tQ.held, nQ)
    return fit_loss


@jit
def theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    fit_loss, inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t, n_held, (per_row, per_dim) in ((tP, nP, layout_P), (tQ, nQ, layout_Q)):
        _sgd_update_of(
            per_row,
            per_dim,
            t.T,
            t.slot,
            t.held,
            n_held,
            t.buf[0],
            t.count,
            t.lam,
            inv,
            full_scope,
            step.lr,
        )
    release_rows(tP.slot, tP.held, nP)
    release_rows(tQ.slot, tQ.held, nQ)
    return fit_loss


theta_step = {ADAM: theta_step_adam, LAZY_ADAM: theta_step_lazy_adam, SGD: theta_step_sgd}


@jit
def absorb_assumed_gradient(tP, tQ, Bbar, layout_P, layout_Q, with_penalty, step, work):
    """The assumed step's gradient ḡ on B̄ (BPR, plus B̄'s batch penalty when ``with_penalty``)
    entered into the real dense-Adam moments, as when the assumed copy shares the real
    optimizer's state (SPEC §8, ``shared_assumed_state``); the caller counts the step. ``tP``/
    ``tQ``: the tables with a second slot map and gradient buffer
    (``backends.kernel.Table.assumed_arrays``). CPU only."""
    _, inv, nP, nQ = batch_gradient(tP, tQ, Bbar, work)
    for t, (per_row, per_dim) in ((tP, layout_P), (tQ, layout_Q)):
        _adam_moments_update_of(
            per_row,
            per_dim,
            t.T,
            t.m,
            t.v,
            t.slot,
            t.buf[0],
            t.count,
            t.lam,
            inv,
            with_penalty,
            step.beta1,
            step.beta2,
            step.c1,
            step.c2,
        )
    release_rows(tP.slot, tP.held, nP)
    release_rows(tQ.slot, tQ.held, nQ)
