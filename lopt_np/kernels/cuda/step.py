"""SPEC §5's two steps as the CUDA device runs them: the same functions with the same arguments
as ``kernels.cpu.step`` (the one driver that calls them is ``backends.kernel.KernelBackend``),
each a sequence of kernel launches on device-resident buffers.

Per step the host sends only index arrays (the batch's triplets, sampled on the host as for
every backend, and the order of the held rows, decided on the host with the CPU's
``hold_rows`` so both layers lay their compact buffers out identically) and receives one or two
float64 scalars (the batch loss, and with a clip the hypergradient's squared norm). Tables are
``kernels.groups.DeviceTableArrays``; ``work`` is :data:`CudaWork`.
"""

from collections import namedtuple

import numpy as np

from .. import ADAM, LAZY_ADAM, SGD
from ..cpu.hypergradient import hold_rows as order_held_rows, release_rows as release_host_rows
from .bpr import batch_sum, bpr_forward, bpr_grad_scatter
from .hypergradient import (
    accumulate_lambda_grad,
    lookahead_rows,
    map_held_rows,
    release_rows,
    zero_matrix_rows,
    zero_rows,
)
from .lambda_update import accumulate_sum_of_squares
from .optimizers import adam_update, lazy_adam_update, sgd_update

# The CUDA step's scratch on the device: the BPR margins δ and losses of one batch, the index
# arrays ``(users, pos, neg)`` of the training batch (B or B̄) and of the validation batch V,
# ``scalars`` = [loss sum, ‖G_Λ‖²] in float64, and pinned host arrays to clear and fetch them.
CudaWork = namedtuple(
    "CudaWork", ["delta", "loss", "train_idx", "valid_idx", "scalars", "zeros", "host_scalars"]
)

__all__ = ["lookahead_step", "theta_step", "release_rows", "CudaWork"]


def _hold(t, n_buffers, *row_arrays):
    """Hold the rows of the host arrays ``row_arrays`` (in the CPU's order) and clear the
    first ``n_buffers`` compact buffers and the counts; returns the number of held rows."""
    n = 0
    for rows in row_arrays:
        n = order_held_rows(rows, t.host_slot, t.host_held, n)
    release_host_rows(t.host_slot, t.host_held, n)
    t.held[:n].copy_to_device(t.host_held[:n])
    map_held_rows(t.slot, t.held, n)
    zero_rows(t.buf[:n_buffers], t.count, n)
    return n


def _upload(buffers, batch):
    """Copy a host batch (users, pos, neg) into preallocated device index arrays."""
    n = len(batch[0])
    out = []
    for dev, host in zip(buffers, batch):
        view = dev[:n]
        view.copy_to_device(np.ascontiguousarray(host, dtype=np.int64))
        out.append(view)
    return out


def _fetch(work):
    """``(loss sum, ‖G_Λ‖²)`` from the device."""
    work.scalars.copy_to_host(work.host_scalars)
    return float(work.host_scalars[0]), float(work.host_scalars[1])


def lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work):
    """SPEC §5 steps 1-4 (``kernels.cpu.step.lookahead_step``): holds V's rows, fills
    ``grads.G_P``/``grads.G_Q`` and returns ``(L_val(Θ̄), ‖G_Λ‖² or 0, rows held in P, rows
    held in Q)``."""
    f = tP.T.dtype.type
    nb, nv = len(Bbar[0]), len(V[0])
    nP = _hold(tP, 2, V[0])
    nQ = _hold(tQ, 2, V[1], V[2])
    rows_P = nP if layout_P[0] else 1
    rows_Q = nQ if layout_Q[0] else 1
    zero_matrix_rows(grads.G_P, rows_P)
    zero_matrix_rows(grads.G_Q, rows_Q)
    work.scalars.copy_to_device(work.zeros)
    ub, ib, jb = _upload(work.train_idx, Bbar)
    uv, iv, jv = _upload(work.valid_idx, V)
    delta, loss = work.delta, work.loss
    # 1. ḡ at Θ_t on the held rows, with their counts in B̄
    inv_b = f(1.0 / nb)
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
    )
    # 2. assumed step Θ̄ and ∂Θ̄/∂Λ on the held rows
    for t, n_held in ((tP, nP), (tQ, nQ)):
        lookahead_rows(
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
    bpr_forward(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, delta, loss)
    batch_sum(loss[:nv], work.scalars, 0)
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
    )
    # 4. G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ), and its squared norm for step 5's clip
    if grads.learn_P:
        accumulate_lambda_grad(tP.buf[1], tP.dTbar_dlam, nP, layout_P[0], grads.G_P)
    if grads.learn_Q:
        accumulate_lambda_grad(tQ.buf[1], tQ.dTbar_dlam, nQ, layout_Q[0], grads.G_Q)
    if grads.norm and grads.learn_P:
        accumulate_sum_of_squares(grads.G_P, rows_P, work.scalars, 1)
    if grads.norm and grads.learn_Q and not grads.tied:
        accumulate_sum_of_squares(grads.G_Q, rows_Q, work.scalars, 1)
    loss_sum, sq_norm = _fetch(work)
    return loss_sum / nv, sq_norm, nP, nQ


def batch_gradient(tP, tQ, B, work):
    """The first half of the real step: hold B's rows and put the BPR gradient on them
    (compact, with their counts). Returns ``(1/|B|, rows held in P, rows held in Q)``; the
    batch's loss sum is left in ``work.scalars[0]``."""
    n = len(B[0])
    f = tP.T.dtype.type
    inv = f(1.0 / n)
    nP = _hold(tP, 1, B[0])
    nQ = _hold(tQ, 1, B[1], B[2])
    work.scalars.copy_to_device(work.zeros)
    u, i, j = _upload(work.train_idx, B)
    bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, work.delta, work.loss)
    batch_sum(work.loss[:n], work.scalars, 0)
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
    )
    return inv, nP, nQ


def _finish(tP, tQ, B, nP, nQ, work):
    """Release the held rows; returns L_fit."""
    release_rows(tP.slot, tP.held, nP)
    release_rows(tQ.slot, tQ.held, nQ)
    loss_sum, _ = _fetch(work)
    return loss_sum / len(B[0])


# The real step, one function per Θ optimizer, as ``kernels.cpu.step.theta_step_*``.


def theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t in (tP, tQ):
        adam_update(
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
    return _finish(tP, tQ, B, nP, nQ, work)


def theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t, n_held in ((tP, nP), (tQ, nQ)):
        lazy_adam_update(
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
    return _finish(tP, tQ, B, nP, nQ, work)


def theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    inv, nP, nQ = batch_gradient(tP, tQ, B, work)
    for t, n_held in ((tP, nP), (tQ, nQ)):
        sgd_update(t.T, t.slot, t.held, n_held, t.buf[0], t.count, t.lam, inv, full_scope, step.lr)
    return _finish(tP, tQ, B, nP, nQ, work)


theta_step = {ADAM: theta_step_adam, LAZY_ADAM: theta_step_lazy_adam, SGD: theta_step_sgd}
