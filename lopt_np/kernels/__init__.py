"""Fast layer: Numba CPU kernels (``cpu``) and Numba CUDA kernels (``cuda``), file for file the
same names as ``lopt_np.math``. Kernels compute into preallocated arrays and return nothing
(or a scalar loss); host wrappers own allocation and settings."""

from ..math.optimizers import THETA_RULES

# Θ-optimizer codes the kernels branch on, from the registry ``math.optimizers.THETA_RULES``.
OPTIMIZER_CODES = {name: rule.code for name, rule in THETA_RULES.items()}
SGD, ADAM, LAZY_ADAM = (OPTIMIZER_CODES[n] for n in ("sgd", "adam", "lazy_adam"))
