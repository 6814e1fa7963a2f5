"""Property-based tests of the loaders and the split (hypothesis): random CSV files with random
ids, timestamps, blanks, duplicates and encodings never end in anything but a Split or one
DataError, and a valid file keeps its interactions exactly."""

import csv
import io

import pytest

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis is not installed (pip install -e .[test])"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from lopt_np.data.inputs import DataConfig, to_split  # noqa: E402
from lopt_np.errors import DataError  # noqa: E402

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ids = st.one_of(
    st.integers(-5, 40).map(str),
    st.text(min_size=0, max_size=6),
    st.sampled_from(["007", "7", "a,b", 'q"uote', " pad ", "ü", "", "NaN"]),
)
stamps = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        [
            "2024-01-01",
            "2024-02-30",
            "2024-03-01T10:00:00+02:00",
            "",
            "yesterday",
            "1e400",
            "9" * 30,
        ]
    ),
)


def write_csv(path, rows, encoding):
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["user", "item", "timestamp"])
    writer.writerows(rows)
    try:
        path.write_bytes(buf.getvalue().encode(encoding))
    except UnicodeEncodeError:
        path.write_bytes(buf.getvalue().encode("utf-8"))


@SETTINGS
@given(
    rows=st.lists(st.tuples(ids, ids, stamps), max_size=40),
    encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]),
    split=st.sampled_from(["auto", "random", "leave-last-out"]),
)
def test_any_csv_gives_a_split_or_one_data_error(tmp_path, rows, encoding, split):
    path = tmp_path / "log.csv"
    write_csv(path, rows, encoding)
    try:
        result = to_split(str(path), DataConfig(cache=False, split=split))
    except DataError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 600
        return
    result.validate()


@SETTINGS
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 25), st.integers(0, 30), st.integers(0, 10**9)),
        min_size=1,
        max_size=300,
    ),
    as_text=st.booleans(),
)
def test_a_valid_file_keeps_its_interactions_exactly(tmp_path, pairs, as_text):
    """Every distinct (user, item) of the file is in exactly one part of the split, with its
    original ids (strings from a file), whatever the order and the duplicates."""
    path = tmp_path / "log.csv"
    rows = [(f"u{u}" if as_text else u, f"i{i}" if as_text else i, t) for u, i, t in pairs]
    write_csv(path, rows, "utf-8")
    try:
        split = to_split(str(path), DataConfig(cache=False))
    except DataError as exc:  # too little data for a split: said, not a crash
        assert any(k in str(exc) for k in ("no user has a history", "every item"))
        return
    got = []
    for part in ("train", "valid", "test"):
        pairs_ = getattr(split, part)
        got += [(str(split.user_ids[u]), str(split.item_ids[i])) for u, i in pairs_]
    want = {(str(u), str(i)) for u, i, _ in rows}
    assert len(got) == len(set(got)) == len(want) and set(got) == want
    assert split.info["duplicates_collapsed"] == len(rows) - len(want)
