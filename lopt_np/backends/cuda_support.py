"""Whether the CUDA backend can run here, without importing any CUDA kernel (so that the
answer is one line even where Numba's CUDA target cannot be imported)."""

from ..errors import BackendUnavailableError


def cuda_module():
    """``numba.cuda`` when a GPU (or the simulator) is usable, else a one-line
    :class:`BackendUnavailableError` saying why."""
    try:
        import numba_cuda  # noqa: F401  (the maintained package; the `cuda` extra)
        from numba import cuda
    except ImportError:
        raise BackendUnavailableError(
            "--device cuda needs the numba-cuda package: pip install -e .[cuda]"
        ) from None
    try:
        available = cuda.is_available()
    except Exception as e:  # driver errors surface here on some machines
        raise BackendUnavailableError(f"CUDA is not usable here ({e}); use --device cpu") from None
    if not available:
        raise BackendUnavailableError(
            "no CUDA GPU is available (numba.cuda.is_available() is False); use --device cpu"
        )
    return cuda
