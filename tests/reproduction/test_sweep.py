"""Sweeps (``lopt_np.sweep``; ``lopt sweep``, ``lopt grid``/``reproduce`` on it): the product of
settings, the folder written as runs finish, ``--resume``, failures, and Dask: a real
``LocalCluster`` of 2 worker processes, a worker killed mid-run, results equal to ``--jobs 1``."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from helpers import run_cli as run
from lopt_np.errors import ConfigError
from lopt_np.sweep import Executor, parse_setting, product_runs, split_values
from lopt_np.trainer import TrainConfig

pytest.importorskip("distributed", reason="Dask distributed (the dask extra) is not installed")

SMALL = [
    "--synthetic-users",
    "120",
    "--synthetic-items",
    "200",
    "--epochs",
    "2",
    "--dim",
    "8",
    "--batch-size",
    "256",
    "--ks",
    "10,50",
    "--early-stopping",
    "hr@50",
]
RESULT_COLUMNS = [
    "run",
    "status",
    "best_epoch",
    "valid_hr@50",
    "test_auc",
    "test_hr@10",
    "test_hr@50",
    "test_ndcg@50",
]


def table(folder, name="sweep.csv"):
    return pd.read_csv(os.path.join(folder, name))


def results(folder):
    return table(folder)[RESULT_COLUMNS].sort_values("run").reset_index(drop=True)


@pytest.fixture(scope="module")
def serial_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "serial"
    r = run("sweep", *SMALL, "--set", "granularity=D,DU,DUI", "--seeds", "0,1", "--out", out)
    assert r.exit_code == 0, r.output
    return out


def test_three_granularities_by_two_seeds_are_six_run_folders_and_one_table(serial_sweep):
    runs = sorted(os.listdir(serial_sweep / "runs"))
    assert runs == sorted(f"granularity={g}-seed={s}" for g in ("D", "DU", "DUI") for s in (0, 1))
    t = table(serial_sweep)
    assert len(t) == 6 and set(t.status) == {"ok"}
    assert list(t.columns[:5]) == ["run", "dataset", "granularity", "seed", "status"]
    for name in runs:  # each row is its run folder's own evaluation
        row = t.set_index("run").loc[name]
        metrics = json.loads((serial_sweep / "runs" / name / "metrics.json").read_text())
        config = json.loads((serial_sweep / "runs" / name / "config.json").read_text())
        assert row["test_hr@50"] == pytest.approx(metrics["test"]["hr@50"], abs=1e-12)
        assert (config["train"]["granularity"], config["train"]["seed"]) == (
            row["granularity"],
            row["seed"],
        )
    # seeds change the model; the summary averages each setting over them
    assert t.groupby("granularity")["test_auc"].nunique().min() == 2
    summary = (serial_sweep / "summary.txt").read_text()
    dui = t[t.granularity == "DUI"]["test_hr@50"]
    assert "granularity=DUI (n=2): " in summary
    assert f"HR@50 {dui.mean():.4f} ± {dui.std(ddof=1):.4f}" in summary
    assert os.path.isfile(serial_sweep / "splits" / "synthetic.npz")


def test_a_local_cluster_of_two_workers_gives_the_serial_numbers(serial_sweep, tmp_path):
    out = tmp_path / "parallel"
    r = run(
        "sweep",
        *SMALL,
        "--set",
        "granularity=D,DU,DUI",
        "--seeds",
        "0,1",
        "--jobs",
        "2",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    assert "2 at a time" in r.output
    pd.testing.assert_frame_equal(results(serial_sweep), results(out))


def test_lopt_grid_on_two_workers_writes_the_serial_grid(tmp_path):
    args = ["grid", *SMALL, "--lambdas", "1,0.01,0"]
    one = run(*args, "--out", tmp_path / "one")
    two = run(*args, "--jobs", "2", "--out", tmp_path / "two")
    assert one.exit_code == 0 and two.exit_code == 0, two.output
    cols = ["lambda", "best_epoch", "valid_hr@50", "test_auc", "test_hr@50", "status"]
    pd.testing.assert_frame_equal(
        table(tmp_path / "one", "grid.csv")[cols], table(tmp_path / "two", "grid.csv")[cols]
    )
    assert sorted(os.listdir(tmp_path / "two" / "runs")) == ["lambda=0", "lambda=0.01", "lambda=1"]


def test_a_diverging_run_is_recorded_and_the_sweep_goes_on(tmp_path):
    """SGD at lr 0.5 with a fixed global λ = 1e6 blows up; λ = 0.01 trains."""
    out = tmp_path / "s"
    r = run(
        "sweep",
        *SMALL,
        "--optimizer",
        "sgd",
        "--lr",
        "0.5",
        "--granularity",
        "global",
        "--set",
        "learn_lambda=false",
        "--set",
        "lambda_init=1000000,0.01",
        "--out",
        out,
    )
    assert r.exit_code == 0, r.output
    t = table(out).set_index("lambda_init")
    assert t.loc[1e6, "status"].startswith("failed: ") and "nan" in t.loc[1e6, "status"]
    assert t.loc[0.01, "status"] == "ok" and t["test_auc"].isna().tolist() == [True, False]
    assert "1 run(s) failed" in r.output and "failed: " in (out / "summary.txt").read_text()
    failed = json.loads(
        (out / "runs" / "learn_lambda=False-lambda_init=1e+06-seed=0" / "result.json").read_text()
    )
    assert failed["failed"] and not os.path.exists(
        out / "runs" / "learn_lambda=False-lambda_init=1e+06-seed=0" / "model.npz"
    )


def cli(*args):
    return [sys.executable, "-m", "lopt_np.cli.main", *map(str, args)]


LONG = [
    "--synthetic-users",
    "200",
    "--synthetic-items",
    "300",
    "--epochs",
    "150",
    "--patience",
    "0",
    "--dim",
    "8",
    "--batch-size",
    "64",
    "--ks",
    "10,50",
    "--early-stopping",
    "hr@50",
]


def test_ctrl_c_keeps_the_finished_runs_and_resume_trains_only_the_rest(tmp_path):
    args = ["sweep", *LONG, "--set", "lambda_lr=0.001,0.01,0.1", "--jobs", "2"]
    proc = subprocess.Popen(
        cli(*args, "--out", tmp_path / "s"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    for line in proc.stderr:  # the first run is written
        if line.startswith("[1/3 done"):
            break
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip().splitlines()[-1].startswith(
        "SIGINT: stopped; its finished runs are kept in"
    )
    assert_group_gone(proc.pid)
    partial = tmp_path / "s.partial"
    finished = sorted(os.listdir(partial / "runs"))
    assert 1 <= len(finished) < 3 and not (tmp_path / "s").exists()
    # the same command again without --resume is refused; with it, only the rest is trained
    again = run(*args, "--out", tmp_path / "s")
    assert again.exit_code != 0 and "--resume" in again.output
    written = {n: os.stat(partial / "runs" / n / "result.json").st_mtime_ns for n in finished}
    resumed = run(*args, "--jobs", "1", "--resume", "--out", tmp_path / "s")
    assert resumed.exit_code == 0, resumed.output
    assert f"{len(finished)} already finished" in resumed.output
    trained = [x for x in resumed.output.splitlines() if re.match(r"\[\d/3 done", x)]
    assert len(trained) == 3 - len(finished)
    assert not any(name in line for line in trained for name in finished)
    assert not partial.exists() and len(table(tmp_path / "s")) == 3
    assert written == {
        n: os.stat(tmp_path / "s" / "runs" / n / "result.json").st_mtime_ns for n in finished
    }  # kept, not trained again
    whole = run(*args, "--jobs", "1", "--out", tmp_path / "whole")
    assert whole.exit_code == 0
    pd.testing.assert_frame_equal(results(tmp_path / "s"), results(tmp_path / "whole"))


def assert_group_gone(pgid, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    pytest.fail("worker processes outlived the sweep")


def test_resume_refuses_other_settings(tmp_path):
    out = tmp_path / "s"
    partial = tmp_path / "s.partial"
    (partial / "runs").mkdir(parents=True)
    ok = run("sweep", *SMALL, "--set", "granularity=D,DU", "--out", tmp_path / "first")
    assert ok.exit_code == 0
    (partial / "sweep.json").write_text((tmp_path / "first" / "sweep.json").read_text())
    r = run("sweep", *SMALL, "--set", "granularity=D,DUI", "--resume", "--out", out)
    assert r.exit_code != 0 and "granularity=DU-seed=0 not planned now" in r.output
    r = run("sweep", *SMALL, "--set", "granularity=D,DU", "--lr", "0.01", "--resume", "--out", out)
    assert r.exit_code != 0 and "lr = 0.001 before, 0.01 now" in r.output
    r = run("sweep", *SMALL, "--resume", "--out", tmp_path / "nothing")
    assert r.exit_code != 0 and "nothing to resume" in r.output


def test_a_worker_killed_mid_run_is_retried_and_the_numbers_are_unchanged(tmp_path):
    """A cluster of 2 workers started here; the sweep is submitted to its scheduler; once both
    workers train, one is killed with SIGKILL: its nanny restarts it, the scheduler retries
    the run, and the table equals an undisturbed serial sweep's."""
    import logging

    from distributed import Client, LocalCluster

    args = ["sweep", *LONG, "--epochs", "100", "--set", "granularity=D,DUI", "--seeds", "0,1"]
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,
        Client(cluster) as client,
    ):
        proc = subprocess.Popen(
            cli(
                *args,
                "--threads",
                "1",
                "--scheduler",
                cluster.scheduler_address,
                "--out",
                tmp_path / "killed",
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            busy = [w for w, tasks in client.processing().items() if tasks]
            if len(busy) == 2:
                break
            time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail("the runs never reached the workers")
        time.sleep(1.0)  # mid-run
        pids = client.run(os.getpid)
        os.kill(pids[busy[0]], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        after = client.run(os.getpid)  # the nanny restarted the killed one
        assert len(after) == 2 and pids[busy[0]] not in after.values()
    whole = run(*args, "--out", tmp_path / "whole")
    assert whole.exit_code == 0
    killed = table(tmp_path / "killed")
    assert set(killed.status) == {"ok"}
    pd.testing.assert_frame_equal(results(tmp_path / "killed"), results(tmp_path / "whole"))


def test_without_dask_several_jobs_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import fails
    with pytest.raises(ConfigError, match=r'pip install "lopt_np\[dask\]"'):
        with Executor(jobs=2):
            pass
    with pytest.raises(ConfigError, match="dask"):
        with Executor(scheduler="tcp://127.0.0.1:1"):
            pass
    with Executor(jobs=1) as ex:  # in-process: no Dask needed
        assert ex.slots == 1


def test_a_signal_while_waiting_for_a_worker_ends_the_sweep_not_one_run(monkeypatch):
    """SIGTERM to the sweep's process raises ``Interrupted`` wherever the main thread waits,
    often inside a future's ``result()``: it must end the whole sweep (the CLI exits 128 + 15),
    not be recorded as that run's failure while the others go on."""
    import distributed

    from lopt_np.sweep import Interrupted, Run

    class Future:
        def __init__(self, error=None):
            self.error = error

        def result(self):
            if self.error is not None:
                raise self.error
            return "outcome"

        def release(self):
            pass

        def cancel(self):
            pass

    class Client:
        def __init__(self, errors):
            self.errors = iter(errors)

        def scatter(self, data, **kw):
            return data

        def submit(self, *args, **kw):
            return Future(next(self.errors))

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(list(futures)))
    runs = [Run(name, {}, "d", {}) for name in ("a", "b")]
    ex = Executor(jobs=2)
    ex.client = Client([ConfigError("a run's own error"), None])
    outcomes = list(ex.map(None, runs, {"d": None}))
    assert outcomes[0].failed == "a run's own error" and outcomes[1] == "outcome"
    ex.client = Client([Interrupted("SIGTERM"), None])
    with pytest.raises(Interrupted, match="SIGTERM"):
        list(ex.map(None, runs, {"d": None}))


def test_an_unreachable_scheduler_is_one_error_line(tmp_path, monkeypatch):
    monkeypatch.setattr("lopt_np.sweep.CONNECT_TIMEOUT", "1s")
    r = run("sweep", *SMALL, "--scheduler", "tcp://127.0.0.1:9", "--out", tmp_path / "s")
    assert r.exit_code != 0 and "cannot reach the Dask scheduler" in r.output


@pytest.mark.parametrize(
    "text, message",
    [
        ("granularity", "NAME=V1,V2"),
        ("colour=red", "not a training option"),
        ("threads=1,2", "not a training option"),
        ("dim=8,x", "'x' is not a int"),
        ("lr=0.1,0.1", "repeats"),
        ("assumed_penalty=maybe", "is not a bool"),
        ("lr=", "gives no value"),
    ],
)
def test_bad_settings_are_clear_errors(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_setting(text, TrainConfig())


def test_settings_take_the_options_types_and_names():
    d = TrainConfig()
    assert parse_setting("lambda-lr=0.01,0.1", d) == ("lambda_lr", [0.01, 0.1])
    assert parse_setting("dim=8,16", d) == ("dim", [8, 16])
    assert parse_setting("assumed_penalty=true,false", d) == ("assumed_penalty", [True, False])
    runs = product_runs(
        {"lr": 1.0}, [("dim", [8, 16]), ("granularity", ["D", "DU"])], [0, 1], ["a", "b"]
    )
    assert len(runs) == 16 and len({r.name for r in runs}) == 16
    assert runs[0].name == "a-dim=8-granularity=D-seed=0"
    assert runs[0].params == {"lr": 1.0, "dim": 8, "granularity": "D", "seed": 0}
    assert split_values("0,2") == [0, 2]
    for bad in ("x", "1,1", "-1", ""):
        with pytest.raises(ConfigError):
            split_values(bad)


def test_a_sweep_stopped_before_any_run_finished_leaves_nothing(tmp_path):
    from lopt_np.sweep import SweepFolder

    with pytest.raises(KeyboardInterrupt):
        with SweepFolder(tmp_path / "s") as folder:
            folder.check_plan({"kind": "sweep", "runs": {}})
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []
    with pytest.raises(ConfigError, match="another sweep is writing"):
        with SweepFolder(tmp_path / "t") as first:
            first.check_plan({"kind": "sweep", "runs": {}})
            with SweepFolder(tmp_path / "t", resume=True):
                pass
