"""Checkpoints of a training run, so that an interrupted run continues to the result it would
have reached (same seed: bit-identical on the cpu and reference backends).

A checkpoint is taken at the end of an epoch: the backend's state (Θ, Λ, every optimizer
moment and counter), the batch stream's position, the model selection so far (best score,
epoch and parameters, epochs without improvement), the history and the Λ trajectory. Batches
of later epochs are a function of (seed, epoch), so nothing else is needed. Files, each
replaced whole: ``checkpoint.npz`` (arrays) and ``checkpoint.json`` (the rest, with the
training configuration and the data options it belongs to).
"""

import json
import os

import numpy as np

from .errors import NPZ_READ_ERRORS, ConfigError, DataError
from .io import write_json, write_npz

FORMAT = "lopt_np.checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(folder, arrays, meta):
    """Write ``arrays`` (name → array) and ``meta`` (JSON-able) into ``folder``."""
    os.makedirs(folder, exist_ok=True)
    write_npz(os.path.join(folder, "checkpoint.npz"), arrays, compressed=False)
    write_json(
        os.path.join(folder, "checkpoint.json"),
        {"format": FORMAT, "format_version": FORMAT_VERSION, **meta},
    )


def has_checkpoint(folder):
    return os.path.isfile(os.path.join(folder, "checkpoint.json"))


def load_checkpoint(folder):
    """``(arrays, meta)`` of the checkpoint in ``folder``; any problem is one DataError."""
    path = os.path.join(folder, "checkpoint.json")
    if not os.path.isfile(path):
        raise DataError(f"{folder} holds no checkpoint (checkpoint.json is missing)")
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
        with np.load(os.path.join(folder, "checkpoint.npz"), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except NPZ_READ_ERRORS as exc:
        raise DataError(f"cannot read the checkpoint in {folder} (damaged?): {exc}") from None
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{folder} holds no checkpoint this lopt_np reads (format "
            f"{meta.get('format')!r} version {meta.get('format_version')!r})"
        )
    return arrays, meta


def check_same_run(meta, config, defaults):
    """The checkpoint must come from the same training configuration ``config``; an option the
    writing version did not have counts as its value in ``defaults``."""
    saved = {**defaults, **meta.get("config", {})}
    differ = sorted(
        k
        for k in set(saved) | set(config)
        if saved.get(k) != config.get(k) and k not in ("epochs", "threads")
    )
    if differ:
        raise ConfigError(
            f"the checkpoint was written with other settings "
            f"({', '.join(differ[:8])}); resume with the run's own settings"
        )
