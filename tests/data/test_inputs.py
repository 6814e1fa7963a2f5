"""Any data shape into ``LambdaOpt.fit``: DataFrame, file, scipy.sparse, no timestamps, ISO
dates; one id rule for every path; what the filter dropped; callbacks, a time budget,
verbose progress and the JSON-lines log."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lopt_np import ConfigError, DataError, LambdaOpt
from lopt_np.data.inputs import DataConfig, to_split
from lopt_np.data.synthetic import synthetic_interactions
from lopt_np.io import format_summary
from lopt_np.progress import JsonLinesLog

FAST = dict(epochs=2, dim=8, batch_size=256, patience=0)


@pytest.fixture(scope="module")
def frame():
    """Synthetic interactions with integer ids (1-based, so string and numeric order differ)."""
    df = synthetic_interactions(n_users=120, n_items=150, seed=5)
    return pd.DataFrame(
        {
            "user": df.user.str[1:].astype(int) + 1,
            "item": df.item.str[1:].astype(int) + 1,
            "timestamp": df.timestamp,
        }
    )


def same_split(a, b):
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part), err_msg=part)
    np.testing.assert_array_equal(a.user_ids.astype(str), b.user_ids.astype(str))
    np.testing.assert_array_equal(a.item_ids.astype(str), b.item_ids.astype(str))


def test_dataframe_and_file_give_the_same_split_and_results(frame, tmp_path):
    path = tmp_path / "data.csv"
    frame.to_csv(path, index=False)
    from_frame, from_file = to_split(frame), to_split(str(path), DataConfig(cache=False))
    same_split(from_frame, from_file)
    assert from_frame.user_ids.dtype.kind == "i" and from_file.user_ids.dtype.kind == "U"
    a = LambdaOpt(**FAST).fit(frame)
    b = LambdaOpt(**FAST).fit(str(path), cache=False)
    assert a.evaluate()["metrics"] == b.evaluate()["metrics"]
    np.testing.assert_array_equal(a.P, b.P)


def test_integer_ids_keep_their_type_through_save_and_load(frame, tmp_path):
    model = LambdaOpt(**FAST).fit(frame)
    model.save(tmp_path)
    from lopt_np import load

    back = load(tmp_path)
    assert back.user_ids.dtype.kind == "i" and back.item_ids.dtype.kind == "i"
    user = int(back.user_ids[0])
    np.testing.assert_array_equal(back.recommend(user)[0], model.recommend(user)[0])


def test_no_timestamps_gives_a_seeded_random_split(frame):
    untimed = frame.drop(columns=["timestamp"])
    a = to_split(untimed, DataConfig(time_col=None))
    assert "random order (seed 0)" in a.info["split"] and not a.info["timestamps"]
    same_split(a, to_split(untimed, DataConfig(time_col=None)))
    b = to_split(untimed, DataConfig(time_col=None, split_seed=1))
    assert not np.array_equal(a.test, b.test)
    assert (len(a.train), len(a.valid), len(a.test)) == (len(b.train), len(b.valid), len(b.test))
    model = LambdaOpt(**FAST).fit(untimed, time_col=None)
    assert 0 < model.evaluate()["metrics"]["auc"] < 1
    with pytest.raises(DataError, match="needs timestamps"):
        to_split(untimed, DataConfig(time_col=None, split="time"))


def test_leave_last_out_takes_the_latest_two_of_each_user(frame):
    split = to_split(frame, DataConfig(split="leave-last-out"))
    counts = np.bincount(split.train[:, 0], minlength=split.n_users) + 2
    assert (np.bincount(split.test[:, 0], minlength=split.n_users) == 1).all()
    assert (np.bincount(split.valid[:, 0], minlength=split.n_users) == 1).all()
    assert counts.sum() == len(frame)
    times = {(u, i): t for u, i, t in frame.itertuples(index=False)}
    u0 = 0
    user = split.user_ids[u0]
    history = frame[frame.user == user]
    latest = history.sort_values("timestamp", kind="stable").item.iloc[-1]
    assert split.item_ids[split.test[split.test[:, 0] == u0, 1][0]] == latest
    assert times  # the frame holds (user, item, time) rows


def test_sparse_matrix_rows_are_users_nonzeros_are_positives(frame):
    values = np.ones(len(frame))
    values[0] = 0.0  # an explicit zero is no interaction
    X = sp.csr_matrix((values, (frame.user.to_numpy(), frame.item.to_numpy())))
    assert X.nnz == len(frame)
    split = to_split(X)
    assert split.summary()["interactions"] == X.count_nonzero()
    assert split.user_ids.dtype.kind == "i" and "random order" in split.info["split"]
    model = LambdaOpt(**FAST).fit(X)
    assert 0 < model.evaluate()["metrics"]["auc"] < 1
    with pytest.raises(ConfigError, match="no timestamps"):
        to_split(X, DataConfig(split="time"))


def test_iso_dates_and_fractional_timestamps_order_exactly():
    rows = [("a", f"i{k}") for k in range(10)] + [("b", f"j{k}") for k in range(10)]
    seconds = [5.5, 1.25, 1.5, 9.0, 3.75, 2.0, 8.5, 4.0, 7.25, 6.0] * 2
    dates = [pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(seconds=s) for s in seconds]
    numeric = pd.DataFrame(rows, columns=["user", "item"]).assign(timestamp=seconds)
    iso = numeric.assign(timestamp=[d.isoformat() for d in dates])
    a, b = to_split(numeric), to_split(iso)
    same_split(a, b)
    order = np.argsort(seconds[:10], kind="stable")
    a_test = [a.item_ids[i] for u, i in a.test if a.user_ids[u] == "a"]
    assert a_test == [rows[k][1] for k in order[-2:]]  # at 8.5 s and 9 s
    assert sorted(a_test) == ["i3", "i6"]


@pytest.mark.parametrize(
    "frame_rows, message",
    [
        (
            {"user": ["a", "", "b"], "item": ["x", "y", "z"], "timestamp": [1, 2, 3]},
            "missing or blank id.*row 2",
        ),
        (
            {"user": ["a", "b", None], "item": ["x", "y", "z"], "timestamp": [1, 2, 3]},
            "missing or blank id.*row 3",
        ),
        (
            {"user": ["a", "b"], "item": ["x", "y"], "timestamp": ["1", "yesterday" * 20]},
            "timestamp 'yesterdayyesterday.*… at data row 2",
        ),
        ({"user": ["a", "b"], "item": ["x", "y"], "timestamp": [1.0, 1e30]}, "out-of-range"),
        ({"user": ["a"], "item": ["x"]}, "missing column.*'timestamp'.*time_col=None"),
    ],
)
def test_bad_values_are_one_clear_error_naming_the_row(frame_rows, message):
    with pytest.raises(DataError, match=message):
        to_split(pd.DataFrame(frame_rows))


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda est, s: est.fit(None), DataError, "cannot train on a NoneType"),
        (lambda est, s: est.fit(s, min_count=5), ConfigError, "prepared Split"),
        (lambda est, s: est.fit(s, colour="red"), ConfigError, "unknown parameter.*colour"),
        (lambda est, s: est.fit(s, time_budget=-1), ConfigError, "time_budget"),
        (lambda est, s: est.fit(s, callbacks=[1]), ConfigError, "callables"),
        (lambda est, s: est.fit(pd.DataFrame({"u": [1]})), DataError, "missing column"),
    ],
)
def test_fit_argument_errors(small_split, call, error, message):
    with pytest.raises(error, match=message):
        call(LambdaOpt(**FAST), small_split)


def test_the_summary_says_what_the_filter_dropped(frame):
    unfiltered = to_split(frame)
    assert "nothing dropped" in format_summary(unfiltered.summary())
    filtered = to_split(frame, DataConfig(min_count=15))
    info = filtered.info
    assert info["dropped_interactions"] == len(frame) - filtered.summary()["interactions"] > 0
    assert info["dropped_users"] == frame.user.nunique() - filtered.n_users
    assert info["dropped_items"] == frame.item.nunique() - filtered.n_items > 0
    text = format_summary(filtered.summary())
    assert (
        f"dropped {info['dropped_interactions']:,} interactions, {info['dropped_users']:,} "
        f"users and {info['dropped_items']:,} items with fewer than 15"
    ) in text


def test_short_histories_train_but_are_not_evaluated():
    df = pd.DataFrame(
        {
            "user": ["a"] * 10 + ["b"] * 3,
            "item": [f"i{k}" for k in range(10)] + ["i0", "i1", "other"],
            "timestamp": np.arange(13),
        }
    )
    split = to_split(df)
    b = list(split.user_ids).index("b")
    assert b in split.train[:, 0] and b not in split.test[:, 0]
    assert split.info["users_without_test"] == 1
    assert "1 users with too short a history" in format_summary(split.summary())


def test_callbacks_see_each_epoch_and_can_stop(small_split):
    seen = []

    def watch(record, model):
        seen.append((record["epoch"], model.recommend(model.user_ids[0], n=3)[0]))
        return record["epoch"] == 2

    model = LambdaOpt(**{**FAST, "epochs": 5}).fit(small_split, callbacks=[watch])
    assert [e for e, _ in seen] == [1, 2] and len(model.history) == 2
    assert "watch" in model.stop_reason and len(seen[0][1]) == 3


def test_time_budget_stops_after_the_epoch_that_passes_it(small_split):
    model = LambdaOpt(**{**FAST, "epochs": 50}).fit(small_split, time_budget=1e-9)
    assert len(model.history) == 1 and "time budget" in model.stop_reason


def test_verbose_and_json_log(small_split, tmp_path, capsys):
    log = JsonLinesLog(tmp_path / "log.jsonl")
    LambdaOpt(**FAST).fit(small_split, log, verbose=True)
    log.close()
    err = capsys.readouterr().err
    assert "epoch 1/2:" in err and "epoch 2/2:" in err and "Λ^P" in err and "Λ^Q" in err
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2] and "valid" in epochs[0]
    assert any(e["event"] == "step" and e["mean_lambda_P"] > 0 for e in events)
