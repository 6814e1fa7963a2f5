"""Each scalar formula of the compiled layers (``kernels/elementwise.py``, compiled for the CPU
and for CUDA) names its twin in the NumPy reference, which exists and takes its arguments in
the same order where the two share a name."""

import importlib
import inspect
import re

import lopt_np.kernels.elementwise as elementwise

# formulas with no reference twin, and why
NO_TWIN = {
    "sorted_contains": "a binary search over a sorted id list (sampling, evaluation)",
    "triplet_touches": "which triplets a masked BPR pass computes (an index test, no math)",
}


def _formulas():
    return {
        name: fn
        for name, fn in inspect.getmembers(elementwise, inspect.isfunction)
        if fn.__module__ == elementwise.__name__
    }


def _resolve(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module("lopt_np." + ".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(dotted)


def test_every_scalar_formula_names_a_reference_twin_that_exists():
    for name, fn in _formulas().items():
        refs = re.findall(r"``(math\.[\w.]+)``", fn.__doc__ or "")
        if name in NO_TWIN:
            assert not refs, name
            continue
        assert refs, f"{name} names no math.* twin in its docstring"
        for ref in refs:
            assert _resolve(ref) is not None, (name, ref)


def test_a_formula_and_its_namesake_take_the_same_arguments_in_the_same_order():
    from lopt_np.math import penalty

    for name in ("penalty_grad", "penalty_grad_lambda"):
        kernel = list(inspect.signature(getattr(elementwise, name)).parameters)
        reference = list(inspect.signature(getattr(penalty, name)).parameters)
        same = [(k, r) for k, r in zip(kernel, reference)]
        assert len(kernel) == len(reference), name
        # the table is ``theta`` (one element) in the kernels and ``T`` (a table) in math
        assert all(k == r or (k, r) == ("theta", "T") for k, r in same), (name, same)
