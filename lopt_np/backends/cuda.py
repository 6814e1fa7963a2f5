"""The Numba CUDA backend: SPEC §5 on device-resident buffers; mirrors ``backends.cpu``.

Θ, its optimizer state, Λ and every step buffer live on the device for the whole run. Per step
the host sends only index arrays (the batch's triplets, sampled on the host as for every
backend, and the order of the held rows) and receives one or two float64 scalars (the batch
loss, and with a clip the hypergradient's squared norm). Nothing is allocated per step.
"""

import math

import numpy as np

from ..granularity import learned_blocks
from ..kernels.cpu.hypergradient import hold_rows as order_held_rows, release_rows as host_release
from ..kernels.cuda import lambda_update
from ..kernels.cuda.bpr import batch_sum, bpr_forward, bpr_grad_scatter
from ..kernels.cuda.hypergradient import (
    accumulate_lambda_grad,
    hold_rows,
    lookahead_rows,
    release_rows,
    zero_matrix_rows,
    zero_rows,
)
from ..kernels.cuda.optimizers import adam_update, lazy_adam_update, sgd_update
from .kernel import KernelBackend
from .cuda_support import cuda_module


class _DeviceTable:
    """One embedding table on the device, with its optimizer state and step buffers."""

    def __init__(self, cuda, T, lam, capacity):
        n, K = T.shape
        f = T.dtype
        self.T, self.lam = cuda.to_device(T), lam
        self.m, self.v = cuda.to_device(np.zeros_like(T)), cuda.to_device(np.zeros_like(T))
        self.identity = cuda.to_device(np.arange(n, dtype=np.int64))
        self.slot = cuda.to_device(np.full(n, -1, np.int64))
        self.host_slot = np.full(n, -1, np.int64)  # decides the held order on the host
        self.host_held = np.zeros(capacity, np.int64)
        self.held = cuda.to_device(self.host_held)
        self.capacity = capacity
        self.n_held = 0
        self.buf = cuda.to_device(np.zeros((2, capacity, K), f))  # [g or ḡ, G_Θ̄]
        self.count = cuda.to_device(np.zeros(capacity, np.int64))
        self.scratch_count = cuda.to_device(np.zeros(capacity, np.int64))
        self.Tbar = cuda.to_device(np.zeros((capacity, K), f))
        self.dTbar_dlam = cuda.to_device(np.zeros((capacity, K), f))

    def hold(self, *row_arrays, buffers=2):
        """Hold the rows of the host arrays ``row_arrays`` (same order as the CPU backend);
        clear the first ``buffers`` compact buffers."""
        n = 0
        for rows in row_arrays:
            n = order_held_rows(rows, self.host_slot, self.host_held, n)
        host_release(self.host_slot, self.host_held, n)
        self.n_held = n
        self.held[:n].copy_to_device(self.host_held[:n])
        hold_rows(self.slot, self.held, n)
        zero_rows(self.buf[:buffers], self.count, n)

    def release(self):
        release_rows(self.slot, self.held, self.n_held)
        self.n_held = 0


class CudaBackend(KernelBackend):
    lambda_kernels = lambda_update

    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=1024, max_valid_batch=1024, **kwargs):
        cuda = cuda_module()
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        host_lam_P = np.ascontiguousarray(lam_P, dtype=self.dtype)
        host_lam_Q = (
            host_lam_P if self.granularity.tied else np.ascontiguousarray(lam_Q, dtype=self.dtype)
        )
        self.lam_P = cuda.to_device(host_lam_P)
        self.lam_Q = self.lam_P if self.granularity.tied else cuda.to_device(host_lam_Q)
        rows = max(max_batch, max_valid_batch)
        self.tP = _DeviceTable(
            cuda, np.ascontiguousarray(P, dtype=self.dtype), self.lam_P, min(P.shape[0], rows)
        )
        self.tQ = _DeviceTable(
            cuda, np.ascontiguousarray(Q, dtype=self.dtype), self.lam_Q, min(Q.shape[0], 2 * rows)
        )
        device_of = {id(host_lam_P): self.lam_P, id(host_lam_Q): self.lam_Q}
        learned = learned_blocks(self.granularity, host_lam_P, host_lam_Q)
        self._build_lambda_blocks(
            [device_of[id(h)] for h in learned] if self.learn_lambda else [],
            lambda shape, dtype: cuda.to_device(np.zeros(shape, dtype)),
        )
        self.delta = cuda.to_device(np.zeros(rows, self.dtype))
        self.loss = cuda.to_device(np.zeros(rows, self.dtype))
        # device index arrays of the training batch (B or B̄) and of the validation batch V
        self.train_idx = [cuda.to_device(np.zeros(max_batch, np.int64)) for _ in range(3)]
        self.valid_idx = [cuda.to_device(np.zeros(max_valid_batch, np.int64)) for _ in range(3)]
        self.scalars = cuda.to_device(np.zeros(2, np.float64))  # [loss sum, ‖G_Λ‖²]
        self._zeros = cuda.pinned_array(2, np.float64)
        self._zeros[:] = 0.0
        self._host_scalars = cuda.pinned_array(2, np.float64)

    @staticmethod
    def _upload(buffers, batch):
        """Copy a host batch (users, pos, neg) into preallocated device index arrays."""
        n = len(batch[0])
        out = []
        for dev, host in zip(buffers, batch):
            view = dev[:n]
            view.copy_to_device(np.ascontiguousarray(host, dtype=np.int64))
            out.append(view)
        return out

    def _fetch_scalars(self):
        self.scalars.copy_to_host(self._host_scalars)
        return float(self._host_scalars[0]), float(self._host_scalars[1])

    # SPEC §5 steps 1-5 -------------------------------------------------------------------
    def lambda_step(self, train_batch, valid_batch):
        f = self.dtype.type
        tP, tQ = self.tP, self.tQ
        nb, nv = len(train_batch[0]), len(valid_batch[0])
        tP.hold(valid_batch[0])
        tQ.hold(valid_batch[1], valid_batch[2])
        for b in self.blocks:
            zero_matrix_rows(b.G, b.slot_held()[2])
        self.scalars.copy_to_device(self._zeros)
        ub, ib, jb = self._upload(self.train_idx, train_batch)
        uv, iv, jv = self._upload(self.valid_idx, valid_batch)
        # 1. ḡ at Θ_t on the held rows (with their counts in B̄)
        bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, ub, ib, jb, self.delta, self.loss)
        bpr_grad_scatter(
            tP.T,
            tQ.T,
            tP.identity,
            tQ.identity,
            ub,
            ib,
            jb,
            self.delta,
            f(1.0 / nb),
            tP.slot,
            tQ.slot,
            tP.buf[0],
            tQ.buf[0],
            tP.count,
            tQ.count,
            True,
        )
        # 2. assumed step Θ̄ and ∂Θ̄/∂Λ on the held rows
        alpha, eps_in, eps_out = self._lookahead_scalars()
        rule = self.lookahead
        for t in (tP, tQ):
            lookahead_rows(
                t.T,
                t.m,
                t.v,
                t.buf[0],
                t.count,
                t.held,
                t.n_held,
                t.lam,
                f(1.0 / nb),
                rule.scope == "full",
                rule.assumed_penalty,
                self.code,
                alpha,
                self._lr,
                *self._betas,
                eps_in,
                eps_out,
                t.Tbar,
                t.dTbar_dlam,
            )
        # 3. L_val(Θ̄) and G_Θ̄ (compact rows: Θ̄ is addressed through the slot maps)
        bpr_forward(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, self.delta, self.loss)
        batch_sum(self.loss[:nv], self.scalars, 0)
        bpr_grad_scatter(
            tP.Tbar,
            tQ.Tbar,
            tP.slot,
            tQ.slot,
            uv,
            iv,
            jv,
            self.delta,
            f(1.0 / nv),
            tP.slot,
            tQ.slot,
            tP.buf[1],
            tQ.buf[1],
            tP.scratch_count,
            tQ.scratch_count,
            False,
        )
        # 4. G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ)
        for t in (tP, tQ):
            b = self.block_of.get(id(t))
            if b is not None:
                accumulate_lambda_grad(t.buf[1], t.dTbar_dlam, t.n_held, b.table is not None, b.G)
        # 5. clip, Λ-optimizer step, projection
        clip = math.isfinite(self.lambda_opt.clip)
        if clip:
            for b in self.blocks:
                lambda_update.sum_of_squares(b.G, b.slot_held()[2], self.scalars, 1)
        loss_sum, sq_norm = self._fetch_scalars()
        self._update_lambda(math.sqrt(sq_norm) if clip else None)
        tP.release()
        tQ.release()
        return loss_sum / nv

    # the real step ------------------------------------------------------------------------
    def theta_step(self, train_batch):
        f = self.dtype.type
        tP, tQ = self.tP, self.tQ
        n = len(train_batch[0])
        tP.hold(train_batch[0], buffers=1)
        tQ.hold(train_batch[1], train_batch[2], buffers=1)
        self.scalars.copy_to_device(self._zeros)
        u, i, j = self._upload(self.train_idx, train_batch)
        bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, self.delta, self.loss)
        batch_sum(self.loss[:n], self.scalars, 0)
        bpr_grad_scatter(
            tP.T,
            tQ.T,
            tP.identity,
            tQ.identity,
            u,
            i,
            j,
            self.delta,
            f(1.0 / n),
            tP.slot,
            tQ.slot,
            tP.buf[0],
            tQ.buf[0],
            tP.count,
            tQ.count,
            True,
        )
        self.t += 1
        o = self.theta_opt
        full = self.scope == "full"
        inv = f(1.0 / n)
        alpha, eps_in, eps_out = self._adam_scalars(o, self.t, o.eps_placement)
        for t in (tP, tQ):
            if o.name == "adam":
                adam_update(
                    t.T,
                    t.m,
                    t.v,
                    t.slot,
                    t.buf[0],
                    t.count,
                    t.lam,
                    inv,
                    full,
                    alpha,
                    *self._betas,
                    eps_in,
                    eps_out,
                )
            elif o.name == "lazy_adam":
                lazy_adam_update(
                    t.T,
                    t.m,
                    t.v,
                    t.held,
                    t.n_held,
                    t.buf[0],
                    t.count,
                    t.lam,
                    inv,
                    alpha,
                    *self._betas,
                    eps_in,
                    eps_out,
                )
            else:  # "sgd" (check_settings admits no other name)
                sgd_update(
                    t.T, t.slot, t.held, t.n_held, t.buf[0], t.count, t.lam, inv, full, self._lr
                )
            t.release()
        loss_sum, _ = self._fetch_scalars()
        return loss_sum / n

    def _to_host(self, a):
        return a.copy_to_host()

    def mean_lambda(self):
        self.scalars.copy_to_device(self._zeros)
        lambda_update.row_sums(self.lam_P, self.scalars, 0)
        lambda_update.row_sums(self.lam_Q, self.scalars, 1)
        sP, sQ = self._fetch_scalars()
        return sP / self.lam_P.size, sQ / self.lam_Q.size
