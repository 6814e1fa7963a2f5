"""The Numba CPU backend: SPEC §5 on preallocated host buffers.

Every step works on *held* rows (``kernels.cpu.hypergradient.hold_rows``): the real step holds
the rows its batch B touches and keeps its gradient compact; the lookahead holds the rows the
validation batch V touches and computes ḡ, Θ̄, G_Θ̄ and ∂Θ̄/∂Λ on those rows only (SPEC §5.4).
Nothing is allocated per step. The driver is ``backends.kernel.KernelBackend``; each of its
steps is one compiled call here (``kernels.cpu.step``).
"""

import numpy as np

from ..kernels.cpu import lambda_update, step
from ..kernels.cpu.bpr import column_blocks
from .kernel import KernelBackend


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

    def _work(self):
        return step.CpuWork(self.delta, self.loss, column_blocks())

    def mean_lambda(self):
        return float(self.lam_P.mean()), float(self.lam_Q.mean())

    def state_arrays(self):
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
