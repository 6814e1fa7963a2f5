"""AMF (APR) and NeuMF: finite-difference checks of the hand-derived gradients, checks that the
checks reject a corrupted closed form, and the baselines' training and scoring."""

import numpy as np
import pytest

import lopt_np.gradcheck as gc
from lopt_np.reproduction.baselines import BaselineConfig, fit_amf, fit_neumf, sgda_params
from lopt_np.errors import ConfigError
from lopt_np.evaluation import evaluate, evaluate_scores
from lopt_np.math.apr import adversarial_perturbation, apr_grad
from lopt_np.math.bpr import bpr_grad, bpr_loss
from lopt_np.math.neumf import init_neumf, neumf_bpr_grad, neumf_forward, neumf_score_matrix
from lopt_np.trainer import LambdaOpt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_baseline_gradients_match_finite_differences(seed):
    results = gc.run_baseline_gradchecks(seed)
    assert len(results) == 2 + 10  # P, Q of APR; every NeuMF parameter (2 layers)
    assert all(r.passed for r in results), [(r.name, r.max_rel_error) for r in results]


def _scaled_apr(P, Q, users, pos, neg, eps, reg_adv):
    gP, gQ, dP, dQ = apr_grad(P, Q, users, pos, neg, eps, reg_adv)
    return gP * 1.001, gQ * 1.001, dP, dQ


def _apr_without_perturbation(P, Q, users, pos, neg, eps, reg_adv):
    """A plausible slip: the adversarial term's gradient taken at Θ instead of Θ + Δ."""
    _, _, dP, dQ = apr_grad(P, Q, users, pos, neg, eps, reg_adv)
    gP, gQ = bpr_grad(P, Q, users, pos, neg)
    return (1 + reg_adv) * gP, (1 + reg_adv) * gQ, dP, dQ


@pytest.mark.parametrize("corrupt", [_scaled_apr, _apr_without_perturbation])
def test_apr_check_rejects_a_corrupted_gradient(monkeypatch, corrupt):
    monkeypatch.setattr(gc, "apr_grad", corrupt)
    pb = gc.make_problem("global")
    results = gc.check_apr_grad(pb, np.random.default_rng(1))
    assert not any(r.passed for r in results), [(r.name, r.max_rel_error) for r in results]


@pytest.mark.parametrize("name", ["P_g", "Q_g", "P_m", "Q_m", "h_g", "W1", "b1", "W2", "b2", "h_m"])
def test_neumf_check_rejects_a_gradient_off_by_0_1_percent(monkeypatch, name):
    def corrupted(params, users, pos, neg):
        loss, grads = neumf_bpr_grad(params, users, pos, neg)
        return loss, {**grads, name: grads[name] * 1.001}

    monkeypatch.setattr(gc, "neumf_bpr_grad", corrupted)
    results = gc.check_neumf_grad(gc.make_problem("global"), np.random.default_rng(1))
    failed = [r.name for r in results if not r.passed]
    assert failed == [f"dL_NeuMF/d{name}"]


def test_adversarial_perturbation_is_the_first_order_worst_case():
    pb = gc.make_problem("global")
    users, pos, neg = pb.train_batch
    eps = 1e-3
    gP, gQ = bpr_grad(pb.P, pb.Q, users, pos, neg)
    dP, dQ = adversarial_perturbation(gP, gQ, eps)
    touched_P = np.abs(gP).sum(axis=1) > 0
    np.testing.assert_allclose(np.linalg.norm(dP, axis=1)[touched_P], eps, rtol=1e-12)
    assert not dP[~touched_P].any()
    worst = bpr_loss(pb.P + dP, pb.Q + dQ, users, pos, neg)
    rng = np.random.default_rng(0)
    for _ in range(20):  # random directions with the same per-row norms do less harm
        rP, rQ = adversarial_perturbation(
            rng.standard_normal(gP.shape) * (dP != 0),
            rng.standard_normal(gQ.shape) * (dQ != 0),
            eps,
        )
        assert bpr_loss(pb.P + rP, pb.Q + rQ, users, pos, neg) < worst


def test_neumf_score_matrix_matches_the_forward_pass():
    pb = gc.make_problem("global")
    params = gc.make_neumf_params(pb)
    users = np.array([0, 3, 5])
    grid_u, grid_i = np.meshgrid(users, np.arange(pb.Q.shape[0]), indexing="ij")
    s, _ = neumf_forward(params, grid_u.ravel(), grid_i.ravel())
    np.testing.assert_allclose(
        neumf_score_matrix(params, users), s.reshape(grid_u.shape), rtol=1e-12
    )


def test_neumf_pretrained_from_mf_starts_as_mf():
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(5, 4)), rng.normal(size=(7, 4))
    params = init_neumf(P, Q, 3, (4,), rng, dtype=np.float64)
    params["h_m"][:] = 0
    np.testing.assert_allclose(neumf_score_matrix(params, np.arange(5)), P @ Q.T, rtol=1e-12)


def test_evaluate_scores_matches_the_mf_evaluation(small_split):
    rng = np.random.default_rng(0)
    P = rng.normal(size=(small_split.n_users, 8)).astype(np.float32)
    Q = rng.normal(size=(small_split.n_items, 8)).astype(np.float32)
    a = evaluate(P, Q, small_split, "test", (10, 50))
    b = evaluate_scores(
        lambda u: P[u].astype(np.float64) @ Q.T.astype(np.float64),
        small_split,
        "test",
        (10, 50),
        block_size=37,
    )
    assert a["metrics"] == b["metrics"] and a["groups"] == b["groups"]


@pytest.fixture(scope="module")
def mf_model(small_split):
    return LambdaOpt(
        learn_lambda=False, granularity="global", lambda_init=1e-3, dim=8, epochs=3, lr=1e-2
    ).fit(small_split)


@pytest.mark.parametrize("fit", [fit_amf, fit_neumf])
def test_baseline_training_lowers_its_loss_and_keeps_the_best_epoch(small_split, mf_model, fit):
    cfg = BaselineConfig(
        lam=1e-3, lr=5e-3, epochs=4, patience=10, mlp_dim=4, layers=(8, 4), adv_eps=0.1
    )
    model = fit(small_split, mf_model.P, mf_model.Q, cfg)
    losses = [h["train_loss"] for h in model.history]
    assert len(losses) == 4 and losses[-1] < losses[0]
    valid = [h["valid"]["hr@100"] for h in model.history]
    assert model.best_epoch == 1 + int(np.argmax(valid))
    again = model.evaluate(small_split, "valid")["metrics"]["hr@100"]
    assert again == pytest.approx(max(valid), abs=1e-12)  # the kept parameters


def test_amf_without_adversary_is_plain_bpr_adam(small_split, mf_model):
    """γ = 0 turns APR into BPR: the first step must equal a hand-written Adam step on BPR."""
    cfg = BaselineConfig(lam=0.0, lr=1e-2, epochs=1, reg_adv=0.0, batch_size=10**9)
    model = fit_amf(small_split, mf_model.P, mf_model.Q, cfg)
    from lopt_np.sampling import TripletSampler

    batch = TripletSampler(small_split, 0).train_triplets(1)
    P, Q = mf_model.P.astype(np.float64), mf_model.Q.astype(np.float64)
    gP, gQ = bpr_grad(P, Q, *batch)
    # first Adam step: m = 0.1 g, v = 0.001 g², α = lr √0.001 / 0.1 → step = lr g/√(g² + ε/…)
    for T, g, got in ((P, gP, model.params["P"]), (Q, gQ, model.params["Q"])):
        m, v = 0.1 * g, 0.001 * g * g
        expect = T - 1e-2 * np.sqrt(0.001) / 0.1 * m / np.sqrt(v + 1e-8)
        np.testing.assert_allclose(got, expect, rtol=1e-4, atol=1e-6)


def test_sgda_is_lambda_opt_d_with_sgd():
    p = sgda_params({"lr": 1e-3, "dim": 8}, lr=0.1)
    assert (p["granularity"], p["optimizer"], p["learn_lambda"], p["lr"]) == ("D", "sgd", True, 0.1)
    assert LambdaOpt(**p).config.optimizer == "sgd"


@pytest.mark.parametrize(
    "bad", [{"lr": 0}, {"lam": -1}, {"layers": ()}, {"epochs": 0}, {"adv_eps": float("nan")}]
)
def test_baseline_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        BaselineConfig(**bad).validate()
