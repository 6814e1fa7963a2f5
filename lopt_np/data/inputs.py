"""Any interaction data in: a file path, a pandas DataFrame, a scipy.sparse user × item matrix
or a prepared :class:`Split`, turned into a :class:`Split` by one rule (SPEC §7).

The same interactions give the same split whichever way they arrive: ids are indexed densely
in the order of their string form (``preprocess.dense_ids``) and keep their type (integers
stay integers, strings stay strings: ids read from a file are strings).
"""

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import ConfigError, DataError
from .loaders import FORMATS, detect_format, load_interactions, standardize
from .preprocess import SPLITS, build_split, load_split
from .split import Split

PAPER_MIN_COUNT = 20  # the paper's record filter (§5.1.1), kept by ``lopt reproduce``


@dataclass
class DataConfig:
    """How interactions become a split; the defaults of the API and of the CLI's data options.

    ``time_col=None``: no timestamps (``split="auto"`` then splits each user's interactions in
    a random order drawn from ``split_seed``). ``min_count``: keep items, then users, with at
    least this many interactions (0: no filter; the paper's protocol uses 20)."""

    user_col: str = "user"
    item_col: str = "item"
    time_col: Optional[str] = "timestamp"
    fmt: str = "auto"  # file format (loaders.FORMATS)
    sep: Optional[str] = None  # csv/tsv field separator (default , or tab)
    min_count: int = 0
    kcore: bool = False
    valid_frac: float = 0.2
    test_frac: float = 0.2
    split: str = "auto"  # auto | time | random | leave-last-out
    split_seed: int = 0
    cache: bool = True  # reuse a cached split of the same file and options

    def validate(self):
        if self.fmt not in FORMATS:
            raise ConfigError(f"fmt must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        if self.split not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if (
            isinstance(self.min_count, bool)
            or not isinstance(self.min_count, (int, np.integer))
            or self.min_count < 0
        ):
            raise ConfigError(f"min_count must be an integer ≥ 0, got {self.min_count!r}")
        for name in ("valid_frac", "test_frac"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 < v < 1:
                raise ConfigError(f"{name} must be a number in (0, 1), got {v!r}")
        if self.valid_frac + self.test_frac >= 1:
            raise ConfigError(
                f"valid_frac + test_frac must be below 1, got {self.valid_frac} + {self.test_frac}"
            )
        for name in ("user_col", "item_col"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a column name, got {getattr(self, name)!r}")
        return self

    def split_options(self):
        """The keyword arguments of :func:`preprocess.build_split`."""
        return {
            "min_count": self.min_count,
            "kcore": self.kcore,
            "valid_frac": self.valid_frac,
            "test_frac": self.test_frac,
            "split": self.split,
            "split_seed": self.split_seed,
        }


DATA_FIELDS = tuple(f.name for f in dataclasses.fields(DataConfig))


def to_split(data: Any, config: Optional[DataConfig] = None) -> Split:
    """A :class:`Split` of ``data``: a :class:`Split` (returned as it is), a path to an
    interaction file, a pandas DataFrame (columns ``config.user_col``/``item_col``/``time_col``)
    or a scipy.sparse matrix with users as rows and items as columns (every stored nonzero is a
    positive; row and column numbers are the ids; no timestamps)."""
    cfg = (config or DataConfig()).validate()
    if isinstance(data, Split):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        fmt = detect_format(path) if cfg.fmt == "auto" else cfg.fmt  # the cache key's format
        return load_split(
            path,
            cfg.split_options(),
            lambda: load_interactions(path, fmt, cfg.user_col, cfg.item_col, cfg.time_col, cfg.sep),
            use_cache=cfg.cache,
            reader=[fmt, cfg.user_col, cfg.item_col, cfg.time_col, cfg.sep],
        )
    if isinstance(data, pd.DataFrame):
        df = standardize(data, cfg.user_col, cfg.item_col, cfg.time_col, "the DataFrame")
        return build_split(df, **cfg.split_options())
    if sp.issparse(data):
        return build_split(
            _sparse_frame(data), **{**cfg.split_options(), "split": _untimed(cfg.split)}
        )
    raise DataError(
        f"cannot train on a {type(data).__name__}: give a Split, a file path, a "
        f"pandas DataFrame or a scipy.sparse user × item matrix"
    )


def _untimed(split):
    if split == "time":
        raise ConfigError(
            "a scipy.sparse matrix has no timestamps: use split auto, random or leave-last-out"
        )
    return split


def _sparse_frame(matrix):
    coo = matrix.tocoo()
    if coo.ndim != 2:
        raise DataError(f"the sparse matrix must be 2-D (users × items), got {coo.ndim}-D")
    keep = coo.data != 0
    if not np.all(np.isfinite(coo.data)):
        raise DataError("the sparse matrix holds NaN or inf values")
    if not keep.any():
        raise DataError("the sparse matrix holds no nonzero entries")
    order = np.lexsort((coo.col[keep], coo.row[keep]))  # by user, then item
    return pd.DataFrame(
        {
            "user": coo.row[keep][order].astype(np.int64),
            "item": coo.col[keep][order].astype(np.int64),
        }
    )
