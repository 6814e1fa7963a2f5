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
from ..settings import check_declared, setting

OPEN = dict(low_open=True, high_open=True)

PAPER_MIN_COUNT = 20  # the paper's record filter (§5.1.1), kept by ``lopt reproduce``


@dataclass
class DataConfig:
    """How interactions become a split; the defaults of the API and of the CLI's data options.

    ``time_col=None``: no timestamps (``split="auto"`` then splits each user's interactions in
    a random order drawn from ``split_seed``). ``min_count``: keep items, then users, with at
    least this many interactions (0: no filter; the paper's protocol uses 20)."""

    user_col: str = setting("user", "User column (csv/tsv/parquet).")
    item_col: str = setting("item", "Item column (csv/tsv/parquet).")
    time_col: Optional[str] = setting(
        "timestamp",
        "Timestamp column: numbers or ISO 8601 dates (none: the data has no timestamps).",
    )
    fmt: str = setting("auto", "File format (auto: by file name).", choices=FORMATS)
    sep: Optional[str] = setting(None, "Field separator for csv/tsv (default , or tab).")
    min_count: int = setting(
        0,
        "Keep items, then users, with at least this many interactions (0: no filter; the "
        "paper's protocol: 20).",
        low=0,
    )
    kcore: bool = setting(False, "Iterate the filter to a stable k-core instead of one pass.")
    valid_frac: float = setting(
        0.2, "Fraction of each user's history for validation.", low=0, high=1, **OPEN
    )
    test_frac: float = setting(
        0.2, "Fraction of each user's latest history for test.", low=0, high=1, **OPEN
    )
    split: str = setting(
        "auto",
        "Per-user split: by time, in a random order (seeded), or leave-last-out (latest → "
        "test, the one before → validation); auto: time when there are timestamps, else "
        "random.",
        choices=SPLITS,
    )
    split_seed: int = setting(0, "Seed of the random split.", low=0)
    cache: bool = setting(
        True,
        "Reuse a cached split of the same file content and options ($LOPT_CACHE_DIR, default "
        "~/.cache/lopt_np).",
    )

    def validate(self):
        """Each field against its declaration (``settings.check_declared``), then the sum of
        the two fractions."""
        check_declared(self)
        if self.valid_frac + self.test_frac >= 1:
            raise ConfigError(
                f"valid_frac + test_frac must be below 1, got {self.valid_frac} + {self.test_frac}"
            )
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
