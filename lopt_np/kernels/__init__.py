"""Fast layer: Numba CPU kernels (``cpu``) and Numba CUDA kernels (``cuda``), file for file the
same names as ``lopt_np.math``. Kernels compute into preallocated arrays and return nothing
(or a scalar loss); host wrappers own allocation and settings."""
