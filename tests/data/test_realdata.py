"""Checks on the real MovieLens files in ../shared/data (never copied into the project)."""

import json

import pytest
from click.testing import CliRunner

from helpers import independent_metrics, shared_file
from lopt_np.cli.main import main
from lopt_np.data.loaders import load_interactions

pytestmark = pytest.mark.realdata


def test_ml100k_loads_with_the_published_counts():
    df = load_interactions(shared_file("ml-100k.csv.gz"))
    assert len(df) == 100_000 and df.user.nunique() == 943 and df.item.nunique() == 1682


def test_ml1m_u2999_split_has_the_authors_counts():
    """No filter, 60/20/20 by time: the counts the authors' code gives (issue 4's anchor)."""
    from lopt_np.data.preprocess import build_split

    split = build_split(load_interactions(shared_file("ml-1m-u2999.csv.gz")), min_count=0)
    assert (len(split.train), len(split.valid), len(split.test)) == (294_413, 96_914, 96_323)


def test_ml100k_stats_no_filter_by_default_and_the_papers_filter(tmp_path, monkeypatch):
    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path))
    r = CliRunner().invoke(
        main, ["data", "stats", shared_file("ml-100k.csv.gz"), "--min-count", "20"]
    )
    assert r.exit_code == 0, r.output
    df = load_interactions(shared_file("ml-100k.csv.gz"))
    items = df.item.value_counts()
    kept = df[df.item.map(items) >= 20]
    kept = kept[kept.user.map(kept.user.value_counts()) >= 20]
    assert f"users {kept.user.nunique():,}" in r.output
    assert f"interactions {len(kept):,}" in r.output
    assert (
        f"dropped {len(df) - len(kept):,} interactions, "
        f"{df.user.nunique() - kept.user.nunique()} users and "
        f"{df.item.nunique() - kept.item.nunique()} items with fewer than 20"
    ) in r.output
    r = CliRunner().invoke(main, ["data", "stats", shared_file("ml-100k.csv.gz")])
    assert f"users {df.user.nunique():,}" in r.output and "nothing dropped" in r.output


def test_ml100k_train_and_reevaluate(tmp_path, monkeypatch):
    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "run"
    r = CliRunner().invoke(
        main,
        [
            "train",
            "--data",
            shared_file("ml-100k.csv.gz"),
            "--epochs",
            "8",
            "--lr",
            "0.01",
            "--dim",
            "32",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["auc"] > 0.75  # far above a random ranking (0.5)
    r = CliRunner().invoke(main, ["evaluate", str(out)])
    assert f"AUC {metrics['auc']:.4f}" in r.output
    for name, value in independent_metrics(out, k=100).items():  # SPEC §7 outside lopt_np
        assert abs(value - metrics[name]) < 1e-6, name
