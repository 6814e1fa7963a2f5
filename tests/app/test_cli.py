"""The ``lopt`` command through Click's CliRunner."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from helpers import independent_metrics, run_cli as run
from lopt_np.cli.main import main

TINY = [
    "--synthetic-users",
    "150",
    "--synthetic-items",
    "300",
    "--min-count",
    "5",
    "--epochs",
    "2",
    "--dim",
    "8",
    "--batch-size",
    "256",
    "--no-compare",
]
FILES = {
    "config.json",
    "metrics.json",
    "lambda_trajectory.npz",
    "model.npz",
    "model.json",
    "split.npz",
    "summary.txt",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    r = run("train", *TINY, "--out", out)
    assert r.exit_code == 0, r.output
    for name in ("AUC", "HR@50", "HR@100", "NDCG@50", "NDCG@100"):
        assert name in r.output
    return out


def test_train_writes_every_file(run_dir):
    assert set(os.listdir(run_dir)) == FILES
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics["test"]) == {"auc", "hr@50", "hr@100", "ndcg@50", "ndcg@100"}
    assert len(metrics["history"]) == 2 and "valid" in metrics["history"][0]
    assert metrics["groups"]["users"] and metrics["groups"]["items"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["train"]["granularity"] == "DUI" and config["data"]["source"] == "synthetic"
    with np.load(run_dir / "model.npz") as z:
        assert z["lambda_P"].shape == z["user_embeddings"].shape
    with np.load(run_dir / "lambda_trajectory.npz") as z:
        assert z["user_group_mean"].shape[0] == 2 and z["user_lambda"].shape[0] == 2
    with np.load(run_dir / "split.npz") as z:
        assert len(z["user_ids"]) == int(z["n_users"])


def test_evaluate_reproduces_metrics_json(run_dir):
    r = run("evaluate", run_dir)
    assert r.exit_code == 0, r.output
    test = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert f"HR@100 {test['hr@100']:.4f}" in r.output


def test_saved_model_can_be_evaluated_without_lopt_np(run_dir):
    """The saved files suffice: a plain NumPy evaluation gives metrics.json's numbers."""
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    for name, value in independent_metrics(run_dir).items():
        assert abs(value - metrics[name]) < 1e-6, name


def test_gradcheck_prints_every_derivative_passing():
    r = run("gradcheck", "--granularity", "DUI", "--optimizer", "adam")
    assert r.exit_code == 0, r.output
    assert "dL_val/dLambda" in r.output and "FAIL" not in r.output
    assert re.search(r"\b21 passed, 0 failed", r.output)
    assert "dL_APR/dP" in r.output and "dL_NeuMF/dW1" in r.output
    r = run("gradcheck", "--no-baselines")
    assert re.search(r"\b9 passed, 0 failed", r.output) and "NeuMF" not in r.output


def test_data_stats(tmp_path):
    p = tmp_path / "log.csv"
    rows = [f"u{u},i{i},{u * 100 + i}" for u in range(30) for i in range(25) if (u + i) % 3]
    p.write_text("user,item,timestamp\n" + "\n".join(rows) + "\n")
    r = run("data", "stats", p, "--min-count", "5", "--no-cache")
    assert r.exit_code == 0, r.output
    assert "users 30" in r.output and "train" in r.output and "density" in r.output


def _csv(tmp_path, text, name="log.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


BAD_CASES = {
    "missing file": (lambda t: ["--data", t / "nope.csv"], "not found"),
    "wrong compression": (
        lambda t: ["--data", _csv(t, "user,item,timestamp\na,b,1\n", "x.csv.gz")],
        "compressed",
    ),
    "missing column": (lambda t: ["--data", _csv(t, "user,item\na,b\n")], "missing column"),
    "misnamed column": (
        lambda t: ["--data", _csv(t, "user,item,timestamp\na,b,1\n"), "--user-col", "uid"],
        "'uid'",
    ),
    "non-numeric timestamp": (
        lambda t: ["--data", _csv(t, "user,item,timestamp\na,b,x\n")],
        "neither a number nor an ISO 8601 date",
    ),
    "missing timestamp": (
        lambda t: ["--data", _csv(t, "user,item,timestamp\na,b,\n")],
        "missing timestamp",
    ),
    "empty data": (lambda t: ["--data", _csv(t, "user,item,timestamp\n")], "no interactions"),
    "nothing left after filter": (
        lambda t: ["--data", _csv(t, "user,item,timestamp\na,b,1\n"), "--min-count", "20"],
        "no interactions left",
    ),
    "no user with a test item": (
        lambda t: [
            "--data",
            _csv(t, "user,item,timestamp\na,x,1\na,y,2\nb,x,3\n"),
            "--min-count",
            "0",
        ],
        "no user has a history long enough",
    ),
    "K larger than catalogue": (
        lambda t: TINY + ["--ks", "50,100000"],
        "larger than the catalogue",
    ),
    "negative lr": (lambda t: TINY + ["--lr", "-0.1"], "--lr"),
    "unknown granularity": (lambda t: TINY + ["--granularity", "XY"], "--granularity"),
    "lazy Adam with full scope": (
        lambda t: TINY + ["--optimizer", "lazy_adam", "--scope", "full"],
        "needs the 'batch' penalty scope",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_gives_one_error_line_and_no_output(tmp_path, case):
    args, message = BAD_CASES[case]
    out = tmp_path / "out"
    r = CliRunner().invoke(
        main, ["train", "--no-cache", *map(str, args(tmp_path)), "--out", str(out)]
    )
    assert r.exit_code != 0
    assert (
        "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    )
    error_lines = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and message in error_lines[0], r.output
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out")]  # no temp folder left


CUDA_TINY = [
    "--synthetic-users",
    "50",
    "--synthetic-items",
    "50",
    "--min-count",
    "3",
    "--epochs",
    "1",
    "--dim",
    "4",
    "--batch-size",
    "64",
    "--ks",
    "5,10",
    "--early-stopping",
    "hr@10",
    "--no-cache",
    "--no-compare",
]


def test_device_cuda_without_a_gpu_is_one_error_line(tmp_path):
    """Real CUDA mode (simulator off) with no visible GPU: one line, nothing written."""
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "0", "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lopt_np.cli.main",
            "train",
            *CUDA_TINY,
            "--device",
            "cuda",
            "--out",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error:") and "--device cpu" in lines[0], (
        r.stderr
    )
    assert not out.exists()


def test_device_cuda_gives_the_cpu_results(tmp_path, monkeypatch):
    """``lopt train --device cuda`` (simulated GPU unless NUMBA_ENABLE_CUDASIM=0) against
    ``--device cpu`` on the same seed: same samples, so the same model to float32 noise."""
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU and the simulator is off")
    from lopt_np.kernels.cuda import _jit

    monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 32)
    models = []
    for device in ("cpu", "cuda"):
        out = tmp_path / device
        r = run("train", *CUDA_TINY, "--device", device, "--out", out)
        assert r.exit_code == 0, r.output
        with np.load(out / "model.npz") as z:
            models.append({k: z[k] for k in ("user_embeddings", "item_embeddings", "lambda_P")})
        r = run("evaluate", out, "--device", device, "--ks", "5,10")
        assert r.exit_code == 0 and "HR@10" in r.output, r.output
    for k in models[0]:
        np.testing.assert_allclose(models[1][k], models[0][k], rtol=1e-3, atol=1e-5)
    assert not np.allclose(models[1]["lambda_P"], 0.0)  # Λ was learned on the device


def test_existing_output_needs_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    r = run("train", *TINY, "--out", out)
    assert r.exit_code != 0 and "--overwrite" in r.output
    assert (out / "keep.txt").exists()
    r = run("train", *TINY, "--out", out, "--overwrite")  # not a folder lopt_np wrote
    assert r.exit_code != 0 and "did not write (keep.txt)" in r.output
    assert os.listdir(out) == ["keep.txt"]
    (out / "keep.txt").unlink()
    assert run("train", *TINY, "--out", out).exit_code == 0
    r = run("train", *TINY, "--out", out, "--overwrite", "--seed", "1")  # a run: replaced
    assert r.exit_code == 0 and set(os.listdir(out)) == FILES
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 1


def test_evaluate_rejects_a_non_run_directory(tmp_path):
    r = run("evaluate", tmp_path)
    assert r.exit_code != 0 and "model.json is missing" in r.output


def test_every_command_is_documented_in_readme():
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.rst")).read()

    def commands(group, prefix):
        for name, cmd in group.commands.items():
            if hasattr(cmd, "commands"):
                yield from commands(cmd, f"{prefix} {name}")
            else:
                yield f"{prefix} {name}"

    missing = [c for c in commands(main, "lopt") if c not in readme]
    assert not missing, f"undocumented in README.rst: {missing}"


def test_adam_eps_reaches_the_trainer(tmp_path):
    r = run("train", *TINY, "--eps", "1e-16", "--out", tmp_path / "e")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "e" / "config.json").read_text())["train"]["eps"] == 1e-16
    r = run("train", *TINY, "--eps", "0", "--out", tmp_path / "z")
    assert r.exit_code != 0 and "--eps" in r.output and not (tmp_path / "z").exists()


def test_preset_authors_sets_the_variants_and_explicit_options_win(tmp_path):
    """``--preset authors``: the authors' semantics and settings, except what is given."""
    out = tmp_path / "run"
    r = run(
        "train",
        *TINY,
        "--preset",
        "authors",
        "--lookahead-count",
        "next",
        "--selection-frac",
        "0.1",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    train = json.loads((out / "config.json").read_text())["train"]
    assert train["dim"] == 8 and train["batch_size"] == 256  # given: kept
    assert train["lookahead_count"] == "next" and train["selection_frac"] == 0.1  # given
    assert (
        train["eps_placement"],
        train["lookahead_scope"],
        train["lookahead_batches"],
        train["assumed_penalty"],
        train["lambda_warmup_steps"],
        train["init_std"],
        train["patience"],
    ) == ("outside", "full", "stream", True, 1, 1.0, 0)  # the preset's


def test_preset_spec_sets_the_spec_semantics(tmp_path):
    out = tmp_path / "run"
    r = run("train", *TINY, "--preset", "spec", "--out", out)
    assert r.exit_code == 0, r.output
    train = json.loads((out / "config.json").read_text())["train"]
    assert (
        train["eps_placement"],
        train["lookahead_scope"],
        train["lookahead_count"],
        train["assumed_penalty"],
        train["lambda_warmup_steps"],
        train["lookahead_batches"],
    ) == ("inside", "same", "next", False, 0, "independent")


def test_lookahead_count_current_without_warmup_is_one_clear_error(tmp_path):
    r = run(
        "train",
        *TINY,
        "--lookahead-count",
        "current",
        "--lambda-warmup-steps",
        "0",
        "--out",
        tmp_path / "run",
    )
    assert r.exit_code == 1 and "lambda_warmup_steps" in r.output
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def final_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("final") / "run"
    r = run("train", *TINY, "--final", "--final-epochs", 3, "--out", out)
    assert r.exit_code == 0, r.output
    assert "continues on all" in r.output and "lopt recommend" in r.output
    return out


def table_rows(output):
    """The rows of a printed table (header first), split on whitespace."""
    return [line.split() for line in output.strip().splitlines()]


def interacted(run_dir, user):
    with np.load(run_dir / "split.npz") as z:
        ids = list(z["user_ids"].astype(str))
        u = ids.index(str(user))
        pairs = np.concatenate([z[p] for p in ("train", "valid", "test")])
        return set(z["item_ids"].astype(str)[pairs[pairs[:, 0] == u, 1]])


def test_recommend_prints_unseen_items_best_first_as_the_api_in_a_fresh_process(final_run):
    with np.load(final_run / "split.npz") as z:
        user = str(z["user_ids"][7])
    r = run("recommend", final_run, "--user", user, "-n", 10)
    assert r.exit_code == 0, r.output
    rows = table_rows(r.output)
    assert rows[0] == ["user", "rank", "item", "score"] and len(rows) == 11
    items, scores = [row[2] for row in rows[1:]], [float(row[3]) for row in rows[1:]]
    assert all(row[0] == user for row in rows[1:]) and len(set(items)) == 10
    assert not set(items) & interacted(final_run, user)
    assert scores == sorted(scores, reverse=True)
    code = (
        f"import lopt_np; ids, s = lopt_np.load({str(final_run)!r}).recommend({user!r}, "
        f"n=10); print(' '.join(map(str, ids)))"
    )
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert fresh.stdout.split() == items


def test_recommend_files_and_the_final_model(final_run, tmp_path):
    with np.load(final_run / "split.npz") as z:
        users = [str(u) for u in z["user_ids"][:3]]
        n_users = len(z["user_ids"])
    (tmp_path / "users.txt").write_text("\n".join(users) + "\n\n")
    r = run(
        "recommend",
        final_run,
        "--users-file",
        tmp_path / "users.txt",
        "-n",
        4,
        "--out",
        tmp_path / "recs.csv",
    )
    assert r.exit_code == 0, r.output
    import pandas as pd

    recs = pd.read_csv(tmp_path / "recs.csv", dtype={"user": str, "item": str})
    assert list(recs.columns) == ["user", "rank", "item", "score"] and len(recs) == 12
    assert list(recs["user"].unique()) == users and list(recs["rank"][:4]) == [1, 2, 3, 4]
    r = run("recommend", final_run / "final", "-n", 2, "--out", tmp_path / "all.json")
    assert r.exit_code == 0, r.output
    everyone = json.loads((tmp_path / "all.json").read_text())
    assert len(everyone) == 2 * n_users and set(everyone[0]) == {"user", "rank", "item", "score"}
    final = json.loads((final_run / "final" / "model.json").read_text())
    assert final["config"]["learn_lambda"] is False and len(final["history"]) == 3


def test_similar_and_score(final_run, tmp_path):
    with np.load(final_run / "split.npz") as z:
        item, user = str(z["item_ids"][3]), str(z["user_ids"][2])
    r = run("similar", final_run, "--item", item, "-n", 5)
    assert r.exit_code == 0, r.output
    rows = table_rows(r.output)
    assert rows[0] == ["item", "rank", "similar_item", "similarity"] and len(rows) == 6
    assert item not in [row[2] for row in rows[1:]]
    r = run("similar", final_run, "--user", user, "-n", 3)
    assert r.exit_code == 0 and table_rows(r.output)[0][2] == "similar_user", r.output
    (tmp_path / "pairs.csv").write_text(f"user,item\n{user},{item}\n{user},{item}\n")
    r = run("score", final_run, tmp_path / "pairs.csv")
    assert r.exit_code == 0, r.output
    rows = table_rows(r.output)
    import lopt_np

    want = lopt_np.load(final_run).score([user], [item])[0]
    assert len(rows) == 3 and abs(float(rows[1][2]) - want) < 1e-6


@pytest.mark.parametrize(
    "args, message",
    [
        (["recommend", "{run}", "--user", "no-such-user"], "unknown user id 'no-such-user'"),
        (["recommend", "{run}", "--user", "{user}", "--out", "{tmp}/recs.txt"], ".csv or .json"),
        (["recommend", "{run}", "--users-file", "{tmp}/missing.txt"], "cannot read user file"),
        (["recommend", "{tmp}/nothing-here", "--user", "1"], "no such directory"),
        (["similar", "{run}", "--item", "no-such-item"], "unknown item id"),
        (["similar", "{run}"], "not both or neither"),
        (["similar", "{run}", "--item", "x", "--user", "y"], "not both or neither"),
        (["score", "{run}", "{tmp}/bad.csv"], "has no column item"),
    ],
)
def test_inference_errors_are_one_line(final_run, tmp_path, args, message):
    (tmp_path / "bad.csv").write_text("user,thing\n1,2\n")
    with np.load(final_run / "split.npz") as z:
        user = str(z["user_ids"][0])
    r = run(*[a.format(run=final_run, tmp=tmp_path, user=user) for a in args])
    assert r.exit_code == 1, r.output
    assert message in r.output and r.output.count("Error:") == 1
    assert "Traceback" not in r.output
    assert not (tmp_path / "recs.txt").exists()


def all_commands(cmd=main, prefix="lopt"):
    import click

    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from all_commands(sub, f"{prefix} {name}")
    else:
        yield prefix, cmd


def test_every_option_has_help_and_train_help_is_grouped():
    import click

    for name, cmd in all_commands():
        bare = [p.name for p in cmd.params if isinstance(p, click.Option) and not p.help]
        assert not bare, f"{name}: options without help: {bare}"
    r = run("train", "--help")
    sections = [line for line in r.output.splitlines() if line and not line.startswith(" ")]
    assert sections[1:] == [
        "Data:",
        "Model:",
        "λOpt:",
        "Training:",
        "Run:",
        "Final fit:",
        "Output:",
        "Other options:",
    ], sections


def test_fixed_lambda_needs_its_value(tmp_path):
    r = run("train", *TINY, "--fixed-lambda", "--out", tmp_path / "x")
    assert r.exit_code == 2 and r.output.count("Error:") == 1 and "--lambda-init" in r.output
    assert not (tmp_path / "x").exists()
    r = run("train", *TINY, "--fixed-lambda", "--lambda-init", "0", "--out", tmp_path / "x")
    assert r.exit_code == 0, r.output  # λ = 0 said explicitly is allowed


def test_quiet_json_log_time_budget_and_an_untimed_csv(tmp_path):
    p = tmp_path / "untimed.csv"
    rng = np.random.default_rng(0)
    rows = {
        (f"u{u}", f"i{i}") for u, i in zip(rng.integers(0, 60, 1500), rng.integers(0, 90, 1500))
    }
    p.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in sorted(rows)))
    log = tmp_path / "log.jsonl"
    r = run(
        "train",
        "--data",
        p,
        "--time-col",
        "none",
        "--epochs",
        "30",
        "--dim",
        "4",
        "--ks",
        "5,10",
        "--early-stopping",
        "hr@10",
        "--quiet",
        "--log-json",
        log,
        "--time-budget",
        "1e-6",
        "--out",
        tmp_path / "r",
    )
    assert r.exit_code == 0, r.output
    assert "epoch 1/" not in r.output and "no frequency filter, nothing dropped" in r.output
    assert "in random order (seed 0)" in r.output and "time budget" in r.output
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1]
    model = json.loads((tmp_path / "r" / "model.json").read_text())
    assert "time budget" in model["stop_reason"]


def test_compare_prints_lambda_opt_against_the_best_fixed_lambda(tmp_path):
    r = run("train", *TINY, "--compare", "--out", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert re.search(r"metric\s+λOpt\s+λFix \(λ=(0\.1|0\.01|0\.001)\)\s+gain", r.output)
    assert "where Λ went: mean Λ^P of the 10 % least active users" in r.output
    import pandas as pd

    table = pd.read_csv(tmp_path / "c" / "comparison.csv")
    assert list(table.metric) == ["auc", "hr@50", "hr@100", "ndcg@50", "ndcg@100"]
    test = json.loads((tmp_path / "c" / "metrics.json").read_text())["test"]
    np.testing.assert_allclose(table.lambda_opt, [test[m] for m in table.metric])
    np.testing.assert_allclose(table.gain, table.lambda_opt / table.best_lambda_fix - 1)


def test_cli_defaults_come_from_the_configurations():
    """Every option of lopt train and lopt reproduce that sets a TrainConfig or BaselineConfig
    field shows that field's default (one source of defaults)."""
    from lopt_np.reproduction.baselines import AMF_EPS_GRID, BaselineConfig
    from lopt_np.cli.main import main
    from lopt_np.reproduction.reproduce import SGDA_LRS
    from lopt_np.trainer import TrainConfig

    train, base = TrainConfig(), BaselineConfig()
    for command in ("train", "reproduce"):
        params = {p.name: p.default for p in main.commands[command].params}
        for name, default in params.items():
            if name in TrainConfig.__dataclass_fields__ and name not in ("lambda_clip", "ks"):
                assert default == getattr(train, name), (command, name)
    params = {p.name: p.default for p in main.commands["reproduce"].params}
    assert params["baseline_epochs"] == base.epochs and params["baseline_patience"] == base.patience
    assert params["baseline_lr"] == base.lr and params["amf_reg"] == base.reg_adv
    assert params["neumf_mlp_dim"] == base.mlp_dim
    assert params["neumf_layers"] == ",".join(map(str, base.layers))
    assert [float(x) for x in params["amf_eps"].split(",")] == list(AMF_EPS_GRID)
    assert [float(x) for x in params["sgda_lrs"].split(",")] == list(SGDA_LRS)
