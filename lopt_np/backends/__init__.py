"""Compute backends behind the one trainer. Each implements :class:`Backend`:

- ``reference``: the plain NumPy functions of ``lopt_np.math`` on whole tables (slow, exact
  SPEC; used to test the others),
- ``cpu``: the Numba kernels of ``lopt_np.kernels.cpu``,
- ``cuda``: the Numba CUDA kernels of ``lopt_np.kernels.cuda`` (state kept on the GPU); where
  numba-cuda or a GPU is missing, asking for it raises :class:`BackendUnavailableError`.

All of them receive the same host-sampled triplets, so their results can be compared directly.
"""

from ..errors import ConfigError
from .base import Backend

BACKENDS = ("cpu", "reference", "cuda")


def make_backend(name, *args, **kwargs):
    """Instantiate the backend ``name`` (see :data:`BACKENDS`)."""
    if name == "cpu":
        from .cpu import CpuBackend

        return CpuBackend(*args, **kwargs)
    if name == "reference":
        from .reference import ReferenceBackend

        return ReferenceBackend(*args, **kwargs)
    if name == "cuda":
        from .cuda_support import cuda_module

        cuda_module()  # one-line error before the kernels are imported
        from .cuda import CudaBackend

        return CudaBackend(*args, **kwargs)
    raise ConfigError(f"unknown device/backend {name!r}; expected one of {', '.join(BACKENDS)}")


__all__ = ["Backend", "BACKENDS", "make_backend"]
