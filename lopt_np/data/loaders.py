"""Readers for interaction logs. Every reader returns a DataFrame with ``user``/``item`` ids
(strings from a file: leading zeros kept) and, unless ``time_col`` is None, a ``timestamp``
(int64, or float64 for fractional numbers), in the file's order, or raises
:class:`DataError` naming the problem.

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

from ..errors import DataError, shown

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
    except (
        UnicodeDecodeError,
        zlib.error,
        gzip.BadGzipFile,
        OSError,
        EOFError,
        lzma.LZMAError,
        ValueError,
    ) as exc:
        hint = ""
        if isinstance(exc, (UnicodeDecodeError, gzip.BadGzipFile, zlib.error, EOFError)):
            hint = " (is it compressed differently from what its name says, or truncated?)"
        raise DataError(f"cannot read {path} as {what}: {type(exc).__name__}: {exc}{hint}") from exc


def _ids(column, name, source):
    """Ids as int64 when the column is of an integer type, else as strings; a missing or
    blank id is an error naming its row."""
    missing = column.isna().to_numpy()
    if column.dtype.kind not in "iu":
        text = column.astype(str)
        missing = missing | (text.str.strip() == "").to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise DataError(
            f"{source}: column {name!r} has {int(missing.sum()):,} missing or blank "
            f"id(s) (first at data row {row + 1})"
        )
    if column.dtype.kind in "iu":
        if column.dtype.kind == "u" and len(column) and column.max() > np.iinfo(np.int64).max:
            raise DataError(f"{source}: column {name!r} holds ids beyond int64")
        return column.astype(np.int64).to_numpy()
    return column.astype(str).to_numpy()


def _timestamps(raw, name, source):
    """Timestamps as int64 (integers, or datetimes as nanoseconds since 1970) or float64
    (numbers with a fraction, ordered exactly); an unparsable, missing or out-of-range value
    is an error naming its row."""
    if raw.isna().any():
        first = int(np.flatnonzero(raw.isna().to_numpy())[0])
        raise DataError(
            f"{source}: column {name!r} has {int(raw.isna().sum()):,} missing "
            f"timestamp(s) (first at data row {first + 1})"
        )
    if pd.api.types.is_datetime64_any_dtype(raw):
        return _datetime_ns(raw, raw, name, source)
    if raw.dtype.kind in "iub":
        return raw.astype(np.int64).to_numpy()
    t = pd.to_numeric(raw, errors="coerce") if raw.dtype.kind != "f" else raw
    if t.isna().any():
        if raw.dtype.kind == "O" or pd.api.types.is_string_dtype(raw):
            try:
                parsed = pd.to_datetime(raw, format="ISO8601", utc=True)
            except (ValueError, TypeError, OverflowError):
                parsed = None
            if parsed is not None:
                return _datetime_ns(parsed, raw, name, source)
        bad = int(np.flatnonzero(t.isna().to_numpy())[0])
        raise DataError(
            f"{source}: column {name!r} has the timestamp {shown(raw.iloc[bad])} "
            f"at data row {bad + 1}: neither a number nor an ISO 8601 date"
        )
    values = t.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all() or np.abs(values).max(initial=0) >= 2.0**63:
        bad = int(np.flatnonzero(~np.isfinite(values) | (np.abs(values) >= 2.0**63))[0])
        raise DataError(
            f"{source}: column {name!r} has the out-of-range timestamp "
            f"{shown(raw.iloc[bad])} at data row {bad + 1}"
        )
    if t.dtype.kind in "iu":
        return t.astype(np.int64).to_numpy()
    if np.all(values == np.floor(values)) and np.abs(values).max(initial=0) < 2.0**53:
        return values.astype(np.int64)
    return values


def _datetime_ns(values, raw, name, source):
    """Datetimes as int64 nanoseconds since 1970 (UTC); a date outside what that holds is an
    error naming its row (``raw``: the column as read)."""
    if getattr(values.dt, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    try:
        return values.astype("datetime64[ns]").astype(np.int64).to_numpy()
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        lo, hi = pd.Timestamp.min, pd.Timestamp.max
        bad = int(np.flatnonzero(((values < lo) | (values > hi)).to_numpy())[0])
        raise DataError(
            f"{source}: column {name!r} has the date {shown(raw.iloc[bad])} at data row "
            f"{bad + 1}: outside {lo:%Y-%m-%d} to {hi:%Y-%m-%d}, the dates a timestamp in "
            "nanoseconds holds"
        ) from None


def standardize(df, user_col="user", item_col="item", time_col="timestamp", source="data"):
    """The interactions of any DataFrame as columns ``user``, ``item`` (int64 when the column
    is of an integer type, else strings) and, unless ``time_col`` is None, ``timestamp``
    (see :func:`_timestamps`), in the frame's order; problems are :class:`DataError`."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    wanted = [c for c in (user_col, item_col, time_col) if c is not None]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        cols = ", ".join(shown(str(c)) for c in list(df.columns)[:20])
        raise DataError(
            f"{source}: missing column(s) {', '.join(map(shown, missing))}; it has "
            f"{cols} (choose with --user-col/--item-col/--time-col, or user_col=, "
            f"item_col=, time_col= in Python; time_col=None for no timestamps)"
        )
    if len(df) == 0:
        raise DataError(f"{source} holds no interactions")
    out = pd.DataFrame(
        {"user": _ids(df[user_col], user_col, source), "item": _ids(df[item_col], item_col, source)}
    )
    if time_col is not None:
        out["timestamp"] = _timestamps(df[time_col], time_col, source)
    return out


MAX_HEADER_BYTES = 1 << 20


def _check_first_line(path):
    """A header line longer than 1 MiB is no interaction log's (and would make the parser hold
    it all in memory): one :class:`DataError` before pandas reads anything."""
    openers = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    opener = openers.get(os.path.splitext(path)[1].lower(), open)
    try:
        with opener(path, "rb") as fh:
            head = fh.read(MAX_HEADER_BYTES + 1)
    except (OSError, EOFError, lzma.LZMAError, zlib.error):
        return  # the reader below names the problem
    if len(head) > MAX_HEADER_BYTES and b"\n" not in head:
        raise DataError(
            f"{path}: the first line is longer than {MAX_HEADER_BYTES >> 20} MiB; "
            f"this is not a delimited file with a header row"
        )


def load_interactions(
    path, fmt="auto", user_col="user", item_col="item", time_col="timestamp", sep=None
):
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
            df = _read(
                lambda: pd.read_csv(
                    path,
                    sep="\t",
                    header=None,
                    names=["user", "item", "rating", "timestamp"],
                    **str_kw,
                ),
                path,
                "MovieLens u.data",
            )
        elif name.startswith("ratings.dat"):
            df = _read(
                lambda: pd.read_csv(
                    path,
                    sep="::",
                    engine="python",
                    header=None,
                    names=["user", "item", "rating", "timestamp"],
                    **str_kw,
                ),
                path,
                "MovieLens ratings.dat",
            )
        else:
            df = _read(lambda: pd.read_csv(path, **str_kw), path, "MovieLens ratings.csv")
            df = df.rename(columns={"userId": "user", "movieId": "item"})
        return standardize(df, "user", "item", "timestamp", path)
    if fmt == "amazon-food":
        df = _read(
            lambda: pd.read_csv(
                path, usecols=lambda c: c in ("UserId", "ProductId", "Time"), **str_kw
            ),
            path,
            "Amazon Fine Food Reviews.csv",
        )
        return standardize(df, "UserId", "ProductId", "Time", path)
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError as exc:
            raise DataError(
                "reading Parquet needs pyarrow (pip install 'lopt_np[parquet]')"
            ) from exc
        df = _read(lambda: pd.read_parquet(path), path, "Parquet")
        return standardize(df, user_col, item_col, time_col, path)
    sep = sep or ("\t" if fmt == "tsv" else ",")
    _check_first_line(path)
    df = _read(lambda: pd.read_csv(path, sep=sep, **str_kw), path, fmt.upper())
    return standardize(df, user_col, item_col, time_col, path)
