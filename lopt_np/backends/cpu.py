"""The Numba CPU backend: SPEC §5 on preallocated buffers.

Every step works on *held* rows (``kernels.cpu.hypergradient.hold_rows``): the real step holds
the rows its batch B touches and keeps its gradient compact; the lookahead holds the rows the
validation batch V touches and computes ḡ, Θ̄, G_Θ̄ and ∂Θ̄/∂Λ on those rows only (SPEC §5.4).
Nothing is allocated per step. Each step is one compiled call that runs the kernels in SPEC
order (``kernels.cpu.hypergradient.lookahead_step``, ``kernels.cpu.optimizers.theta_step``
per Θ optimizer), then the Λ update (step 5) of ``backends.kernel``.
"""

import math

import numpy as np

from ..granularity import learned_blocks
from ..kernels.cpu import lambda_update
from ..kernels.cpu.bpr import column_blocks
from ..kernels.cpu.hypergradient import lookahead_step, release_rows
from ..kernels.cpu.optimizers import absorb_assumed_gradient, theta_step
from ..kernels.groups import StepScalars, TableArrays
from .kernel import KernelBackend


class _Table:
    """One embedding table with its optimizer state and step buffers."""

    def __init__(self, T, lam, capacity):
        n, K = T.shape
        f = T.dtype
        self.T, self.lam = T, lam
        self.m, self.v = np.zeros_like(T), np.zeros_like(T)
        self.identity = np.arange(n, dtype=np.int64)  # slot map of the whole table
        self.slot = np.full(n, -1, np.int64)  # slot map of the held rows
        self.capacity = capacity
        self.held = np.zeros(capacity, np.int64)
        self.n_held = 0
        self.buf = np.zeros((2, capacity, K), f)  # [g or ḡ, G_Θ̄] on held rows
        self.count = np.zeros(capacity, np.int64)  # occurrences in B or B̄
        self.scratch_count = np.zeros(capacity, np.int64)
        self.Tbar = np.zeros((capacity, K), f)
        self.dTbar_dlam = np.zeros((capacity, K), f)
        # what the compiled steps take
        self.arrays = TableArrays(
            T,
            self.m,
            self.v,
            lam,
            self.identity,
            self.slot,
            self.held,
            self.buf,
            self.count,
            self.scratch_count,
            self.Tbar,
            self.dTbar_dlam,
        )

    def release(self):
        release_rows(self.slot, self.held, self.n_held)
        self.n_held = 0

    def assumed_arrays(self):
        """:attr:`arrays` with a second slot map, reverse map, gradient buffer and counts, for
        B̄'s rows while V's rows are still held (``shared_assumed_state``); allocated on first
        use."""
        if not hasattr(self, "_assumed_arrays"):
            n, K = self.T.shape
            cap = self.held.shape[0]
            self._assumed_arrays = self.arrays._replace(
                slot=np.full(n, -1, np.int64),
                held=np.zeros(cap, np.int64),
                buf=np.zeros((1, cap, K), self.T.dtype),
                count=np.zeros(cap, np.int64),
            )
        return self._assumed_arrays


def _layout(lam):
    """``(per_row, per_dim)`` of a Λ array."""
    return lam.shape[0] > 1, lam.shape[1] > 1


class CpuBackend(KernelBackend):
    lambda_kernels = lambda_update

    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=1024, max_valid_batch=1024, **kwargs):
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        lam_P = np.ascontiguousarray(lam_P, dtype=self.dtype)
        lam_Q = lam_P if self.granularity.tied else np.ascontiguousarray(lam_Q, dtype=self.dtype)
        rows = max(max_batch, max_valid_batch)
        self.tP = _Table(np.ascontiguousarray(P, dtype=self.dtype), lam_P, min(P.shape[0], rows))
        self.tQ = _Table(
            np.ascontiguousarray(Q, dtype=self.dtype), lam_Q, min(Q.shape[0], 2 * rows)
        )
        self._build_lambda_blocks(
            learned_blocks(self.granularity, lam_P, lam_Q) if self.learn_lambda else [], np.zeros
        )
        self._no_G = np.zeros((1, 1), self.dtype)
        self._G_P, self._G_Q = (
            self.block_of[id(t)].G if id(t) in self.block_of else self._no_G
            for t in (self.tP, self.tQ)
        )
        self._layouts = _layout(self.tP.lam), _layout(self.tQ.lam)
        nb = max(max_batch, max_valid_batch)
        self.delta = np.zeros(nb, self.dtype)
        self.loss = np.zeros(nb, self.dtype)

    # SPEC §5 steps 1-5 -------------------------------------------------------------------
    def lambda_step(self, train_batch, valid_batch):
        tP, tQ = self.tP, self.tQ
        step = self._step_scalars(*self._lookahead_scalars())
        val_loss, tP.n_held, tQ.n_held = lookahead_step(
            tP.arrays,
            tQ.arrays,
            train_batch,
            valid_batch,
            self.delta,
            self.loss,
            self._G_P,
            self._G_Q,
            *self._layouts,
            self._G_P is not self._no_G,
            self._G_Q is not self._no_G,
            self.lookahead.scope == "full",
            self.lookahead.assumed_penalty,
            self.code,
            step,
            column_blocks(),
        )
        if self.lookahead.shared_state:  # ḡ at the Λ of the assumed step, before step 5
            absorb_assumed_gradient(
                tP.assumed_arrays(),
                tQ.assumed_arrays(),
                train_batch,
                self.delta,
                self.loss,
                *self._layouts,
                self.lookahead.assumed_penalty,
                step,
                column_blocks(),
            )
            self.t += 1
        # 5. clip, Λ-optimizer step, projection
        norm = None
        if math.isfinite(self.lambda_opt.clip):
            norm = math.sqrt(
                sum(lambda_update.sum_of_squares(b.G, b.slot_held()[2]) for b in self.blocks)
            )
        self._update_lambda(norm)
        tP.release()
        tQ.release()
        return float(val_loss)

    # the real step ------------------------------------------------------------------------
    def theta_step(self, train_batch):
        self.t += 1
        step = self._step_scalars(
            *self._adam_scalars(self.theta_opt, self.t, self.theta_opt.eps_placement)
        )
        loss = theta_step[self.code](
            self.tP.arrays,
            self.tQ.arrays,
            train_batch,
            self.delta,
            self.loss,
            *self._layouts,
            self.scope == "full",
            step,
            column_blocks(),
        )
        return float(loss)

    def _step_scalars(self, alpha, eps_in, eps_out):
        """The :class:`~lopt_np.kernels.groups.StepScalars` of one Θ step (real or assumed)."""
        return StepScalars(alpha, self._lr, *self._betas, eps_in, eps_out)

    def mean_lambda(self):
        return float(self.tP.lam.mean()), float(self.tQ.lam.mean())

    def state_arrays(self):
        out = {
            "P": self.tP.T,
            "Q": self.tQ.T,
            "lam_P": self.tP.lam,
            "lam_Q": self.tQ.lam,
            "mP": self.tP.m,
            "vP": self.tP.v,
            "mQ": self.tQ.m,
            "vQ": self.tQ.v,
        }
        for k, block in enumerate(self.blocks):
            out.update(
                {f"lambda{k}_m": block.m, f"lambda{k}_v": block.v, f"lambda{k}_vmax": block.vmax}
            )
        return out
