"""``lopt reproduce`` (Table 2) and ``lopt plot`` (Figures 1, 6, 7, 8) on small generated data."""

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest

from helpers import run_cli as run
from lopt_np.errors import ConfigError
from lopt_np.reproduction.plots import group_gain, plot_run
from lopt_np.reproduction.reproduce import METHODS, TABLE_METRICS, check_methods, folder_name

TINY = [
    "--synthetic-users",
    "150",
    "--synthetic-items",
    "300",
    "--min-count",
    "5",
    "--epochs",
    "3",
    "--dim",
    "8",
    "--batch-size",
    "256",
    "--lambdas",
    "0.1,0.001,0",
    "--sgda-lrs",
    "10,30",
    "--baseline-epochs",
    "2",
    "--neumf-mlp-dim",
    "4",
    "--neumf-layers",
    "8,4",
    "--amf-eps",
    "0.05,0.1",
    "--lambda-lr",
    "0.05",
]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def repro_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("repro") / "table"
    r = run("reproduce", *TINY, "--out", out)
    assert r.exit_code == 0, r.output
    return out


def test_reproduce_writes_table2_and_every_method(repro_dir):
    files = set(os.listdir(repro_dir))
    assert {"table2.csv", "table2.md", "table2.json"} <= files
    assert {folder_name(m) for m in METHODS} <= files
    table = pd.read_csv(repro_dir / "table2.csv")
    assert list(table["method"]) == list(METHODS)
    for m in TABLE_METRICS:  # gains recomputed from the values
        np.testing.assert_allclose(table[f"gain_{m}"], table[m] / table[m][0] - 1, rtol=1e-12)
    md = (repro_dir / "table2.md").read_text()
    assert md.count("\n") == 2 + len(METHODS) and "MF-λOpt-DUI" in md and "HR@100" in md


def test_each_row_is_its_saved_model(repro_dir):
    table = pd.read_csv(repro_dir / "table2.csv").set_index("method")
    grid = json.loads((repro_dir / "MF-lFix" / "grid.json").read_text())
    selected = next(r for r in grid["runs"] if r["lambda"] == grid["selected_lambda"])
    for m in TABLE_METRICS:
        assert table.loc["MF-λFix", m] == pytest.approx(selected[f"test_{m}"], rel=1e-12)
    for method in METHODS[1:]:
        saved = json.loads((repro_dir / folder_name(method) / "metrics.json").read_text())
        for m in TABLE_METRICS:
            assert table.loc[method, m] == pytest.approx(saved["test"][m], rel=1e-12)
    sgda = json.loads((repro_dir / "SGDA" / "config.json").read_text())["train"]
    assert (sgda["granularity"], sgda["optimizer"], sgda["learn_lambda"]) == ("D", "sgd", True)
    search = json.loads((repro_dir / "table2.json").read_text())["sgda_lr_search"]
    assert sgda["lr"] == max(search, key=lambda s: s[1])[0]
    amf = json.loads((repro_dir / "AMF" / "config.json").read_text())["train"]
    assert amf["lam"] == grid["selected_lambda"]  # AMF continues MF-λFix with its λ
    search = json.loads((repro_dir / "table2.json").read_text())["amf_eps_search"]
    assert [e for e, _ in search] == [0.05, 0.1]
    assert amf["adv_eps"] == max(search, key=lambda s: s[1])[0]
    dui = json.loads((repro_dir / "MF-lOpt-DUI" / "config.json").read_text())["train"]
    assert dui["granularity"] == "DUI" and dui["lambda_lr"] == 0.05


def test_reproduce_is_deterministic(tmp_path):
    methods = "MF-lFix,AMF,NeuMF,MF-lOpt-DUI"
    tables = []
    for name in ("a", "b"):
        r = run("reproduce", *TINY, "--methods", methods, "--out", tmp_path / name)
        assert r.exit_code == 0, r.output
        tables.append(pd.read_csv(tmp_path / name / "table2.csv"))
    assert list(tables[0]["method"]) == ["MF-λFix", "AMF", "NeuMF", "MF-λOpt-DUI"]
    for m in TABLE_METRICS + ("best_epoch",):
        assert list(tables[0][m]) == list(tables[1][m])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--methods", "MF-lOpt-X"], "unknown method(s) MF-lOpt-X"),
        (["--sgda-lrs", "0"], "SGDA step size"),
        (["--eval-every", "2"], "eval_every must be 1"),
        (["--neumf-layers", "0"], "positive integers"),
    ],
)
def test_reproduce_rejects_bad_settings_before_work(tmp_path, args, message):
    r = run("reproduce", *TINY, *args, "--out", tmp_path / "x")
    assert r.exit_code != 0 and message in r.output
    assert "Traceback" not in r.output and not (tmp_path / "x").exists()


def test_check_methods_keeps_the_paper_order():
    assert check_methods(["MF-lOpt-DUI", "SGDA", "MF-λFix"]) == ("MF-λFix", "SGDA", "MF-λOpt-DUI")
    with pytest.raises(ConfigError):
        check_methods([])


def _is_png(path):
    with open(path, "rb") as fh:
        return fh.read(8) == PNG_MAGIC and os.path.getsize(path) > 10_000


def test_plot_draws_the_four_figures_of_a_reproduction(repro_dir):
    r = run("plot", repro_dir)
    assert r.exit_code == 0, r.output
    names = sorted(os.listdir(repro_dir / "figures"))
    assert names == [
        "figure1_lambda_grid.png",
        "figure6_group_gain.png",
        "figure7_lambda_trajectories.png",
        "figure8_lambda_vs_frequency.png",
    ]
    assert all(_is_png(repro_dir / "figures" / n) for n in names)
    for fig in ("Figure 1", "Figure 6", "Figure 7", "Figure 8"):
        assert fig in r.output


def test_plot_of_a_grid_and_of_a_train_run(repro_dir, tmp_path):
    written = plot_run(str(repro_dir / "MF-lFix"), str(tmp_path / "grid"))
    assert [os.path.basename(p) for p in written] == ["figure1_lambda_grid.png"]
    written = plot_run(
        str(repro_dir / "MF-lOpt-DUI"), str(tmp_path / "dui"), baseline=str(repro_dir / "MF-lFix")
    )
    assert sorted(os.path.basename(p) for p in written) == [
        "figure6_group_gain.png",
        "figure7_lambda_trajectories.png",
        "figure8_lambda_vs_frequency.png",
        "learning_curve.png",
    ]
    assert all(_is_png(p) for p in written)


def test_learning_curve_and_footer(repro_dir, tmp_path, monkeypatch):
    """The curve holds one point per evaluated epoch of each run; the footer names the data
    and the settings from config.json."""
    import lopt_np.reproduction.plots as plots

    drawn = {}
    monkeypatch.setattr(
        plots, "_save", lambda fig, path, note="": drawn.update(axes=fig.axes, note=note)
    )
    plots.figure_learning_curve(
        str(repro_dir / "MF-lOpt-DUI"), str(tmp_path / "c.png"), baseline=str(repro_dir / "MF-lFix")
    )
    lines = [line for line in drawn["axes"][0].get_lines() if line.get_linestyle() == "-"]
    history = json.loads((repro_dir / "MF-lOpt-DUI" / "metrics.json").read_text())["history"]
    assert len(lines) == 2 and len(lines[0].get_xdata()) == len(history)
    config = json.loads((repro_dir / "MF-lOpt-DUI" / "config.json").read_text())["train"]
    assert "synthetic data" in drawn["note"] and f"K={config['dim']}" in drawn["note"]
    assert f"λOpt-{config['granularity']}" in drawn["note"]


def test_group_gain_is_the_relative_improvement(repro_dir):
    fix = json.loads((repro_dir / "MF-lFix" / "metrics.json").read_text())["groups"]
    opt = json.loads((repro_dir / "MF-lOpt-DUI" / "metrics.json").read_text())["groups"]
    gain = group_gain(fix["users"], opt["users"], "hr@100")
    for g, f, o in zip(gain, fix["users"], opt["users"]):
        if f["count"] and f["hr@100"]:
            assert g == pytest.approx(100 * (o["hr@100"] - f["hr@100"]) / f["hr@100"])
        else:
            assert np.isnan(g)


def test_plot_errors_are_one_line(tmp_path, repro_dir, monkeypatch):
    r = run("plot", tmp_path / "missing")
    assert r.exit_code != 0 and "Error:" in r.output and "Traceback" not in r.output
    (tmp_path / "empty").mkdir()
    r = run("plot", tmp_path / "empty")
    assert "is not a run, grid or reproduction folder" in r.output
    r = run(
        "train",
        "--synthetic-users",
        "150",
        "--synthetic-items",
        "300",
        "--min-count",
        "5",
        "--epochs",
        "1",
        "--dim",
        "4",
        "--fixed-lambda",
        "--lambda-init",
        "0.01",
        "--no-compare",
        "--out",
        tmp_path / "fix",
    )
    assert r.exit_code == 0, r.output
    r = run("plot", tmp_path / "fix")
    assert r.exit_code != 0 and "fixed-λ run" in r.output
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("plot", repro_dir, "--out", tmp_path / "nofig")
    assert r.exit_code != 0 and "pip install 'lopt_np[plot]'" in r.output
    assert not (tmp_path / "nofig").exists()
