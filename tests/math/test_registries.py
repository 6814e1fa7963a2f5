"""The optimizer registries: every dispatch is a lookup, an unknown name one clear error."""

import numpy as np
import pytest

from lopt_np.kernels import OPTIMIZER_CODES
from lopt_np.math.hypergradient import ThetaOptimizer, theta_update, theta_update_jacobian
from lopt_np.math.lambda_update import LAMBDA_OPTIMIZERS, LambdaOptimizer, lambda_rule, lambda_step
from lopt_np.math.optimizers import (
    ROW_SPARSE_OPTIMIZERS,
    THETA_OPTIMIZERS,
    THETA_RULES,
    theta_rule,
)


def test_every_theta_optimizer_has_one_distinct_kernel_code():
    assert set(OPTIMIZER_CODES) == set(THETA_OPTIMIZERS)
    assert len(set(OPTIMIZER_CODES.values())) == len(THETA_OPTIMIZERS)
    assert ROW_SPARSE_OPTIMIZERS == ("lazy_adam",)


@pytest.mark.parametrize("call", [theta_update, theta_update_jacobian])
def test_an_unknown_theta_optimizer_is_a_clear_error_not_a_fallback(call):
    T = np.ones((3, 2))
    opt = ThetaOptimizer(name="adagrad")
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'; expected one of sgd, adam"):
        call(T, T, opt, T * 0, T * 0, 1, np.ones(3, bool))
    with pytest.raises(ValueError, match="adagrad"):
        theta_rule("adagrad")


def test_an_unknown_lambda_optimizer_is_a_clear_error_not_a_fallback():
    lam = [np.zeros((1, 2))]
    state = {"m": lam, "v": lam, "vmax": lam, "t": 0}
    with pytest.raises(ValueError, match="unknown lambda optimizer 'rmsprop'; expected one of"):
        lambda_step(lam, lam, state, LambdaOptimizer(name="rmsprop"))
    assert {n: lambda_rule(n).moments for n in LAMBDA_OPTIMIZERS} == {
        "sgd": False,
        "adam": True,
        "amsgrad": True,
    }


@pytest.mark.parametrize("name", THETA_OPTIMIZERS)
def test_the_registry_step_is_the_named_optimizer(name):
    """SGD moves by −η d; the Adam family's first step by about −η sign(d) (|d| ≫ ε)."""
    rng = np.random.default_rng(0)
    T, d = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    zeros = np.zeros_like(T)
    active = np.array([True, False, True, True])
    opt = ThetaOptimizer(name=name, lr=0.1, eps=1e-16)
    step = THETA_RULES[name].step(T, d, zeros, zeros, 1, active, opt)[0] - T
    expected = -0.1 * d if name == "sgd" else -0.1 * np.sign(d)
    if THETA_RULES[name].row_sparse:
        expected[~active] = 0.0
    np.testing.assert_allclose(step, expected, rtol=1e-6, atol=1e-12)
