"""Numba compilation of the shared scalar formulas for the CPU.

``error_model="numpy"``: a float division by zero gives inf/NaN (caught by the trainer's
finite checks) instead of a Python exception, which keeps the inner loops vectorizable.
Inner loops start at 0 or run on unsigned bounds, so that Numba's negative-index wrap-around
does not block vectorization either.
"""

import inspect

from numba import njit

from .. import elementwise as _e
from . import _cache  # noqa: F401  (the cache also follows the shared formulas)

jit = njit(cache=True, error_model="numpy")
pjit = njit(cache=True, parallel=True, error_model="numpy")
# For sums over the K latent dimensions: LLVM may reassociate them into vector partial sums
# (the order is fixed by the compiled code, so results do not depend on the thread count).
fast_reduction = njit(cache=True, error_model="numpy", fastmath={"reassoc", "nsz", "contract"})

sigmoid = jit(_e.sigmoid)
softplus = jit(_e.softplus)
bpr_delta = jit(_e.bpr_delta)
# its dot product may be reassociated into vector partial sums, the same way on every thread
bpr_margin = fast_reduction(_e.bpr_margin)
sorted_contains = jit(_e.sorted_contains)
triplet_touches = jit(_e.triplet_touches)
select_top = jit(_e.select_top)
lambda_entry = jit(_e.lambda_entry)
row_weight = jit(_e.row_weight)
penalty_grad = jit(_e.penalty_grad)
penalty_grad_lambda = jit(_e.penalty_grad_lambda)
sgd_update = jit(_e.sgd_update)
adam_moments = jit(_e.adam_moments)
adam_update = jit(_e.adam_update)
adam_jacobian = jit(_e.adam_jacobian)
lambda_adam_entry = jit(_e.make_lambda_adam_entry(adam_moments, adam_update))


def by_lambda_layout(factory, lam_arg):
    """Dispatch to one compiled kernel per Λ layout: ``factory(per_row, per_dim)`` builds a kernel
    in which the layout is a compile-time constant, so ``lam[r if per_row else 0, k if per_dim
    else 0]`` folds to a plain index and the inner loops vectorize (a runtime branch there costs
    a factor ≈ 3). The variant is picked from the shape of argument ``lam_arg``."""
    variants = {}

    def variant(per_row, per_dim):
        """The compiled kernel of one layout (to call from other compiled code)."""
        key = (bool(per_row), bool(per_dim))
        if key not in variants:
            variants[key] = factory(*key)
        return variants[key]

    def kernel(*args):
        lam = args[lam_arg]
        return variant(lam.shape[0] > 1, lam.shape[1] > 1)(*args)

    kernel.__name__ = factory.__name__.lstrip("_")
    kernel.__doc__ = factory.__doc__
    kernel.__module__ = factory.__module__
    # the parameters of every variant (what ``inspect.signature`` and the contract test read)
    kernel.__signature__ = inspect.signature(variant(False, False).py_func)
    kernel.variant = variant
    return kernel


def layout_switch(kernel):
    """``switch(per_row, per_dim, *args)``: calls ``kernel``'s variant for that Λ layout, from
    other compiled code (one branch per call, outside the loops). A compiled caller then takes
    the layout as plain arguments and stays cacheable on disk (a closure holding a variant would
    not: a dispatcher pickles differently in every process). Not cached itself: it is compiled
    into its callers."""
    rd, r, d, s = (
        kernel.variant(*key) for key in ((True, True), (True, False), (False, True), (False, False))
    )

    @njit(error_model="numpy")
    def switch(per_row, per_dim, *args):
        if per_row:
            if per_dim:
                return rd(*args)
            return r(*args)
        if per_dim:
            return d(*args)
        return s(*args)

    switch.__name__ = kernel.__name__ + "_switch"
    return switch
