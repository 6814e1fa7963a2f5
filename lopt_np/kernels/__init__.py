"""Fast layer: Numba CPU kernels (``cpu``) and Numba CUDA kernels (``cuda``), file for file the
same names as ``lopt_np.math``. Kernels compute into preallocated arrays and return nothing
(or a scalar loss); host wrappers own allocation and settings."""

# Θ-optimizer codes the kernels branch on (names as in ``math.optimizers.THETA_OPTIMIZERS``).
SGD, ADAM, LAZY_ADAM = 0, 1, 2
OPTIMIZER_CODES = {"sgd": SGD, "adam": ADAM, "lazy_adam": LAZY_ADAM}
