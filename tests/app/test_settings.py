"""Settings declared once: the API's validation and the ``lopt`` options read one declaration."""

import dataclasses
import math
import re

import click
import pytest

from lopt_np.reproduction.baselines import BaselineConfig
from lopt_np.cli.main import main
from lopt_np.data.inputs import DataConfig
from lopt_np.errors import ConfigError
from lopt_np.settings import bounds_phrase, declared
from lopt_np.trainer import TrainConfig

CONFIGS = (TrainConfig, DataConfig, BaselineConfig)


def _bound_cases():
    for cls in CONFIGS:
        for name, f in declared(cls).items():
            m = f.metadata
            step = 1 if f.type is int else 1e-9
            if m["low"] is not None:
                yield cls, name, m["low"] if m["low_open"] else m["low"] - step
            if m["high"] is not None:
                yield cls, name, m["high"] if m["high_open"] else m["high"] + step


BOUND_CASES = list(_bound_cases())


def test_the_declared_defaults_are_valid():
    for cls in CONFIGS:
        cls().validate()


@pytest.mark.parametrize(
    "cls,name,value", BOUND_CASES, ids=[f"{c.__name__}.{n}={v}" for c, n, v in BOUND_CASES]
)
def test_a_value_past_a_declared_bound_is_refused_in_words(cls, name, value):
    f = declared(cls)[name]
    with pytest.raises(ConfigError, match="^" + re.escape(f"{name} must be {bounds_phrase(f)}")):
        cls(**{name: value}).validate()


def test_bounds_in_words():
    fields = declared(TrainConfig)
    assert bounds_phrase(fields["lr"]) == "a positive number"
    assert bounds_phrase(fields["dim"]) == "a positive integer"
    assert bounds_phrase(fields["patience"]) == "an integer ≥ 0"
    assert bounds_phrase(fields["beta1"]) == "in [0, 1)"
    assert bounds_phrase(fields["lambda_clip"]) == "> 0"
    assert bounds_phrase(fields["lambda_init"]) == "a finite number ≥ 0"
    assert bounds_phrase(fields["optimizer"]) is None


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_nan_and_inf_are_refused_where_the_declaration_wants_a_finite_number(value):
    with pytest.raises(ConfigError, match="lr must be a positive number"):
        TrainConfig(lr=value).validate()
    with pytest.raises(ConfigError, match="lambda_clip must be > 0"):
        TrainConfig(lambda_clip=math.nan).validate()
    TrainConfig(lambda_clip=math.inf).validate()  # inf: no clipping


def test_a_declared_choice_is_checked_by_name():
    with pytest.raises(ConfigError, match="unknown lambda_rows 'some'; expected one of all, batch"):
        TrainConfig(lambda_rows="some").validate()


def _commands(group, prefix=""):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", cmd


def test_every_option_of_a_declared_setting_shows_the_declarations_default_and_range():
    """Where an option's parameter is a declared field (``--lr`` → ``lr``), its default is the
    field's and its choices or range the declaration's; only the spellings listed differ."""
    fields = {**declared(DataConfig), **declared(TrainConfig)}
    shown_differently = {"ks", "lambda_clip", "device", "granularity", "min_count"}
    checked = 0
    for path, cmd in _commands(main):
        for p in cmd.params:
            f = fields.get(p.name)
            if f is None or p.name in shown_differently or not isinstance(p, click.Option):
                continue
            checked += 1
            assert p.default == f.default, (path, p.name)
            if f.metadata["choices"] is not None:
                assert tuple(p.type.choices) == f.metadata["choices"], (path, p.name)
            elif f.metadata["low"] is not None:
                assert p.type.min == f.metadata["low"], (path, p.name)
                assert p.type.min_open == f.metadata["low_open"], (path, p.name)
    assert checked >= 60


def test_the_train_options_help_is_the_declarations():
    cmd = main.commands["train"]
    helps = {p.name: p.help for p in cmd.params if isinstance(p, click.Option)}
    for name, f in declared(TrainConfig).items():
        if name in helps:
            assert helps[name] == f.metadata["help"], name
    assert helps["lambda_lr"] == "Λ's learning rate: the main knob of λOpt."


def test_a_baseline_default_is_the_same_in_the_api_and_the_cli():
    cmd = main.commands["reproduce"]
    defaults = {p.name: p.default for p in cmd.params}
    b = BaselineConfig()
    assert defaults["baseline_epochs"] == b.epochs
    assert defaults["baseline_patience"] == b.patience
    assert defaults["baseline_lr"] == b.lr
    assert defaults["amf_reg"] == b.reg_adv
    assert dataclasses.fields(BaselineConfig)  # declared, not restated
