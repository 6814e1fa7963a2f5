"""SPEC §5's two steps as the CPU runs them: ``kernels.step_order`` over this layer's kernels,
each step one compiled call with no return to Python between kernels (a λ step is ~15 kernels
of 0.01-0.3 ms each, so per-call host overhead would be a large share at ML-1M shape).
``kernels.cuda.step`` exports the same functions with the same arguments; the one driver that
calls them is ``backends.kernel.KernelBackend``.

The steps are compiled here as module-level functions, which Numba caches on disk (a closure
holding other compiled functions would not be: it pickles differently in every process).
``work`` is :data:`CpuWork`.
"""

from collections import namedtuple

from .. import ADAM, LAZY_ADAM, SGD
from ..step_order import make_steps
from ._jit import jit, layout_switch
from .bpr import bpr_forward, bpr_grad_scatter, sum_in_order
from .hypergradient import (
    accumulate_lambda_grad,
    hold_in_table_order,
    lookahead_rows,
    release_rows,
    zero_rows,
)
from .lambda_update import sum_of_squares
from .optimizers import (
    adam_catch_up,
    adam_moments_update,
    adam_update,
    lazy_adam_update,
    rows_behind,
    sgd_update,
)

# The CPU step's scratch: the BPR margins δ and losses of one batch, the number of column
# blocks of the gradient scatter (``bpr.column_blocks``: one per thread) and the deferred rows
# of dense Adam (:data:`DeferredRows`).
CpuWork = namedtuple("CpuWork", ["delta", "loss", "nblocks", "deferred"])

# Dense Adam's deferred rows (``kernels.step_order``, ``catch_up``): ``on`` (dense Adam with the
# batch scope), the last step each row of P and of Q has had (``last_P``, ``last_Q``), the
# steps done ``t``, the scalars ``alpha``, ``eps_in``, ``eps_out`` of steps ``base + 1 … t``
# (entry s − base − 1 for step s), β1, β2, c1, c2, and scratch for the rows behind and their
# last steps (``behind``, ``start``).
DeferredRows = namedtuple(
    "DeferredRows",
    [
        "on",
        "last_P",
        "last_Q",
        "t",
        "base",
        "alpha",
        "eps_in",
        "eps_out",
        "beta1",
        "beta2",
        "c1",
        "c2",
        "behind",
        "start",
    ],
)

__all__ = [
    "lookahead_step",
    "theta_step",
    "absorb_assumed_gradient",
    "release_rows",
    "catch_up_table",
    "CpuWork",
    "DeferredRows",
]


# --- what the CPU does where the layers differ (kernels.step_order) --------------------------
@jit
def _hold(t, n_buffers, first, second):
    n = hold_in_table_order(first, second, t.slot, t.held)
    zero_rows(t.buf[:n_buffers], t.count, n)
    return n


@jit
def _zero_lambda_grads(G, n_rows):
    G[:n_rows] = 0.0


@jit
def _on_host(work, which, batch):
    return batch


@jit
def _nothing(work):
    pass


@jit
def _batch_loss(loss, n, work):
    return sum_in_order(loss[:n])


@jit
def _squared_norm(G, n_rows, work):
    return sum_of_squares(G, n_rows)


@jit
def _scalars(work, loss_sum, sq_norm):
    return loss_sum, sq_norm


@jit
def catch_up_table(t, last, d, first, second, upto, mark):
    """Dense Adam's waiting steps (d = 0) of the rows of ``first`` and ``second`` in one table,
    up to step ``upto``; those rows are then marked as at step ``mark``
    (``optimizers.rows_behind``, ``optimizers.adam_catch_up``)."""
    n = rows_behind(
        second,
        last,
        upto,
        mark,
        d.behind,
        d.start,
        rows_behind(first, last, upto, mark, d.behind, d.start, 0),
    )
    if n:
        adam_catch_up(
            t.T,
            t.m,
            t.v,
            d.behind,
            d.start,
            n,
            upto,
            d.base,
            d.alpha,
            d.eps_in,
            d.eps_out,
            d.beta1,
            d.beta2,
            d.c1,
            d.c2,
        )


@jit
def _catch_up(tP, tQ, batch, ahead, work):
    d = work.deferred
    if d.on:
        catch_up_table(tP, d.last_P, d, batch[0], batch[0][:0], d.t - ahead, d.t)
        catch_up_table(tQ, d.last_Q, d, batch[1], batch[2], d.t - ahead, d.t)


@jit
def _defers_rows(work):
    return work.deferred.on


_steps = make_steps(
    hold=_hold,
    zero_lambda_grads=_zero_lambda_grads,
    on_device=_on_host,
    clear_scalars=_nothing,
    batch_loss=_batch_loss,
    squared_norm=_squared_norm,
    scalars=_scalars,
    bpr_forward=bpr_forward,
    bpr_grad_scatter=bpr_grad_scatter,
    lookahead_rows_of=layout_switch(lookahead_rows),
    accumulate_lambda_grad=accumulate_lambda_grad,
    release_rows=release_rows,
    adam_update_of=layout_switch(adam_update),
    lazy_adam_update_of=layout_switch(lazy_adam_update),
    sgd_update_of=layout_switch(sgd_update),
    catch_up=_catch_up,
    defers_rows=_defers_rows,
    compile=jit,
)
_lookahead_step, _batch_gradient = _steps.lookahead_step, _steps.batch_gradient
_adam, _lazy_adam, _sgd = _steps.theta_step_adam, _steps.theta_step_lazy_adam, _steps.theta_step_sgd
_adam_moments_update_of = layout_switch(adam_moments_update)


# --- the steps, compiled once here (the arguments: kernels.step_order) -----------------------
@jit
def lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work):
    """SPEC §5 steps 1-4 (``kernels.step_order``): returns ``(L_val(Θ̄), ‖G_Λ‖² or 0, rows
    held in P, rows held in Q)``."""
    return _lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work)


@jit
def theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


@jit
def theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


@jit
def theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


theta_step = {ADAM: theta_step_adam, LAZY_ADAM: theta_step_lazy_adam, SGD: theta_step_sgd}


@jit
def absorb_assumed_gradient(tP, tQ, Bbar, layout_P, layout_Q, with_penalty, step, work):
    """The assumed step's gradient ḡ on B̄ (BPR, plus B̄'s batch penalty when ``with_penalty``)
    entered into the real dense-Adam moments, as when the assumed copy shares the real
    optimizer's state (SPEC §8, ``shared_assumed_state``); the caller counts the step. ``tP``/
    ``tQ``: the tables with a second slot map and gradient buffer
    (``backends.kernel.Table.assumed_arrays``). CPU only."""
    inv, nP, nQ, _ = _batch_gradient(tP, tQ, Bbar, work)
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
