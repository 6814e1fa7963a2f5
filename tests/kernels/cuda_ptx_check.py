"""Compile every CUDA kernel of ``lopt_np.kernels.cuda`` to PTX with the real NVVM compiler (no
GPU needed) for float32 and float64 tables, and print, as JSON, each kernel's count of float64
arithmetic instructions. Run by ``tests/kernels/test_kernels_cuda.py`` in a subprocess without the
simulator; exits with status 3 and the reason on stderr when NVVM/NVRTC cannot be found.

The simulator runs kernels as plain Python, so it cannot catch a construct that Numba CUDA does
not compile, nor a silent float64 promotion in a float32 kernel; this check does both.
"""

import json
import os
import re
import sys

os.environ["NUMBA_ENABLE_CUDASIM"] = "0"

from numba import boolean, cuda, float64, int64, uint8  # noqa: E402
from numba.cuda import dispatcher as _dispatcher  # noqa: E402

from lopt_np.kernels.cuda import bpr, evaluation, hypergradient, lambda_update, optimizers  # noqa

CC = (8, 0)


class _NoGpu:
    """Stands in for the current device when device functions are compiled on a machine
    without a GPU (numba-cuda asks the driver for the compute capability there)."""

    compute_capability = CC


_dispatcher.get_current_device = _NoGpu


def signatures(f):
    """Argument types of every kernel, as the backend launches them, for table dtype ``f``."""
    A1, A2, A3 = f[::1], f[:, ::1], f[:, :, ::1]
    I1, D1, D2 = int64[::1], float64[::1], float64[:, ::1]
    n, b = int64, boolean
    return {
        bpr._bpr_forward: (A2, A2, I1, I1, I1, I1, I1, I1, I1, A1, A1),
        bpr._bpr_grad_scatter: (A2, A2, I1, I1, I1, I1, I1, A1, f, I1, I1, A2, A2, I1, I1, b),
        bpr._batch_sum: (A1, D1, n),
        optimizers._adam_update: (A2, A2, A2, I1, A2, I1, A2, f, b, f, f, f, f, f, f, f),
        optimizers._lazy_adam_update: (A2, A2, A2, I1, n, A2, I1, A2, f, f, f, f, f, f, f, f),
        optimizers._sgd_update: (A2, I1, I1, n, A2, I1, A2, f, b, f),
        hypergradient._map_held_rows: (I1, I1, n),
        hypergradient._release_rows: (I1, I1, n),
        hypergradient._zero_rows: (A3, I1, n),
        hypergradient._zero_matrix_rows: (A2, n),
        hypergradient._lookahead_rows: (
            A2,
            A2,
            A2,
            A2,
            I1,
            I1,
            n,
            A2,
            f,
            b,
            b,
            n,
            f,
            f,
            f,
            f,
            f,
            f,
            f,
            f,
            A2,
            A2,
        ),
        hypergradient._accumulate_lambda_grad: (A2, A2, n, b, A2),
        lambda_update._accumulate_sum_of_squares: (A2, n, D1, n),
        lambda_update._row_sums: (A2, D1, n),
        lambda_update._lambda_adam_update: (
            (A2, I1, I1, n, A2, A2, A2, A2, f, f, f, f, f, f, f, f, b, b)
        ),
        lambda_update._lambda_sgd_update: (A2, I1, n, A2, f, f),
        evaluation._score_block: (A2, D2, I1, D2),
        evaluation._mark_negatives: (I1, I1, I1, uint8[:, ::1]),
        evaluation._rank_targets: (D2, uint8[:, ::1], n, I1, I1, I1, n, n, I1, D1),
        evaluation._user_metrics: (I1, I1, I1, D1, I1, D1, D2, D2),
    }


def f64_ops(ptx):
    """Float64 arithmetic instructions (conversions from or to f64 count too)."""
    return len(re.findall(r"^\s*(?:add|sub|mul|div|fma|sqrt|cvt)\.[a-z.]*f64", ptx, re.M))


def main():
    from numba import float32

    out = {}
    try:
        for name, f in (("float32", float32), ("float64", float64)):
            for kern, sig in signatures(f).items():
                ptx, _ = cuda.compile_ptx(kern.py_func, sig, cc=CC)
                out.setdefault(f"{kern.py_func.__module__}.{kern.py_func.__name__}", {})[name] = (
                    f64_ops(ptx)
                )
    except Exception as e:  # the toolchain is missing: say which library
        text = str(e)
        if any(s in text for s in ("nvvm", "NVVM", "nvrtc", "NVRTC", "DynamicLibNotFound")):
            print(f"CUDA toolchain not found: {text.splitlines()[0]}", file=sys.stderr)
            sys.exit(3)
        raise
    print(json.dumps(out))


if __name__ == "__main__":
    main()
