"""MF-λFix grid search (``lopt_np.reproduction.grid`` and ``lopt grid``)."""

import json

import numpy as np
import pytest

from lopt_np import ConfigError
from lopt_np.reproduction.grid import grid_search, train_one
from lopt_np.trainer import LambdaOpt

PARAMS = dict(dim=8, epochs=2, batch_size=256, lr=0.01, ks=(10, 50), early_stopping="hr@50")


@pytest.fixture(scope="module")
def sweep(small_split):
    return grid_search(small_split, (1.0, 1e-2, 0.0), **PARAMS)


def test_grid_selects_the_best_validation_value_and_reports_its_test_metrics(small_split, sweep):
    result, model = sweep
    assert [r.lam for r in result.runs] == [1.0, 1e-2, 0.0]
    scores = [r.valid["hr@50"] for r in result.runs]
    assert result.best.valid["hr@50"] == max(scores)
    assert result.best is result.runs[int(np.argmax(scores))]
    assert model.config["lambda_init"] == result.best.lam
    assert model.evaluate(small_split, "test")["metrics"] == result.best.test
    assert result.wall_seconds >= max(r.train_seconds for r in result.runs)
    # λ matters: a strong penalty gives another model than none
    assert result.runs[0].test != result.runs[2].test


def test_each_grid_run_is_the_fixed_lambda_training(small_split, sweep):
    result, _ = sweep
    model = LambdaOpt(learn_lambda=False, granularity="global", lambda_init=1e-2, **PARAMS).fit(
        small_split
    )
    assert model.evaluate(small_split, "test")["metrics"] == result.runs[1].test


def test_parallel_grid_gives_the_sequential_numbers(small_split, sweep):
    parallel, _ = grid_search(small_split, (1.0, 1e-2, 0.0), jobs=2, **PARAMS)
    for a, b in zip(sweep[0].runs, parallel.runs):
        assert (a.lam, a.valid, a.test, a.best_epoch) == (b.lam, b.valid, b.test, b.best_epoch)


@pytest.mark.parametrize(
    "lambdas, jobs, kw, message",
    [
        ((), 1, {}, "empty"),
        ((0.1, -1.0), 1, {}, "≥ 0"),
        ((0.1, 0.1), 1, {}, "repeats"),
        ((0.1,), 0, {}, "jobs"),
        ((0.1,), 2, {"device": "reference"}, "jobs=1"),
        ((0.1,), 1, {"dim": 0}, "dim"),
    ],
)
def test_bad_grid_settings_raise_config_errors(small_split, lambdas, jobs, kw, message):
    with pytest.raises(ConfigError, match=message):
        grid_search(small_split, lambdas, jobs=jobs, **{**PARAMS, **kw})


def test_grid_on_the_cuda_backend_matches_cpu(small_split, monkeypatch):
    """``device="cuda"`` (simulated unless NUMBA_ENABLE_CUDASIM=0) on a tiny split."""
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU and the simulator is off")
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions
    from lopt_np.kernels.cuda import _jit

    monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 32)
    split = build_split(synthetic_interactions(n_users=30, n_items=50, seed=4), min_count=3)
    kw = dict(dim=4, epochs=1, batch_size=128, ks=(5, 10), early_stopping="hr@10")
    cpu, _ = train_one(split, kw, 0.1)
    gpu, _ = train_one(split, {**kw, "device": "cuda"}, 0.1)
    for name, value in cpu.test.items():
        assert gpu.test[name] == pytest.approx(value, abs=1e-6), name


def test_lopt_grid_writes_the_table_and_the_selected_model(tmp_path):
    from click.testing import CliRunner

    from lopt_np.cli.main import main

    out = tmp_path / "grid"
    args = [
        "grid",
        "--synthetic-users",
        "150",
        "--synthetic-items",
        "300",
        "--min-count",
        "5",
        "--epochs",
        "1",
        "--dim",
        "8",
        "--batch-size",
        "256",
        "--lambdas",
        "1,0.01,0",
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert "selected λ" in r.output and "sweep wall time" in r.output
    grid = json.loads((out / "grid.json").read_text())
    assert [row["lambda"] for row in grid["runs"]] == [1.0, 0.01, 0.0]
    header = (out / "grid.csv").read_text().splitlines()[0].split(",")
    assert header[:2] == ["lambda", "best_epoch"] and "test_hr@100" in header
    best = max(grid["runs"], key=lambda row: row["valid_hr@100"])
    assert grid["selected_lambda"] == best["lambda"]
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    assert metrics["hr@100"] == pytest.approx(best["test_hr@100"], abs=1e-12)
    bad = CliRunner().invoke(
        main, args[:-2] + ["--lambdas", "0.1,x", "--out", str(tmp_path / "bad")]
    )
    lines = [x for x in bad.output.splitlines() if x.startswith("Error")]
    assert bad.exit_code != 0 and len(lines) == 1 and "--lambdas" in lines[0]
    assert not (tmp_path / "bad").exists()


def test_a_diverging_lambda_is_recorded_and_the_grid_goes_on(tmp_path):
    """λ = 1e6 under SGD at lr 0.5 blows up (NaN in epoch 1); λ = 0.01 trains: the grid
    selects it, grid.csv marks the failed run, and only when every λ fails is it an error."""
    import pandas as pd
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions
    from lopt_np.errors import TrainingDivergedError
    from lopt_np.reproduction.grid import save_grid

    split = build_split(synthetic_interactions(n_users=60, n_items=90, seed=4), min_count=3)
    params = dict(
        optimizer="sgd", lr=0.5, epochs=3, dim=8, batch_size=64, ks=(5, 10), early_stopping="hr@10"
    )
    result, model = grid_search(split, [1e6, 0.01], **params)
    failed, ok = result.runs
    assert "nan" in failed.failed and not ok.failed and result.best is ok
    text = save_grid(str(tmp_path), result, model, split, split.summary(), params, 1.0)
    table = pd.read_csv(tmp_path / "grid.csv")
    assert list(table.status) == [f"failed: {failed.failed}", "ok"]
    assert table.test_auc.isna().tolist() == [True, False]
    assert "failed" in text and "<- selected" in text
    with pytest.raises(TrainingDivergedError, match="every λ of the grid diverged"):
        grid_search(split, [1e6, 1e7], **params)
