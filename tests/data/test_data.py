"""Loaders, preprocessing (SPEC §7) and the split cache, on small files written by the tests."""

import gzip

import numpy as np
import pandas as pd
import pytest

from lopt_np.data.loaders import load_interactions
from lopt_np.data.preprocess import (
    build_split,
    chronological_split,
    collapse_duplicates,
    filter_records,
    load_split,
)
from lopt_np.data.synthetic import synthetic_interactions
from lopt_np.errors import DataError

ROWS = [("1", "10", 5, 100), ("1", "11", 3, 50), ("2", "10", 4, 70)]


def test_movielens_u_data(tmp_path):
    p = tmp_path / "u.data"
    p.write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in ROWS))
    df = load_interactions(p)
    assert list(df.user) == ["1", "1", "2"] and list(df.timestamp) == [100, 50, 70]


def test_movielens_ratings_dat_and_csv(tmp_path):
    p = tmp_path / "ratings.dat"
    p.write_text("".join(f"{u}::{i}::{r}::{t}\n" for u, i, r, t in ROWS))
    assert list(load_interactions(p).item) == ["10", "11", "10"]
    c = tmp_path / "ratings.csv"
    c.write_text(
        "userId,movieId,rating,timestamp\n" + "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS)
    )
    assert list(load_interactions(c).user) == ["1", "1", "2"]


def test_amazon_food_reviews(tmp_path):
    p = tmp_path / "Reviews.csv"
    p.write_text(
        "Id,ProductId,UserId,ProfileName,Time,Summary\n"
        '1,B001,A3SG,"Some, One",1303862400,"Good"\n2,B002,A1D8,x,1346976000,ok\n'
    )
    df = load_interactions(p)
    assert list(df.user) == ["A3SG", "A1D8"] and list(df.item) == ["B001", "B002"]


def test_generic_csv_keeps_leading_zeros_and_reads_gzip(tmp_path):
    p = tmp_path / "log.csv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("uid,sku,ts\n007,0012,5\n008,0012,6\n")
    df = load_interactions(p, "csv", "uid", "sku", "ts")
    assert list(df.user) == ["007", "008"] and list(df.item) == ["0012", "0012"]


def test_tsv(tmp_path):
    p = tmp_path / "log.tsv"
    p.write_text("user\titem\ttimestamp\na\tb\t1\n")
    assert len(load_interactions(p)) == 1


@pytest.mark.parametrize(
    "content, fmt, kw, message",
    [
        (None, "csv", {}, "not found"),
        ("user,item\na,b\n", "csv", {}, "missing column"),
        (
            "user,item,timestamp\na,b,yesterday\n",
            "csv",
            {},
            "timestamp 'yesterday' at data row 1: neither a number nor an ISO",
        ),
        (
            "user,item,timestamp\na,b,2024-01-01\na,c,-1\n",
            "csv",
            {},
            "date '-1' at data row 2: outside 1677-09-21 to 2262-04-11",
        ),
        (
            "user,item,timestamp\na,b,3000-01-01T00:00:00Z\n",
            "csv",
            {},
            "date '3000-01-01T00:00:00Z' at data row 1: outside",
        ),
        ("user,item,timestamp\na,b,\n", "csv", {}, "missing timestamp"),
        ("user,item,timestamp\n", "csv", {}, "no interactions"),
        ("", "csv", {}, "empty"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path, content, fmt, kw, message):
    p = tmp_path / "x.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(DataError, match=message):
        load_interactions(p, fmt, **kw)


def test_wrongly_compressed_file(tmp_path):
    p = tmp_path / "x.csv.gz"
    p.write_text("user,item,timestamp\na,b,1\n")  # plain text behind a .gz name
    with pytest.raises(DataError, match="compressed"):
        load_interactions(p)


def test_duplicates_collapse_with_counts():
    df = pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "x", "y"], "timestamp": [5, 3, 4]})
    out = collapse_duplicates(df)
    row = out[out.item == "x"].iloc[0]
    assert len(out) == 2 and row["count"] == 2 and row["timestamp"] == 3


def test_single_pass_filter_and_kcore():
    # item z has 2 records; after dropping it, user c falls below 2
    df = pd.DataFrame(
        {
            "user": ["a", "a", "b", "b", "c", "c"],
            "item": ["x", "y", "x", "y", "x", "z"],
            "timestamp": range(6),
        }
    )
    one, rounds = filter_records(df, 2, kcore=False)
    assert rounds == 1 and "z" not in set(one.item) and "c" not in set(one.user)
    df2 = pd.DataFrame({"user": list("aabbcd"), "item": list("xyxyyx"), "timestamp": range(6)})
    core, rounds = filter_records(df2, 2, kcore=True)
    assert rounds >= 2 and set(core.user) == {"a", "b"}


def test_chronological_split_rounding_and_ties():
    n = 20
    df = pd.DataFrame(
        {
            "u": np.zeros(n, int),
            "i": np.arange(n),
            "timestamp": np.r_[np.arange(n - 1), n - 2],
            "_pos": np.arange(n),
        }
    )  # a tie at the end: original order
    train, valid, test = chronological_split(df)
    assert (len(train), len(valid), len(test)) == (12, 4, 4)
    assert list(test[:, 1]) == [16, 17, 18, 19]
    assert list(valid[:, 1]) == [12, 13, 14, 15]


@pytest.mark.parametrize(
    "n, counts",
    [
        (5, (3, 1, 1)),
        (7, (5, 1, 1)),
        (9, (6, 2, 1)),
        (10, (6, 2, 2)),
        (14, (9, 3, 2)),
        (19, (12, 4, 3)),
    ],
)
def test_short_histories_are_rounded_down_as_the_authors_code(n, counts):
    """test = ⌊0.2 n⌋, validation = ⌊0.25 (n − test)⌋ (half-up rounding would give
    n = 7 → 4/2/1, n = 9 → 5/2/2, n = 14 → 8/3/3)."""
    df = pd.DataFrame(
        {"u": np.zeros(n, int), "i": np.arange(n), "timestamp": np.arange(n), "_pos": np.arange(n)}
    )
    assert tuple(map(len, chronological_split(df))) == counts


def test_no_user_with_a_test_item_is_an_error():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "timestamp": [1, 2, 3]})
    with pytest.raises(DataError, match="no user has a history long enough"):
        build_split(df, min_count=0)


def test_nothing_left_after_filter():
    df = pd.DataFrame({"user": ["a"], "item": ["x"], "timestamp": [1]})
    with pytest.raises(DataError, match="no interactions left"):
        build_split(df, min_count=20)


def test_synthetic_data_is_deterministic():
    a = synthetic_interactions(400, 300, seed=1)
    b = synthetic_interactions(400, 300, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert not a.duplicated(["user", "item"]).any()
    assert (a.user.value_counts() >= 20).all()


def test_synthetic_degrees_follow_movielens_100k():
    """The default synthetic log has MovieLens-100K's user and item degree distribution: every
    quantile from 10 % to 90 % within a factor 1.5 (users) and 2 (items) of the real one."""
    from lopt_np.data.synthetic import DEGREE_QUANTILES, ML100K_ITEM_DEGREES, ML100K_USER_DEGREES

    df = synthetic_interactions()
    inner = slice(1, 6)  # the 10 %-90 % quantiles
    for counts, real, factor in (
        (df.user.value_counts(), ML100K_USER_DEGREES, 1.5),
        (df.item.value_counts(), ML100K_ITEM_DEGREES, 2.0),
    ):
        got = np.quantile(counts.to_numpy(), DEGREE_QUANTILES)[inner]
        ratio = got / np.asarray(real, float)[inner]
        assert (ratio < factor).all() and (ratio > 1 / factor).all(), (got, real)


def test_split_cache_is_keyed_by_content_and_options(tmp_path, monkeypatch):
    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path / "cache"))
    df = synthetic_interactions(100, 80, seed=2)
    p = tmp_path / "log.csv"
    df.to_csv(p, index=False)
    opts = {"min_count": 5, "kcore": False, "valid_frac": 0.2, "test_frac": 0.2}
    calls = []

    def loader():
        calls.append(1)
        return load_interactions(p)

    a = load_split(str(p), opts, loader)
    b = load_split(str(p), opts, loader)
    assert len(calls) == 1 and not a.info["cached"] and b.info["cached"]
    np.testing.assert_array_equal(a.test, b.test)
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    load_split(str(p), {**opts, "min_count": 6}, loader)
    assert len(calls) == 2


def test_hold_out_selection_takes_an_even_share_of_each_users_validation(small_split):
    from lopt_np.data.split import hold_out_selection

    held = hold_out_selection(small_split, 0.25)
    n_valid = np.bincount(small_split.valid[:, 0], minlength=small_split.n_users)
    n_sel = np.bincount(held.selection[:, 0], minlength=small_split.n_users)
    np.testing.assert_array_equal(n_sel, np.floor(n_valid * 0.25 + 1e-9))
    # a partition of the validation pairs, nothing else touched
    both = np.concatenate([held.valid, held.selection])
    assert sorted(map(tuple, both)) == sorted(map(tuple, small_split.valid))
    assert held.train is small_split.train and held.test is small_split.test
    assert hold_out_selection(small_split, 0) is small_split


def test_lambda_never_samples_the_selection_slice(small_split):
    """λOpt's validation batches come from the part of the validation Λ may see only, and
    their negatives avoid every validation interaction (SPEC §7-8)."""
    from lopt_np.data.split import hold_out_selection
    from lopt_np.sampling import TripletSampler

    held = hold_out_selection(small_split, 0.25)
    V = TripletSampler(held, 0).valid_triplets(1, 5000)
    sel = set(map(tuple, held.selection))
    assert not sel & set(zip(V.users.tolist(), V.pos.tolist()))
    assert not sel & set(zip(V.users.tolist(), V.neg.tolist()))
