"""Numba compilation of the shared scalar formulas for the CPU."""
from numba import njit

from .. import elementwise as _e

jit = njit(cache=True, fastmath=False)
pjit = njit(cache=True, parallel=True, fastmath=False)

sigmoid = jit(_e.sigmoid)
softplus = jit(_e.softplus)
bpr_delta = jit(_e.bpr_delta)
penalty_grad = jit(_e.penalty_grad)
penalty_grad_lambda = jit(_e.penalty_grad_lambda)
sgd_update = jit(_e.sgd_update)
adam_moments = jit(_e.adam_moments)
adam_update = jit(_e.adam_update)
adam_jacobian = jit(_e.adam_jacobian)
