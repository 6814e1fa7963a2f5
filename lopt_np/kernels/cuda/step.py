"""SPEC §5's two steps as the CUDA device runs them: ``kernels.step_order`` over this layer's
kernels, each kernel call a launch on device-resident buffers; the same functions with the same
arguments as ``kernels.cpu.step`` (the one driver that calls them is
``backends.kernel.KernelBackend``).

Per step the host sends only index arrays (the batch's triplets, sampled on the host as for
every backend, and the order of the held rows, decided on the host with the CPU's
``hold_in_table_order`` so both layers lay their compact buffers out identically) and receives
one or two float64 scalars (the batch loss, and with a clip the hypergradient's squared norm).
Tables are ``kernels.groups.DeviceTableArrays``; ``work`` is :data:`CudaWork`.
"""

from collections import namedtuple

import numpy as np

from .. import ADAM, LAZY_ADAM, SGD
from ..cpu.hypergradient import hold_in_table_order, release_rows as release_host_rows
from ..step_order import make_steps
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
# ``scalars`` = [loss sum, ‖G_Λ‖²] in float64, pinned host arrays to clear and fetch them, and
# ``nblocks`` (1: the scatter runs one thread per element and takes no column blocks).
CudaWork = namedtuple(
    "CudaWork",
    ["delta", "loss", "train_idx", "valid_idx", "scalars", "zeros", "host_scalars", "nblocks"],
)

__all__ = ["lookahead_step", "theta_step", "release_rows", "CudaWork"]


# --- what CUDA does where the layers differ (kernels.step_order) -----------------------------
def _hold(t, n_buffers, first, second):
    """Hold the rows of the host arrays (in the CPU's order: the table's), send that order to
    the device and clear the first ``n_buffers`` compact buffers and the counts."""
    n = hold_in_table_order(first, second, t.host_slot, t.host_held)
    release_host_rows(t.host_slot, t.host_held, n)
    t.held[:n].copy_to_device(t.host_held[:n])
    map_held_rows(t.slot, t.held, n)
    zero_rows(t.buf[:n_buffers], t.count, n)
    return n


def _on_device(work, which, batch):
    """Copy a host batch (users, pos, neg) into the preallocated device index arrays."""
    n = len(batch[0])
    out = []
    for dev, host in zip(work.valid_idx if which else work.train_idx, batch):
        view = dev[:n]
        view.copy_to_device(np.ascontiguousarray(host, dtype=np.int64))
        out.append(view)
    return out


def _clear_scalars(work):
    work.scalars.copy_to_device(work.zeros)


def _batch_loss(loss, n, work):
    batch_sum(loss[:n], work.scalars, 0)
    return 0.0


def _squared_norm(G, n_rows, work):
    accumulate_sum_of_squares(G, n_rows, work.scalars, 1)
    return 0.0


def _scalars(work, loss_sum, sq_norm):
    """``(loss sum, ‖G_Λ‖²)`` from the device, in one transfer."""
    work.scalars.copy_to_host(work.host_scalars)
    return float(work.host_scalars[0]), float(work.host_scalars[1])


def _no_deferred_rows(*args):
    """CUDA runs dense Adam over every row each step: no row waits (``kernels.step_order``)."""
    return False


def _any_layout(kernel):
    """``kernel`` with the Λ layout as its first two arguments, as the CPU's (CUDA reads it from
    Λ's shape)."""

    def of_layout(per_row, per_dim, *args):
        return kernel(*args)

    return of_layout


_steps = make_steps(
    hold=_hold,
    zero_lambda_grads=zero_matrix_rows,
    on_device=_on_device,
    clear_scalars=_clear_scalars,
    batch_loss=_batch_loss,
    squared_norm=_squared_norm,
    scalars=_scalars,
    bpr_forward=bpr_forward,
    bpr_grad_scatter=bpr_grad_scatter,
    lookahead_rows_of=_any_layout(lookahead_rows),
    accumulate_lambda_grad=accumulate_lambda_grad,
    release_rows=release_rows,
    adam_update_of=_any_layout(adam_update),
    lazy_adam_update_of=_any_layout(lazy_adam_update),
    sgd_update_of=_any_layout(sgd_update),
    catch_up=_no_deferred_rows,
    defers_rows=_no_deferred_rows,
    compile=lambda step: step,
)


# --- the steps (the arguments: kernels.step_order) -------------------------------------------
def lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work):
    """SPEC §5 steps 1-4 (``kernels.step_order``): returns ``(L_val(Θ̄), ‖G_Λ‖² or 0, rows
    held in P, rows held in Q)``."""
    return _steps.lookahead_step(tP, tQ, Bbar, V, grads, layout_P, layout_Q, rule, step, work)


def theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _steps.theta_step_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


def theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _steps.theta_step_lazy_adam(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


def theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work):
    return _steps.theta_step_sgd(tP, tQ, B, layout_P, layout_Q, full_scope, step, work)


theta_step = {ADAM: theta_step_adam, LAZY_ADAM: theta_step_lazy_adam, SGD: theta_step_sgd}
