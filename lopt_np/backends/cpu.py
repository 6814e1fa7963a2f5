"""The Numba CPU backend: SPEC §5 on preallocated buffers, with the lookahead restricted to the
rows the validation batch touches (SPEC §5.4)."""
import math

import numpy as np

from ..granularity import learned_blocks
from ..kernels.cpu.bpr import bpr_forward, bpr_grad_scatter, column_blocks, sum_in_order
from ..kernels.cpu.hypergradient import (accumulate_lambda_grad, hold_rows, lookahead_rows,
                                         release_rows, zero_rows)
from ..kernels.cpu.lambda_update import lambda_adam_update, lambda_sgd_update, sum_of_squares
from ..kernels.cpu.optimizers import adam_update, sgd_update
from ..math.lambda_update import clip_scale
from ..math.optimizers import adam_step_size
from .base import Backend


class _Table:
    """One embedding table with its optimizer state and step buffers."""

    def __init__(self, T, lam, max_held):
        n, K = T.shape
        f = T.dtype
        self.T, self.lam = T, lam
        self.m, self.v = np.zeros_like(T), np.zeros_like(T)
        self.g = np.zeros_like(T)                        # dense gradient of the real step
        self.count = np.zeros(n, np.int64)               # row occurrences in the real batch
        self.identity = np.arange(n, dtype=np.int64)     # slot map of the whole table
        self.slot = np.full(n, -1, np.int64)             # slot map of the held rows
        self.held = np.zeros(max_held, np.int64)
        self.n_held = 0
        self.buf = np.zeros((2, max_held, K), f)         # [ḡ on held rows, G_Θ̄ on held rows]
        self.held_count = np.zeros(max_held, np.int64)   # row occurrences in B̄
        self.scratch_count = np.zeros(max_held, np.int64)
        self.Tbar = np.zeros((max_held, K), f)
        self.dTbar_dlam = np.zeros((max_held, K), f)
        self.G_lam = None                                # accumulator of G_Λ (Λ's shape)


class CpuBackend(Backend):
    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=1024, max_valid_batch=1024,
                 **kwargs):
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        f = self.dtype.type
        lam_P = np.ascontiguousarray(lam_P, dtype=self.dtype)
        lam_Q = lam_P if self.granularity.tied else np.ascontiguousarray(lam_Q, dtype=self.dtype)
        self.tP = _Table(np.ascontiguousarray(P, dtype=self.dtype), lam_P,
                         min(P.shape[0], max_valid_batch))
        self.tQ = _Table(np.ascontiguousarray(Q, dtype=self.dtype), lam_Q,
                         min(Q.shape[0], 2 * max_valid_batch))
        self.blocks = learned_blocks(self.granularity, lam_P, lam_Q) if self.learn_lambda else []
        self.grads = [np.zeros_like(b) for b in self.blocks]
        for table, layout in ((self.tP, self.granularity.P), (self.tQ, self.granularity.Q)):
            if self.learn_lambda and layout.learned:
                table.G_lam = self.grads[[b is table.lam for b in self.blocks].index(True)]
        self.lam_m = [np.zeros_like(b) for b in self.blocks]
        self.lam_v = [np.zeros_like(b) for b in self.blocks]
        self.lam_vmax = [np.zeros_like(b) for b in self.blocks]
        nb = max(max_batch, max_valid_batch)
        self.delta = np.zeros(nb, self.dtype)
        self.loss = np.zeros(nb, self.dtype)
        o = self.theta_opt
        self._b1, self._b2, self._eps, self._lr = f(o.beta1), f(o.beta2), f(o.eps), f(o.lr)

    # SPEC §5 steps 1-5 -------------------------------------------------------------------
    def lambda_step(self, train_batch, valid_batch):
        f = self.dtype.type
        tP, tQ = self.tP, self.tQ
        ub, ib, jb = train_batch
        uv, iv, jv = valid_batch
        nb, nv = len(ub), len(uv)
        tP.n_held = hold_rows(uv, tP.slot, tP.held, 0)
        tQ.n_held = hold_rows(jv, tQ.slot, tQ.held, hold_rows(iv, tQ.slot, tQ.held, 0))
        for t in (tP, tQ):
            zero_rows(t.buf, t.held_count, t.n_held)
        # 1. ḡ at Θ_t, accumulated on the held rows only (with their counts in B̄)
        bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, ub, ib, jb, self.delta, self.loss)
        bpr_grad_scatter(tP.T, tQ.T, tP.identity, tQ.identity, ub, ib, jb, self.delta,
                         f(1.0 / nb), tP.slot, tQ.slot, tP.buf[0], tQ.buf[0], tP.held_count,
                         tQ.held_count, True, column_blocks())
        # 2. assumed step Θ̄ and ∂Θ̄/∂Λ on the held rows
        o = self.theta_opt
        use_adam = o.name == "adam"
        alpha = f(adam_step_size(o.lr, o.beta1, o.beta2, self.t + 1))
        for t in (tP, tQ):
            lookahead_rows(t.T, t.m, t.v, t.buf[0], t.held_count, t.held, t.n_held, t.lam,
                           f(1.0 / nb), self.scope == "full", use_adam, alpha, self._lr,
                           self._b1, self._b2, self._eps, t.Tbar, t.dTbar_dlam)
        # 3. L_val(Θ̄) and G_Θ̄ (compact rows: Θ̄ is addressed through the slot maps)
        bpr_forward(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, self.delta, self.loss)
        val_loss = sum_in_order(self.loss[:nv]) / nv
        bpr_grad_scatter(tP.Tbar, tQ.Tbar, tP.slot, tQ.slot, uv, iv, jv, self.delta,
                         f(1.0 / nv), tP.slot, tQ.slot, tP.buf[1], tQ.buf[1], tP.scratch_count,
                         tQ.scratch_count, False, column_blocks())
        # 4. G_Λ = reduce(G_Θ̄ ⊙ ∂Θ̄/∂Λ)
        for t in (tP, tQ):
            if t.G_lam is not None:
                accumulate_lambda_grad(t.buf[1], t.dTbar_dlam, t.held, t.n_held, t.G_lam)
            release_rows(t.slot, t.held, t.n_held)
        # 5. clip, Λ-optimizer step, projection
        self._update_lambda()
        return float(val_loss)

    def _update_lambda(self):
        f = self.dtype.type
        lo = self.lambda_opt
        norm = math.sqrt(sum(sum_of_squares(g) for g in self.grads))
        scale = f(clip_scale(norm, lo.clip))
        self.lambda_t += 1
        for lam, G, m, v, vmax in zip(self.blocks, self.grads, self.lam_m, self.lam_v,
                                      self.lam_vmax):
            if lo.name == "sgd":
                lambda_sgd_update(lam, G, scale, f(lo.lr))
            else:
                alpha = f(adam_step_size(lo.lr, lo.beta1, lo.beta2, self.lambda_t))
                lambda_adam_update(lam, G, m, v, vmax, scale, alpha, f(lo.beta1), f(lo.beta2),
                                   f(lo.eps), lo.name == "amsgrad")

    # the real step ------------------------------------------------------------------------
    def theta_step(self, train_batch):
        f = self.dtype.type
        tP, tQ = self.tP, self.tQ
        u, i, j = train_batch
        n = len(u)
        bpr_forward(tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, self.delta, self.loss)
        loss = sum_in_order(self.loss[:n]) / n
        bpr_grad_scatter(tP.T, tQ.T, tP.identity, tQ.identity, u, i, j, self.delta, f(1.0 / n),
                         tP.identity, tQ.identity, tP.g, tQ.g, tP.count, tQ.count, True,
                         column_blocks())
        self.t += 1
        o = self.theta_opt
        full = self.scope == "full"
        for t in (tP, tQ):
            if o.name == "adam":
                alpha = f(adam_step_size(o.lr, o.beta1, o.beta2, self.t))
                adam_update(t.T, t.m, t.v, t.g, t.count, t.lam, f(1.0 / n), full, alpha,
                            self._b1, self._b2, self._eps)
            else:
                sgd_update(t.T, t.g, t.count, t.lam, f(1.0 / n), full, self._lr)
        return float(loss)

    def parameters(self):
        return self.tP.T.copy(), self.tQ.T.copy(), self.tP.lam.copy(), self.tQ.lam.copy()

    def mean_lambda(self):
        return float(self.tP.lam.mean()), float(self.tQ.lam.mean())

    def all_finite(self):
        arrays = [self.tP.T, self.tQ.T, self.tP.m, self.tQ.m, self.tP.v, self.tQ.v,
                  self.tP.lam, self.tQ.lam]
        return all(np.isfinite(a).all() for a in arrays)
