"""Settings declared once: a configuration dataclass's field carries its default, help text,
choices and bounds (:func:`setting`). The API's validation (:func:`check_declared`) and the
``lopt`` options (``lopt_np.cli.main.config_option``) both read them, so a default, its help and
its range are written in one place.
"""

import dataclasses
import math

import numpy as np

from .errors import ConfigError


def setting(
    default,
    help,
    *,
    choices=None,
    low=None,
    high=None,
    low_open=False,
    high_open=False,
    finite=True,
):
    """A dataclass field with its ``help`` (the CLI's text), the allowed ``choices`` (names) or
    the bounds ``low``/``high`` (``*_open``: the bound itself excluded; ``finite``: inf and NaN
    refused). A tuple default is fine (immutable)."""
    return dataclasses.field(
        default=default,
        metadata=dict(
            help=help,
            choices=None if choices is None else tuple(choices),
            low=low,
            high=high,
            low_open=low_open,
            high_open=high_open,
            finite=finite,
        ),
    )


def declared(cls):
    """``{name: dataclasses.Field}`` of the fields of ``cls`` made with :func:`setting`."""
    return {f.name: f for f in dataclasses.fields(cls) if "help" in f.metadata}


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v):
    return _is_int(v) or isinstance(v, (float, np.floating))


TYPE_CHECKS = {
    int: (_is_int, "an integer"),
    float: (_is_number, "a number"),
    str: (lambda v: isinstance(v, str), "a name (a string)"),
    bool: (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
}


def bounds_phrase(field):
    """What the bounds of ``field`` require, in words ("a positive integer", "in [0, 1)" …),
    or None without bounds."""
    m = field.metadata
    low, high = m["low"], m["high"]
    if low is None and high is None:
        return None
    if field.type is int:
        return "a positive integer" if (low, high) == (1, None) else f"an integer ≥ {low}"
    if high is not None:
        return f"in {'(' if m['low_open'] else '['}{low}, {high}{')' if m['high_open'] else ']'}"
    if m["low_open"]:
        return "a positive number" if (low == 0 and m["finite"]) else f"> {low}"
    return f"a finite number ≥ {low}" if m["finite"] else f"≥ {low}"


def within_bounds(field, v):
    m = field.metadata
    if field.type is float and (math.isnan(v) or (m["finite"] and not math.isfinite(v))):
        return False
    if m["low"] is not None and (v <= m["low"] if m["low_open"] else v < m["low"]):
        return False
    if m["high"] is not None and (v >= m["high"] if m["high_open"] else v > m["high"]):
        return False
    return True


def check_declared(config):
    """Each declared field of ``config`` checked against its declaration, types first, as a
    :class:`ConfigError` naming the field: ``"lr must be a positive number, got -1"``,
    ``"unknown scope 'x'; expected one of full, batch"``."""
    fields = declared(type(config))
    for name, f in fields.items():
        v = getattr(config, name)
        if f.type not in TYPE_CHECKS:  # a list or a structure: its class checks it
            continue
        is_type, what = TYPE_CHECKS[f.type]
        if not is_type(v):
            raise ConfigError(f"{name} must be {what}, got {v!r}")
    for name, f in fields.items():
        v = getattr(config, name)
        choices = f.metadata["choices"]
        if choices is not None and v not in choices:
            raise ConfigError(f"unknown {name} {v!r}; expected one of {', '.join(choices)}")
        phrase = bounds_phrase(f)
        if phrase is not None and not within_bounds(f, v):
            raise ConfigError(f"{name} must be {phrase}, got {v!r}")
