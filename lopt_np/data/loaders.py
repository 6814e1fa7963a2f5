"""Readers for interaction logs. Every reader returns a DataFrame with string ``user``/``item``
ids and int64 ``timestamp``, in the file's order, or raises :class:`DataError` naming the problem.

Formats: ``movielens`` (``u.data`` tab-separated, ``ratings.dat`` with ``::``, ``ratings.csv``),
``amazon-food`` (``Reviews.csv``: UserId, ProductId, Time) and ``csv`` / ``tsv`` / ``parquet``
with column names given by options (default ``user,item,timestamp``; the files in
``shared/data`` are of this kind). ``auto`` picks by file name.
"""
import os
import zlib
import gzip
import bz2
import lzma

import numpy as np
import pandas as pd

from ..errors import DataError

FORMATS = ("auto", "movielens", "amazon-food", "csv", "tsv", "parquet")


def detect_format(path):
    name = os.path.basename(str(path)).lower()
    for suffix in (".gz", ".bz2", ".xz", ".zip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name in ("u.data", "ratings.dat", "ratings.csv"):
        return "movielens"
    if name == "reviews.csv":
        return "amazon-food"
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".tsv", ".tab")):
        return "tsv"
    return "csv"


def _read(reader, path, what):
    try:
        return reader()
    except FileNotFoundError as exc:
        raise DataError(f"data file not found: {path}") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{path} is empty") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"cannot parse {path} as {what}: {exc}") from exc
    except (UnicodeDecodeError, zlib.error, gzip.BadGzipFile, OSError, EOFError,
            lzma.LZMAError, ValueError) as exc:
        hint = ""
        if isinstance(exc, (UnicodeDecodeError, gzip.BadGzipFile, zlib.error, EOFError)):
            hint = " (is it compressed differently from what its name says, or truncated?)"
        raise DataError(f"cannot read {path} as {what}: {type(exc).__name__}: {exc}{hint}") \
            from exc


def _standardize(df, user_col, item_col, time_col, path):
    missing = [c for c in (user_col, item_col, time_col) if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(map(repr, missing))}; "
                        f"the file has {', '.join(map(repr, map(str, df.columns)))} "
                        f"(choose with --user-col/--item-col/--time-col)")
    out = pd.DataFrame({"user": df[user_col].astype(str), "item": df[item_col].astype(str)})
    raw_t = df[time_col]
    if raw_t.isna().any():
        first = int(np.flatnonzero(raw_t.isna().to_numpy())[0])
        raise DataError(f"{path}: column {time_col!r} has {int(raw_t.isna().sum())} missing "
                        f"timestamp(s) (first at data row {first + 1})")
    t = pd.to_numeric(raw_t, errors="coerce")
    if t.isna().any():
        bad = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise DataError(f"{path}: column {time_col!r} has non-numeric timestamp "
                        f"{raw_t.iloc[bad]!r} at data row {bad + 1}")
    out["timestamp"] = t.astype(np.int64)
    if len(out) == 0:
        raise DataError(f"{path} holds no interactions")
    return out


def load_interactions(path, fmt="auto", user_col="user", item_col="item", time_col="timestamp",
                      sep=None):
    """Read ``path`` in format ``fmt`` (see :data:`FORMATS`) as a standardized DataFrame."""
    path = str(path)
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not os.path.exists(path):
        raise DataError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise DataError(f"{path} is a directory; give the interaction file itself")
    if fmt == "auto":
        fmt = detect_format(path)
    str_kw = {"dtype": str, "keep_default_na": False, "na_values": [""]}
    name = os.path.basename(path).lower()
    if fmt == "movielens":
        if name.startswith("u.data"):
            df = _read(lambda: pd.read_csv(path, sep="\t", header=None,
                                           names=["user", "item", "rating", "timestamp"],
                                           **str_kw), path, "MovieLens u.data")
        elif name.startswith("ratings.dat"):
            df = _read(lambda: pd.read_csv(path, sep="::", engine="python", header=None,
                                           names=["user", "item", "rating", "timestamp"],
                                           **str_kw), path, "MovieLens ratings.dat")
        else:
            df = _read(lambda: pd.read_csv(path, **str_kw), path, "MovieLens ratings.csv")
            df = df.rename(columns={"userId": "user", "movieId": "item"})
        return _standardize(df, "user", "item", "timestamp", path)
    if fmt == "amazon-food":
        df = _read(lambda: pd.read_csv(path, usecols=lambda c: c in ("UserId", "ProductId", "Time"),
                                       **str_kw), path, "Amazon Fine Food Reviews.csv")
        return _standardize(df, "UserId", "ProductId", "Time", path)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise DataError("reading Parquet needs pyarrow (pip install 'lopt_np[parquet]')") \
                from exc
        df = _read(lambda: pd.read_parquet(path), path, "Parquet")
        return _standardize(df, user_col, item_col, time_col, path)
    sep = sep or ("\t" if fmt == "tsv" else ",")
    df = _read(lambda: pd.read_csv(path, sep=sep, **str_kw), path, fmt.upper())
    return _standardize(df, user_col, item_col, time_col, path)
