"""Named argument groups of the compiled steps (Numba compiles named tuples and reads their
fields by name, so a kernel never depends on a tuple's order defined elsewhere)."""

from collections import namedtuple

# One embedding table with its optimizer state and the step buffers of its held rows (held
# rows and slot maps: ``kernels/cpu/hypergradient.py``): T, Adam's m and v, its Λ, the
# identity slot map of the whole table, the held rows' slot map and reverse map, the gradient
# buffers ``buf[0]`` (g or ḡ) and ``buf[1]`` (G_Θ̄), the rows' counts in B or B̄ and in V, Θ̄
# and ∂Θ̄/∂Λ.
TableArrays = namedtuple(
    "TableArrays",
    [
        "T",
        "m",
        "v",
        "lam",
        "identity",
        "slot",
        "held",
        "buf",
        "count",
        "scratch_count",
        "Tbar",
        "dTbar_dlam",
    ],
)

# The scalars of one optimizer step in the tables' dtype: α_t (Adam's step size with the bias
# corrections), η (SGD), β1, β2, c1 = 1 − β1, c2 = 1 − β2 and the ε terms of
# ``math.optimizers.adam_eps_terms``.
StepScalars = namedtuple(
    "StepScalars", ["alpha", "lr", "beta1", "beta2", "c1", "c2", "eps_in", "eps_out"]
)
