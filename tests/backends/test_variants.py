"""SPEC §8 variants through the whole trainer (sampling, driver, backends) on small generated
data: the CPU backend against the NumPy reference in float64 for the authors' preset and for
every option flipped from it, and the config rules of the variants."""

import numpy as np
import pytest

from lopt_np.errors import ConfigError
from lopt_np.trainer import LambdaOpt

SMALL = dict(
    dim=6,
    batch_size=128,
    epochs=1,
    dtype="float64",
    eval_every=0,
    lr=0.01,
    lambda_lr=0.01,
    init_std=0.3,
)
CASES = {
    "authors": {},
    "shared-state": {"shared_assumed_state": True},
    "eps-inside": {"eps_placement": "inside", "lambda_eps_placement": "inside"},
    "lookahead-batch-scope": {"lookahead_scope": "same"},
    "lookahead-eps-outside": {"lookahead_eps_placement": "same"},
    "count-next": {"lookahead_count": "next", "lambda_warmup_steps": 0},
    "no-assumed-penalty": {"assumed_penalty": False},
    "independent-batches": {"lookahead_batches": "independent"},
    "same-batch": {"lookahead_batches": "same"},
    "sgd": {"optimizer": "sgd", "lr": 0.2},
    "granularity-D": {"granularity": "D"},
    "lambda-rows-batch": {"lambda_rows": "batch"},
    "lambda-rows-batch-UI": {"lambda_rows": "batch", "granularity": "UI"},
}


@pytest.mark.parametrize("case", list(CASES))
def test_cpu_backend_matches_reference_under_every_variant(small_split, case):
    models = [
        LambdaOpt("authors", **{**SMALL, "device": device, **CASES[case]}).fit(small_split)
        for device in ("reference", "cpu")
    ]
    ref, cpu = models
    for a, b in (
        (ref.P, cpu.P),
        (ref.Q, cpu.Q),
        (ref.lambda_P, cpu.lambda_P),
        (ref.lambda_Q, cpu.lambda_Q),
    ):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10)
    assert ref.lambda_P.max() > 0  # Λ was learned
    assert [h["train_loss"] for h in ref.history] == pytest.approx(
        [h["train_loss"] for h in cpu.history], abs=1e-12
    )


def test_every_variant_changes_the_model(small_split):
    """Each flipped option moves the result away from the preset's (none is a no-op here)."""
    base = LambdaOpt("authors", **SMALL).fit(small_split)
    for case, params in CASES.items():
        if case == "authors":
            continue
        other = LambdaOpt("authors", **{**SMALL, **params}).fit(small_split)
        assert np.abs(other.P - base.P).max() > 1e-6, case


@pytest.mark.parametrize(
    "params,needle",
    [
        ({"lookahead_count": "current", "lambda_warmup_steps": 0}, "lambda_warmup_steps"),
        ({"shared_assumed_state": True, "optimizer": "sgd"}, "shared_assumed_state"),
        ({"theta_clip": 100.0}, "theta_clip"),
        ({"lookahead_scope": "rows"}, "lookahead_scope"),
        ({"eps_placement": "middle"}, "eps_placement"),
        ({"lookahead_batches": "random"}, "lookahead_batches"),
        ({"lambda_rows": "some"}, "lambda_rows"),
    ],
)
def test_invalid_variant_settings_are_one_clear_error(params, needle):
    with pytest.raises(ConfigError, match=needle):
        LambdaOpt("authors", **params)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown preset 'authorz'"):
        LambdaOpt("authorz")


def test_lambda_optimizer_has_its_own_betas_and_eps(small_split):
    from lopt_np.trainer import TrainConfig

    cfg = TrainConfig(lambda_beta1=0.5, lambda_beta2=0.9, lambda_eps=1e-6)
    lo, to = cfg.lambda_optimizer_settings(), cfg.theta_optimizer()
    assert (lo.beta1, lo.beta2, lo.eps) == (0.5, 0.9, 1e-6)
    assert (to.beta1, to.beta2, to.eps) == (0.9, 0.999, 1e-8)
    base = LambdaOpt("authors", **SMALL).fit(small_split)
    other = LambdaOpt("authors", **SMALL, lambda_beta2=0.9).fit(small_split)
    assert np.abs(other.lambda_P - base.lambda_P).max() > 1e-6
    with pytest.raises(ConfigError, match="lambda_beta1"):
        LambdaOpt(lambda_beta1=1.0)
    with pytest.raises(ConfigError, match="lambda_eps"):
        LambdaOpt(lambda_eps=0.0)


class _RecordingBackend:
    """Records which batch each step of one λOpt iteration receives."""

    learn_lambda = True

    def __init__(self):
        self.calls = []

    def lambda_step(self, train_batch, valid_batch):
        self.calls.append(("lambda", train_batch, valid_batch))
        return 0.0

    def theta_step(self, train_batch):
        self.calls.append(("theta", train_batch))
        return 0.0


@pytest.mark.parametrize(
    "lookahead_batches, drawn, lookahead_is_real",
    [
        ("stream", ["lookahead", "valid", "train"], False),
        ("independent", ["lookahead", "valid", "train"], False),
        ("same", ["train", "valid"], True),
    ],
)
def test_lookahead_batches_decide_what_the_driver_draws(
    lookahead_batches, drawn, lookahead_is_real
):
    """``same``: one draw of B serves as B̄ and as the real step's batch; the others draw B̄ of
    their own before V, then B."""
    from lopt_np.trainer import TrainConfig, lambda_opt_iteration

    cfg = TrainConfig(lookahead_batches=lookahead_batches, lambda_warmup_steps=0)
    kinds = []

    def draw(kind):
        kinds.append(kind)
        return (kind, len(kinds))  # a distinct object per draw

    backend = _RecordingBackend()
    lambda_opt_iteration(backend, cfg, 0, draw)
    assert kinds == drawn
    (_, lookahead, _), (_, real) = backend.calls
    assert (lookahead is real) == lookahead_is_real
