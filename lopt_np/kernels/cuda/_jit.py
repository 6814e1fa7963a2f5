"""Numba CUDA compilation of the shared scalar formulas, and launch shapes.

Every kernel is launched on a 1-D grid with one thread per output element (or per triplet,
row, …); :func:`launch` covers ``n`` of them with blocks of :data:`THREADS_PER_BLOCK` threads.
The tests lower it so that the simulator runs several blocks per grid.
"""

from numba import cuda

from .. import elementwise as _e

device = cuda.jit(device=True)
kernel = cuda.jit

sigmoid = device(_e.sigmoid)
softplus = device(_e.softplus)
bpr_delta = device(_e.bpr_delta)
bpr_margin = device(_e.bpr_margin)
sorted_contains = device(_e.sorted_contains)
triplet_touches = device(_e.triplet_touches)
select_top = device(_e.select_top)
lambda_entry = device(_e.lambda_entry)
row_weight = device(_e.row_weight)
penalty_grad = device(_e.penalty_grad)
penalty_grad_lambda = device(_e.penalty_grad_lambda)
sgd_update = device(_e.sgd_update)
adam_moments = device(_e.adam_moments)
adam_update = device(_e.adam_update)
adam_jacobian = device(_e.adam_jacobian)
lambda_adam_entry = device(_e.make_lambda_adam_entry(adam_moments, adam_update))

THREADS_PER_BLOCK = 256


def launch(n):
    """``(blocks, threads)`` for a 1-D grid of at least ``n`` threads (at least one block)."""
    t = THREADS_PER_BLOCK
    return max(1, -(-int(n) // t)), t
