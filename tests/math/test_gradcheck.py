"""SPEC §6: every closed-form derivative against central finite differences, in float64."""

import numpy as np
import pytest

import lopt_np.gradcheck as gc
import lopt_np.math.hypergradient as hg
import lopt_np.math.optimizers as theta_optimizers
from lopt_np.gradcheck import (
    check_bpr_grad,
    check_grads,
    check_hypergradient,
    check_penalty_grad,
    check_update_jacobians,
    make_problem,
    run_gradchecks,
)
from lopt_np.math.hypergradient import Lookahead, ThetaOptimizer
from lopt_np.math.optimizers import adam_step_size
from lopt_np.math.penalty import SCOPES


def _opt(name, eps_placement="inside"):
    return ThetaOptimizer(name, 0.5 if name == "sgd" else 0.05, eps_placement=eps_placement)


def _assert_all_pass(results):
    bad = [(r.name, r.max_rel_error) for r in results if not r.passed]
    assert not bad, bad


def test_checker_accepts_exact_gradient_and_rejects_one_per_mille_error():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 5))
    x = rng.standard_normal(5)

    def f(z):
        return float(np.sin(z) @ A @ np.sin(z))

    exact = np.cos(x) * ((A + A.T) @ np.sin(x))
    assert check_grads(f, x, exact).passed
    wrong = check_grads(f, x, exact * 1.001)
    assert not wrong.passed and wrong.max_rel_error > 10 * wrong.tolerance


@pytest.mark.parametrize("seed", [0, 1])
def test_bpr_grad(seed):
    _assert_all_pass(check_bpr_grad(make_problem(seed=seed), np.random.default_rng(seed)))


@pytest.mark.parametrize("scope", SCOPES)
def test_penalty_grad(granularity, scope):
    _assert_all_pass(check_penalty_grad(make_problem(granularity), scope, np.random.default_rng(0)))


def test_update_jacobians(granularity, optimizer, scope):
    """∂Θ'/∂d and ∂Θ'/∂Λ through SGD and Adam (the v' path included)."""
    _assert_all_pass(
        check_update_jacobians(
            make_problem(granularity), _opt(optimizer), scope, np.random.default_rng(0)
        )
    )


def test_hypergradient_end_to_end(granularity, optimizer, scope):
    """∂L_val(Θ̄)/∂Λ for every granularity, optimizer and scope."""
    for seed in (0, 1):
        _assert_all_pass(
            check_hypergradient(
                make_problem(granularity, seed=seed),
                granularity,
                _opt(optimizer),
                Lookahead(scope=scope),
                np.random.default_rng(seed),
            )
        )


@pytest.mark.parametrize("optimizer", ["adam", "lazy_adam"])
def test_update_jacobians_eps_outside(granularity, optimizer):
    """∂Θ'/∂d and ∂Θ'/∂Λ with ε outside the root (torch's Adam; SPEC §4): its own Jacobian."""
    _assert_all_pass(
        check_update_jacobians(
            make_problem(granularity), _opt(optimizer, "outside"), "batch", np.random.default_rng(0)
        )
    )


LOOKAHEAD_VARIANTS = [
    Lookahead(scope="full"),
    Lookahead(scope="batch", assumed_penalty=True),
    Lookahead(scope="batch", count="current"),
    Lookahead(scope="batch", eps_placement="outside"),
    Lookahead(scope="full", assumed_penalty=True, eps_placement="inside", count="current"),
]


# lazy Adam is defined for the batch scope only
VARIANT_CASES = [
    (o, r)
    for o in ("adam", "lazy_adam", "sgd")
    for r in LOOKAHEAD_VARIANTS
    if not (o == "lazy_adam" and r.scope == "full")
]


@pytest.mark.parametrize(
    "optimizer,rule", VARIANT_CASES, ids=[f"{o}-" + "-".join(map(str, r)) for o, r in VARIANT_CASES]
)
def test_hypergradient_variants(granularity, optimizer, rule):
    """∂L_val(Θ̄)/∂Λ under every SPEC §8 lookahead variant, with the real step's ε placed
    outside (the authors' combination) and inside."""
    for placement in ("inside", "outside"):
        _assert_all_pass(
            check_hypergradient(
                make_problem(granularity, seed=2),
                granularity,
                _opt(optimizer, placement),
                rule,
                np.random.default_rng(2),
            )
        )


def test_run_gradchecks_covers_every_spec_derivative():
    names = {r.name.split(" ")[0] for r in run_gradchecks("DUI", "adam", "batch")}
    assert names == {
        "dL_fit/dP",
        "dL_fit/dQ",
        "dOmega/dP",
        "dOmega/dQ",
        "dP'/dd",
        "dQ'/dd",
        "dP'/dLambda",
        "dQ'/dLambda",
        "dL_val/dLambda",
    }


# Corrupting a closed form must make the checks fail -------------------------------------------


def _scaled(fn, factor):
    return lambda *a, **k: (
        lambda r: tuple(x * factor for x in r) if isinstance(r, tuple) else r * factor
    )(fn(*a, **k))


def test_corrupted_eps_outside_jacobian_is_caught(monkeypatch):
    """Taking the ε-inside Jacobian for an ε-outside Adam must fail the check."""
    inside = theta_optimizers.adam_step_jacobian
    monkeypatch.setattr(
        theta_optimizers,
        "adam_step_jacobian",
        lambda m, v, t, d, lr, b1, b2, eps, placement="inside": inside(
            m, v, t, d, lr, b1, b2, eps, "inside"
        ),
    )
    results = run_gradchecks("DUI", "adam", "batch", eps_placement="outside", lr=0.05)
    assert any(not r.passed for r in results)


@pytest.mark.parametrize(
    "target",
    [
        "bpr_grad",
        "penalty_grad",
        "penalty_grad_lambda",
        "adam_jacobian_v_path",
        "sgd_jacobian",
        "lazy_adam_jacobian_mask",
    ],
)
def test_corrupted_closed_form_is_caught(monkeypatch, target):
    import lopt_np.math.penalty as pen

    if target == "bpr_grad":
        monkeypatch.setattr(gc, "bpr_grad", _scaled(gc.bpr_grad, 1.001))
        monkeypatch.setattr(hg, "bpr_grad", _scaled(hg.bpr_grad, 1.001))
        opt = "adam"
    elif target == "penalty_grad":
        monkeypatch.setattr(gc, "penalty_grad", _scaled(gc.penalty_grad, 1.001))
        opt = "adam"
    elif target == "penalty_grad_lambda":
        monkeypatch.setattr(hg, "penalty_grad_lambda", _scaled(pen.penalty_grad_lambda, 1.001))
        opt = "adam"
    elif target == "adam_jacobian_v_path":

        def no_v_path(m, v, t, d, lr, beta1, beta2, eps, *placement):
            v_new = beta2 * v + (1 - beta2) * d * d
            return -adam_step_size(lr, beta1, beta2, t) * (1 - beta1) / np.sqrt(v_new + eps)

        monkeypatch.setattr(theta_optimizers, "adam_step_jacobian", no_v_path)
        opt = "adam"
    elif target == "lazy_adam_jacobian_mask":
        # forgetting that untouched rows do not move: Adam's Jacobian on every row
        monkeypatch.setattr(
            theta_optimizers,
            "lazy_adam_step_jacobian",
            lambda m, v, t, d, active, *a: theta_optimizers.adam_step_jacobian(m, v, t, d, *a),
        )
        opt = "lazy_adam"
    else:
        monkeypatch.setattr(theta_optimizers, "sgd_step_jacobian", lambda lr: -lr * 1.001)
        opt = "sgd"
    results = run_gradchecks("DUI", opt, "batch")
    assert any(not r.passed for r in results)
