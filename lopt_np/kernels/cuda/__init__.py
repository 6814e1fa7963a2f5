"""Numba CUDA kernels, file for file the names of ``lopt_np.kernels.cpu`` (planned, issue 6).

They will compile the scalar formulas of ``lopt_np.kernels.elementwise`` with
``numba.cuda.jit(device=True)`` and accumulate repeated rows with atomics."""
