"""Numba CUDA kernels, file for file the names of ``lopt_np.kernels.cpu`` (SPEC §2-5, §7).

Each file holds ``@cuda.jit`` kernels (``_name``: compute on preallocated device arrays, return
nothing) and a host wrapper ``name`` with the CPU kernel's arguments that picks the launch
shape. The scalar formulas are those of ``lopt_np.kernels.elementwise``, compiled with
``cuda.jit(device=True)``. Repeated rows in a batch are accumulated with atomics, so no update
is lost; sums that go through float atomics are not bit-reproducible from run to run (their
order varies), unlike the CPU kernels.

Importing this package needs ``numba-cuda`` (the ``cuda`` extra); the kernels run on a GPU or,
with ``NUMBA_ENABLE_CUDASIM=1``, in Numba's simulator (the test suite's default).
"""
