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

# A table on the CUDA device: :data:`TableArrays` on the device, and the host copies of the
# slot map and reverse map in which the host decides the held rows' order
# (``kernels.cuda.step``).
DeviceTableArrays = namedtuple(
    "DeviceTableArrays", TableArrays._fields + ("host_slot", "host_held")
)

# The scalars of one optimizer step in the tables' dtype: α_t (Adam's step size with the bias
# corrections), η (SGD), β1, β2, c1 = 1 − β1, c2 = 1 − β2 and the ε terms of
# ``math.optimizers.adam_eps_terms``.
StepScalars = namedtuple(
    "StepScalars", ["alpha", "lr", "beta1", "beta2", "c1", "c2", "eps_in", "eps_out"]
)

# The learned Λ's compact gradients that SPEC §5 step 4 fills (``backends.kernel.LambdaBlock``):
# G of P's and of Q's Λ (one array twice when Λ is tied), whether each table's Λ is learned,
# ``tied`` (count the one array once in the norm) and ``norm`` (return ‖G_Λ‖² for step 5's
# clip).
LambdaGrads = namedtuple("LambdaGrads", ["G_P", "G_Q", "learn_P", "learn_Q", "tied", "norm"])

# How the lookahead builds Θ̄ (``math.hypergradient.Lookahead``, SPEC §8): its penalty scope is
# ``full``, ḡ holds B̄'s batch penalty, and the code of the Θ optimizer it assumes
# (``kernels.OPTIMIZER_CODES``).
LookaheadRule = namedtuple("LookaheadRule", ["full_scope", "assumed_penalty", "optimizer"])
