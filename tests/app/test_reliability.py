"""Nothing silently wrong: tied and non-finite scores (SPEC §7), divergence, output folders
that are never lost or wrongly deleted, interruptions."""

import numpy as np
import pytest

from lopt_np.errors import DataError
from lopt_np.evaluation import evaluate


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_collapsed_model_scores_like_a_random_ranking(device, monkeypatch):
    """Every score tied: the expected rank under a random tie-break, so HR@K ≈ K / (number of
    candidates), AUC exactly ½ — never the perfect metrics a strictly-higher count gives."""
    if device == "cuda":
        pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
        from numba import cuda

        if not cuda.is_available():
            pytest.skip("no CUDA GPU and the simulator is off")
        from lopt_np.kernels.cuda import _jit

        monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 64)
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions

    split = build_split(synthetic_interactions(n_users=40, n_items=120, seed=2))
    P = np.ones((split.n_users, 4), np.float32)
    Q = np.ones((split.n_items, 4), np.float32)
    result = evaluate(P, Q, split, "test", ks=(5, 50), device=device)["metrics"]
    assert result["auc"] == pytest.approx(0.5, abs=1e-12)
    indptr, seen = split.csr()
    n_neg = split.n_items - np.diff(indptr)
    users = np.unique(split.test[:, 0])
    rank = 1 + 0.5 * n_neg[users]  # every target's rank: 1 + ½ (negatives)
    assert result["hr@50"] == pytest.approx(np.mean(rank <= 50), abs=1e-12)
    assert result["hr@5"] == 0.0 < result["hr@50"] or result["hr@50"] == 0.0
    assert result["ndcg@50"] == pytest.approx(
        np.mean(np.where(rank <= 50, 1 / np.log2(rank + 1), 0))
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_are_an_error_not_a_metric(small_split, bad):
    P = np.ones((small_split.n_users, 4))
    Q = np.random.default_rng(0).normal(size=(small_split.n_items, 4))
    Q[3, 1] = bad
    with pytest.raises(DataError, match="NaN or inf"):
        evaluate(P, Q, small_split)


# --- output folders ---------------------------------------------------------------------------
from lopt_np.errors import ConfigError, LoptError  # noqa: E402
from lopt_np.io import atomic_output_dir  # noqa: E402


def fake_run(folder, tag="run"):
    """What a run writes (enough for lopt_np to recognise the folder as its own)."""
    import os

    for name in ("model.json", "summary.txt"):
        with open(os.path.join(folder, name), "w") as fh:
            fh.write(tag)


def test_a_file_put_into_out_during_the_run_is_never_deleted(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="changed during the run") as err:
        with atomic_output_dir(out) as tmp:
            fake_run(tmp)
            out.mkdir()
            (out / "notes.txt").write_text("mine")
    assert (out / "notes.txt").read_text() == "mine" and len(list(out.iterdir())) == 1
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.lopt-")]
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert (kept[0] / "model.json").read_text() == "run"


def test_two_runs_into_one_folder_the_second_is_kept_beside(tmp_path):
    out = tmp_path / "run"
    first, second = atomic_output_dir(out), atomic_output_dir(out)
    a, b = first.__enter__(), second.__enter__()
    fake_run(a, "first")
    fake_run(b, "second")
    first.__exit__(None, None, None)
    with pytest.raises(ConfigError, match="not empty and --overwrite was not given"):
        second.__exit__(None, None, None)
    assert (out / "model.json").read_text() == "first"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.lopt-")]
    assert len(kept) == 1 and (kept[0] / "model.json").read_text() == "second"


def test_overwrite_replaces_only_a_run_folder(tmp_path):
    out = tmp_path / "run"
    with atomic_output_dir(out) as tmp:
        fake_run(tmp, "old")
    with atomic_output_dir(out, overwrite=True) as tmp:
        fake_run(tmp, "new")
    assert (out / "model.json").read_text() == "new"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".run.")]  # no leftovers
    (out / "mine.txt").write_text("x")  # now it is not only lopt_np's
    with pytest.raises(ConfigError, match="did not write"):
        with atomic_output_dir(out, overwrite=True):
            pass
    assert (out / "mine.txt").exists()


@pytest.mark.parametrize(
    "target, message",
    [
        ("", "must name a folder"),
        (".", "working directory"),
        ("..", "working directory"),
        ("a-file", "not a directory"),
        ("a-link", "symbolic link"),
    ],
)
def test_unsafe_targets_are_refused_before_any_work(tmp_path, monkeypatch, target, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "a-link").symlink_to(tmp_path / "elsewhere")
    (tmp_path / "keep.txt").write_text("keep")
    with pytest.raises(ConfigError, match=message):
        with atomic_output_dir(target, overwrite=True):
            pytest.fail("the run must not start")
    assert (tmp_path / "keep.txt").exists() and (tmp_path / "a-file").read_text() == "x"


def test_a_failure_after_training_keeps_the_model_and_names_it(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(LoptError, match="kept in") as err:
        with atomic_output_dir(out) as tmp:
            fake_run(tmp)
            raise OSError(28, "No space left on device")
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.incomplete-")]
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert "No space left on device" in str(err.value) and not out.exists()
    with pytest.raises(ValueError):  # before the model: nothing kept
        with atomic_output_dir(tmp_path / "other"):
            raise ValueError("early")
    assert not [p for p in tmp_path.iterdir() if "other" in p.name]


def test_the_run_folder_gets_normal_permissions(tmp_path):
    import os

    out = tmp_path / "run"
    with atomic_output_dir(out) as tmp:
        fake_run(tmp)
    umask = os.umask(0)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o777 & ~umask)


# --- interruptions ----------------------------------------------------------------------------
@pytest.mark.parametrize("signame, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_stops_at_a_step_and_writes_the_run_so_far(tmp_path, signame, code):
    import json
    import signal
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "lopt_np.cli.main",
        "train",
        "--synthetic-users",
        "200",
        "--synthetic-items",
        "300",
        "--epochs",
        "500",
        "--patience",
        "0",
        "--dim",
        "8",
        "--batch-size",
        "64",
        "--no-compare",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # wait until two epochs have finished
        seen.append(line)
        if "epoch 2/500:" in line:
            break
    proc.send_signal(getattr(signal, signame))
    stdout, stderr = proc.communicate(timeout=120)
    stderr = "".join(seen) + stderr
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr and f"interrupted by {signame}" in stderr
    model = json.loads((out / "model.json").read_text())
    assert model["stop_reason"] == f"interrupted by {signame}"
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert 2 <= len(history) < 500 and "test" in json.loads((out / "metrics.json").read_text())
    assert model["best_epoch"] <= len(history)


def test_divergence_is_caught_before_nan(small_split):
    """Adam at lr 1e9 never produces NaN here but its loss and embeddings explode: the
    divergence rule names the step."""
    from lopt_np import LambdaOpt, TrainingDivergedError

    with pytest.raises(TrainingDivergedError, match=r"by step \d+ \(epoch 1\).*diverged"):
        LambdaOpt(lr=1e9, epochs=3, dim=8, learn_lambda=False, lambda_init=0.0).fit(small_split)


def test_the_divergence_rule():
    from lopt_np.errors import TrainingDivergedError
    from lopt_np.trainer import check_divergence

    ok = np.ones((3, 2))
    check_divergence(50 * 0.7, 0.7, ok, ok, 10, 1)  # 50 × the start: still fine
    with pytest.raises(TrainingDivergedError, match="over 100 times its start"):
        check_divergence(101 * 0.7, 0.7, ok, ok, 10, 1)
    with pytest.raises(TrainingDivergedError, match="embedding entry reached 2e\\+06"):
        check_divergence(0.5, 0.7, ok, np.full((2, 2), -2e6), 10, 1)


@pytest.mark.parametrize("signal_name, to_group", [("SIGINT", True), ("SIGTERM", False)])
def test_ctrl_c_in_a_parallel_grid_is_one_line_and_leaves_no_worker(
    tmp_path, signal_name, to_group
):
    """Ctrl-C in a terminal (SIGINT to the whole process group) or a job scheduler's SIGTERM
    to the lopt process alone: one line, the cluster shut down, the finished runs kept."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cmd = [
        sys.executable,
        "-m",
        "lopt_np.cli.main",
        "grid",
        "--synthetic-users",
        "200",
        "--synthetic-items",
        "300",
        "--epochs",
        "400",
        "--patience",
        "0",
        "--dim",
        "8",
        "--batch-size",
        "64",
        "--jobs",
        "2",
        "--lambdas",
        "0.1,0.01,0.001",
        "--out",
        str(tmp_path / "grid"),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )  # its own process group
    for line in proc.stderr:
        if line.startswith("[1/3 done"):  # one λ finished, two training
            break
    sig = getattr(signal, signal_name)
    if to_group:
        os.killpg(proc.pid, sig)  # what Ctrl-C in a terminal does
    else:
        os.kill(proc.pid, sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig and "Traceback" not in stderr, stderr
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)  # any process of the group left?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        pytest.fail("worker processes outlived the grid")
    assert not (tmp_path / "grid").exists()  # not a finished grid
    assert (
        stderr.strip()
        .splitlines()[-1]
        .startswith(f"{signal_name}: stopped; its finished runs are kept in")
    )
    assert (tmp_path / "grid.partial" / "sweep.json").is_file()  # --resume continues it


# --- caches and artifacts ---------------------------------------------------------------------
def _cached_entry(tmp_path, monkeypatch):
    from lopt_np.data.inputs import DataConfig, to_split

    monkeypatch.setenv("LOPT_CACHE_DIR", str(tmp_path / "cache"))
    p = tmp_path / "log.csv"
    rng = np.random.default_rng(0)
    rows = sorted(
        {(int(u), int(i)) for u, i in zip(rng.integers(0, 30, 600), rng.integers(0, 40, 600))}
    )
    p.write_text(
        "user,item,timestamp\n" + "".join(f"{u},{i},{k}\n" for k, (u, i) in enumerate(rows))
    )
    first = to_split(str(p))
    entry = next((tmp_path / "cache").glob("split-*.npz"))
    return p, first, entry, lambda: to_split(str(p), DataConfig())


@pytest.mark.parametrize("damage", ["truncated", "out-of-range index", "garbage"])
def test_a_damaged_cache_entry_is_rebuilt_with_a_warning(tmp_path, monkeypatch, damage):
    from lopt_np.data.preprocess import CacheWarning

    p, first, entry, again = _cached_entry(tmp_path, monkeypatch)
    if damage == "truncated":
        entry.write_bytes(entry.read_bytes()[:100])
    elif damage == "garbage":
        entry.write_bytes(b"not a zip file at all")
    else:
        with np.load(entry) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["train"][0, 1] = 10**6
        np.savez(entry, **arrays)
    with pytest.warns(CacheWarning, match="damaged.*rebuilding"):
        rebuilt = again()
    np.testing.assert_array_equal(rebuilt.train, first.train)
    assert not rebuilt.info["cached"]
    assert again().info["cached"]  # and the rebuilt entry is used next


def test_the_cache_key_holds_the_resolved_format(tmp_path, monkeypatch):
    """``--format auto`` and the format it resolves to share an entry; another format reads
    the file afresh."""
    from lopt_np.data.inputs import DataConfig, to_split

    p, first, entry, again = _cached_entry(tmp_path, monkeypatch)
    assert to_split(str(p), DataConfig(fmt="csv")).info["cached"]
    assert not to_split(str(p), DataConfig(fmt="movielens")).info["cached"]


def test_a_damaged_split_file_of_a_run_is_one_error(tmp_path):
    from lopt_np.data.split import Split
    from lopt_np.errors import DataError

    bad = tmp_path / "split.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataError, match="damaged or not a split"):
        Split.load(bad)


def test_a_killed_runs_temporary_folder_is_cleaned_by_the_next(tmp_path):
    import os
    import subprocess

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f".run.lopt-tmp-{dead.pid}-abc"
    stale.mkdir()
    (stale / "model.npz").write_text("half")
    alive = tmp_path / f".run.lopt-tmp-{os.getpid()}-def"  # a live run's: left alone
    alive.mkdir()
    with atomic_output_dir(tmp_path / "run") as tmp:
        fake_run(tmp)
    assert not stale.exists() and alive.exists() and (tmp_path / "run" / "model.json").exists()


def test_a_giant_header_line_is_refused_before_parsing(tmp_path):
    from lopt_np.data.loaders import MAX_HEADER_BYTES, load_interactions

    p = tmp_path / "huge.csv"
    p.write_bytes(b"x" * (MAX_HEADER_BYTES + 10))
    with pytest.raises(DataError, match="first line is longer than 1 MiB") as err:
        load_interactions(p)
    assert len(str(err.value)) < 300


# --- checkpoints and resume -------------------------------------------------------------------
@pytest.mark.parametrize(
    "device, lookahead_batches, granularity, lambda_optimizer",
    [
        ("cpu", "stream", "DUI", "amsgrad"),
        ("cpu", "independent", "D", "adam"),
        ("reference", "stream", "UI", "sgd"),
    ],
)
def test_a_resumed_run_is_bit_identical_to_an_uninterrupted_one(
    small_split, tmp_path, device, lookahead_batches, granularity, lambda_optimizer
):
    from lopt_np import LambdaOpt

    kw = dict(
        epochs=5,
        dim=8,
        batch_size=128,
        device=device,
        granularity=granularity,
        lookahead_batches=lookahead_batches,
        lambda_optimizer=lambda_optimizer,
        patience=2,
        dtype="float64" if device == "reference" else "float32",
    )
    full = LambdaOpt(**kw).fit(small_split)
    stop_at_3 = [lambda record, model: record["epoch"] == 3]
    part = LambdaOpt(**kw).fit(
        small_split, checkpoint_dir=tmp_path, checkpoint_every=2, callbacks=stop_at_3
    )
    assert len(part.history) == 3  # checkpoint after epoch 2, stop at 3
    resumed = LambdaOpt(**kw).fit(small_split, checkpoint_dir=tmp_path, resume=True)
    for name in ("P", "Q", "lambda_P", "lambda_Q"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), name)
    strip = [{k: v for k, v in h.items() if "seconds" not in k} for h in full.history]
    assert [{k: v for k, v in h.items() if "seconds" not in k} for h in resumed.history] == strip
    assert resumed.best_epoch == full.best_epoch
    with pytest.raises(Exception, match="other settings.*lr"):
        LambdaOpt(**{**kw, "lr": 0.5}).fit(small_split, checkpoint_dir=tmp_path, resume=True)


def test_lopt_train_resume_after_sigterm_reaches_the_uninterrupted_model(tmp_path):
    import json
    import signal
    import subprocess
    import sys

    args = [
        "--synthetic-users",
        "200",
        "--synthetic-items",
        "300",
        "--epochs",
        "40",
        "--patience",
        "0",
        "--dim",
        "8",
        "--batch-size",
        "64",
        "--no-compare",
        "--threads",
        "1",
    ]
    lopt = [sys.executable, "-m", "lopt_np.cli.main", "train"]
    subprocess.run(
        lopt + args + ["--out", str(tmp_path / "full"), "-q"], check=True, capture_output=True
    )
    out = tmp_path / "run"
    proc = subprocess.Popen(
        lopt + args + ["--checkpoint-every", "3", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stderr:
        if "epoch 7/40:" in line:
            break
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143 and f"lopt train --resume {out}" in stderr, stderr
    assert (tmp_path / "run.checkpoint" / "checkpoint.json").exists()
    r = subprocess.run(lopt + ["--resume", str(out), "-q"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "resuming" in r.stderr and not (tmp_path / "run.checkpoint").exists()
    with np.load(out / "model.npz") as a, np.load(tmp_path / "full" / "model.npz") as b:
        for key in ("user_embeddings", "item_embeddings", "lambda_P", "lambda_Q"):
            np.testing.assert_array_equal(a[key], b[key], key)
    assert json.loads((out / "model.json").read_text())["stop_reason"] == "the last epoch"
    r = subprocess.run(lopt + ["--resume", str(out), "--lr", "0.1"], capture_output=True, text=True)
    assert r.returncode == 2 and "--resume continues a run with its own settings" in r.stderr


def test_a_checkpoint_without_a_newer_option_resumes_at_its_default():
    """An option the writing version did not have counts as its default when resuming."""
    from lopt_np.checkpoint import check_same_run
    from lopt_np.trainer import TrainConfig

    old = TrainConfig().to_dict()
    for key in ("lambda_beta1", "lambda_eps"):
        del old[key]
    defaults = TrainConfig().to_dict()
    check_same_run({"config": old}, TrainConfig().to_dict(), defaults)
    with pytest.raises(ConfigError, match="other settings.*lambda_beta1"):
        check_same_run({"config": old}, TrainConfig(lambda_beta1=0.5).to_dict(), defaults)


def test_a_checkpoint_from_before_lambda_rows_resumes_only_with_the_dense_update(
    tmp_path, small_split
):
    """Runs written before ``lambda_rows`` existed updated every Λ entry: resuming one with
    today's default (``batch``) is refused, with ``all`` it continues."""
    from lopt_np.checkpoint import load_checkpoint, save_checkpoint
    from lopt_np.trainer import LambdaOpt

    folder = tmp_path / "ck"
    params = dict(dim=4, batch_size=256, epochs=2, eval_every=0)
    LambdaOpt(**{**params, "epochs": 1}, lambda_rows="all").fit(
        small_split, checkpoint_dir=folder, checkpoint_every=1
    )
    arrays, meta = load_checkpoint(folder)[:2]
    del meta["config"]["lambda_rows"]  # as an older version wrote it
    save_checkpoint(str(folder), arrays, meta)
    with pytest.raises(ConfigError, match="other settings.*lambda_rows"):
        LambdaOpt(**params).fit(small_split, checkpoint_dir=folder, resume=True)
    LambdaOpt(**params, lambda_rows="all").fit(small_split, checkpoint_dir=folder, resume=True)
