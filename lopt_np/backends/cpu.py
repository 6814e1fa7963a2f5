"""The Numba CPU backend: SPEC §5 on preallocated host buffers.

Every step works on *held* rows (``kernels.cpu.hypergradient.hold_rows``): the real step holds
the rows its batch B touches and keeps its gradient compact; the lookahead holds the rows the
validation batch V touches and computes ḡ, Θ̄, G_Θ̄ and ∂Θ̄/∂Λ on those rows only (SPEC §5.4).
Nothing is allocated per step. The driver is ``backends.kernel.KernelBackend``; each of its
steps is one compiled call here (``kernels.cpu.step``).

Dense Adam with the ``batch`` scope defers the rows no batch touches, where the tables are large
against the batch (:data:`DEFER_ROWS`; ``kernels.step_order``, "deferred rows"): their steps
run when a batch next reads them, and for every row before Θ, its moments or a check leave the
backend (:meth:`CpuBackend.parameters`, ``all_finite``, ``state_arrays``). The results are
bit-identical to a pass over every row each step, with a fraction of the memory traffic
(docs/performance.rst, "Deferred rows").
"""

import numpy as np

from ..kernels import ADAM
from ..kernels.cpu import lambda_update, step
from ..kernels.cpu.bpr import column_blocks
from .kernel import KernelBackend


# Dense Adam with the batch scope defers the rows a step does not touch (bit-identical) when
# DEFER_ROWS is True, or when it is "auto" (the default) and the tables hold at least
# DEFER_ROWS_PER_BATCH_ROW rows per triplet of the largest batch: a step then reads few of
# them. Where it reads many, the rows it reads are visited twice (caught up, then read) and the
# pass over every row is as fast. Measured (``benchmarks/bench_deferred.py``, 2026-12-03, 2
# cores, epochs deferred ÷ every row, fixed-λ and λOpt-DUI): ML-1M shape (9,746 rows, batch
# 1024) 1.06× and 0.94×; ML-10M shape (80,555 rows) 1.65× and 1.37×. False: never (tests).
DEFER_ROWS = "auto"
DEFER_ROWS_PER_BATCH_ROW = 16


def _on_host(a):
    """The CPU's ``to_device``: arrays stay where they are (Θ trains in the caller's array
    when it is already contiguous in the run's dtype)."""
    return a


class CpuBackend(KernelBackend):
    step_kernels = step
    lambda_kernels = lambda_update

    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=1024, max_valid_batch=1024, **kwargs):
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        rows = max(max_batch, max_valid_batch)
        self._allocate(P, Q, lam_P, lam_Q, rows, _on_host)
        self.delta = np.zeros(rows, self.dtype)
        self.loss = np.zeros(rows, self.dtype)
        few_rows_read = P.shape[0] + Q.shape[0] >= DEFER_ROWS_PER_BATCH_ROW * rows
        self.defers_rows = (DEFER_ROWS is True or (DEFER_ROWS == "auto" and few_rows_read)) and (
            self.code == ADAM and self.scope == "batch" and not self.lookahead.shared_state
        )
        n = max(P.shape[0], Q.shape[0])
        self._last = tuple(np.zeros(t.arrays.T.shape[0], np.int64) for t in (self.tP, self.tQ))
        self._behind, self._start = np.zeros(n, np.int64), np.zeros(n, np.int64)
        self._base = 0  # every row has had steps 1 … base
        self._history = np.zeros((3, 1024), self.dtype)  # α, ε_in, ε_out of steps base + 1 …

    def _work(self):
        return step.CpuWork(self.delta, self.loss, column_blocks(), self._deferred())

    def _deferred(self):
        """The :data:`~lopt_np.kernels.cpu.step.DeferredRows` of the current step."""
        alpha, eps_in, eps_out = self._history
        return step.DeferredRows(
            self.defers_rows,
            *self._last,
            self.t,
            self._base,
            alpha,
            eps_in,
            eps_out,
            *self._betas,
            self._behind,
            self._start,
        )

    def theta_step(self, train_batch):
        if self.defers_rows:  # keep step t's scalars for the rows whose step t waits
            i = self.t - self._base
            if i == self._history.shape[1]:
                self._history = np.concatenate([self._history, np.zeros_like(self._history)], 1)
            o = self.theta_opt
            self._history[:, i] = self._adam_scalars(o, self.t + 1, o.eps_placement)
        return super().theta_step(train_batch)

    def bring_rows_up_to_date(self):
        """Run every row's waiting steps: Θ and its moments as a pass over every row each step
        would have left them."""
        if self.defers_rows and self._base < self.t:
            d = self._deferred()
            for t, last in zip((self.tP, self.tQ), self._last):
                rows = t.arrays.identity
                step.catch_up_table(t.arrays, last, d, rows, rows[:0], self.t, self.t)
        self._base = self.t

    def parameters(self):
        self.bring_rows_up_to_date()
        return super().parameters()

    def all_finite(self):
        self.bring_rows_up_to_date()
        return super().all_finite()

    def mean_lambda(self):
        return float(self.lam_P.mean()), float(self.lam_Q.mean())

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        for last in self._last:  # a checkpoint holds every row up to date
            last[:] = self.t
        self._base = self.t

    def state_arrays(self):
        self.bring_rows_up_to_date()
        tP, tQ = self.tP.arrays, self.tQ.arrays
        out = {
            "P": tP.T,
            "Q": tQ.T,
            "lam_P": self.lam_P,
            "lam_Q": self.lam_Q,
            "mP": tP.m,
            "vP": tP.v,
            "mQ": tQ.m,
            "vQ": tQ.v,
        }
        for k, block in enumerate(self.blocks):
            out.update(
                {f"lambda{k}_m": block.m, f"lambda{k}_v": block.v, f"lambda{k}_vmax": block.vmax}
            )
        return out
