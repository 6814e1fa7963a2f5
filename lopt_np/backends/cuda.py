"""The Numba CUDA backend: SPEC §5 on device-resident buffers.

Θ, its optimizer state, Λ and every step buffer live on the device for the whole run; nothing
is allocated per step. The driver is ``backends.kernel.KernelBackend``, the same as the CPU's;
its steps run ``kernels.cuda.step`` (what crosses to and from the device per step is said
there).
"""

import numpy as np

from ..kernels.cuda import lambda_update, step
from .cuda_support import cuda_module
from .kernel import KernelBackend


class CudaBackend(KernelBackend):
    step_kernels = step
    lambda_kernels = lambda_update

    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=1024, max_valid_batch=1024, **kwargs):
        cuda = cuda_module()
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        rows = max(max_batch, max_valid_batch)
        self._allocate(P, Q, lam_P, lam_Q, rows, cuda.to_device, host_maps=True)
        zeros = cuda.pinned_array(2, np.float64)
        zeros[:] = 0.0
        self._step_work = step.CudaWork(
            delta=cuda.to_device(np.zeros(rows, self.dtype)),
            loss=cuda.to_device(np.zeros(rows, self.dtype)),
            train_idx=[cuda.to_device(np.zeros(max_batch, np.int64)) for _ in range(3)],
            valid_idx=[cuda.to_device(np.zeros(max_valid_batch, np.int64)) for _ in range(3)],
            scalars=cuda.to_device(np.zeros(2, np.float64)),
            zeros=zeros,
            host_scalars=cuda.pinned_array(2, np.float64),
            nblocks=1,
        )

    def _work(self):
        return self._step_work

    def _to_host(self, a):
        return a.copy_to_host()

    def mean_lambda(self):
        work = self._step_work
        work.scalars.copy_to_device(work.zeros)
        lambda_update.row_sums(self.lam_P, work.scalars, 0)
        lambda_update.row_sums(self.lam_Q, work.scalars, 1)
        work.scalars.copy_to_host(work.host_scalars)
        sP, sQ = (float(x) for x in work.host_scalars)
        return sP / self.lam_P.size, sQ / self.lam_Q.size
