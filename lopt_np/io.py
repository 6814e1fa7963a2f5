"""Run directories: written whole or not at all, and never at the cost of a folder lopt_np did
not write.

Files of a run (``lopt train --out DIR``): the model folder's ``model.npz`` and ``model.json``
(``lopt_np.model``), ``config.json``, ``metrics.json`` (test metrics, per-group breakdown,
per-epoch history), ``lambda_trajectory.npz``, ``split.npz`` and ``summary.txt``.

Everything is written into a temporary sibling folder. At the end, under a lock, it is renamed
to DIR if DIR is still absent or empty, or, with ``overwrite``, if DIR is still a run folder
lopt_np wrote (only names lopt_np writes); otherwise DIR is left as it is and the run is kept
beside it, the error naming where. A failure after training keeps what was written the same
way.
"""

import contextlib
import json
import os
import shutil
import tempfile
import time

import numpy as np

from .errors import ConfigError, LoptError

try:
    import fcntl
except ImportError:  # not on Windows: the final check then runs without a lock
    fcntl = None

# every name lopt_np writes into an output folder (run, grid, reproduction, figures, final fit)
RUN_ENTRIES = {
    "config.json",
    "metrics.json",
    "lambda_trajectory.npz",
    "model.npz",
    "model.json",
    "split.npz",
    "summary.txt",
    "comparison.csv",
    "comparison.json",
    "grid.csv",
    "grid.json",
    "sweep.json",
    "sweep.csv",
    "results.json",
    "runs",
    "splits",
    "table2.csv",
    "table2.md",
    "table2.json",
    "figures",
    "final",
    "MF-lFix",
    "SGDA",
    "AMF",
    "NeuMF",
    "MF-lOpt-D",
    "MF-lOpt-DU",
    "MF-lOpt-DI",
    "MF-lOpt-DUI",
}
MAX_LISTED = 5


def _listing(path):
    names = sorted(os.listdir(path))
    shown = ", ".join(names[:MAX_LISTED]) + (", …" if len(names) > MAX_LISTED else "")
    return names, shown


def is_run_folder(path):
    """True when ``path`` holds only names lopt_np writes, among them a run's, grid's or
    reproduction's description: a folder ``--overwrite`` may replace."""
    names = set(os.listdir(path))
    return (
        bool(names)
        and names <= RUN_ENTRIES
        and bool(names & {"model.json", "grid.json", "sweep.json", "table2.json"})
    )


def check_output_dir(path, overwrite):
    """Fail early (before any work) where ``path`` cannot receive the run: empty, ``.`` or a
    folder above the working directory, a symbolic link, a file, a non-empty folder without
    ``overwrite``, or (with it) a folder lopt_np did not write."""
    if not str(path).strip():
        raise ConfigError("--out must name a folder")
    real, here = os.path.realpath(path), os.path.realpath(os.getcwd())
    if real == here or here.startswith(real.rstrip(os.sep) + os.sep):
        raise ConfigError(
            f"--out {path} is the working directory or a folder above it; name a "
            f"new folder for the run"
        )
    if os.path.islink(path):
        raise ConfigError(f"--out {path} is a symbolic link; name the folder itself")
    if not os.path.exists(path):
        return
    if not os.path.isdir(path):
        raise ConfigError(f"--out {path} exists and is not a directory")
    names, shown = _listing(path)
    if names and not overwrite:
        raise ConfigError(
            f"output directory {path} exists and is not empty; pass --overwrite to replace it"
        )
    if names and not is_run_folder(path):
        raise ConfigError(
            f"--out {path} holds files lopt_np did not write ({shown}); "
            f"--overwrite replaces only a run folder: choose another --out"
        )


def _remove_stale(parent, prefix):
    """Temporary run folders of ``prefix`` whose process is gone (killed with SIGKILL, say):
    removed. The pid is part of each one's name."""
    for name in os.listdir(parent):
        if not name.startswith(prefix):
            continue
        try:
            pid = int(name[len(prefix) :].split("-")[0])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        except (ValueError, PermissionError, OSError):
            continue  # alive, someone else's, or not ours


def _permissions(folder):
    """The mode a plain ``mkdir`` gives (mkdtemp makes a private 0700 folder)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)


def _keep_beside(tmp, path, what):
    """Rename the temporary folder to a visible sibling of ``path``; returns its name."""
    kept = f"{os.path.abspath(path)}.{what}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    os.replace(tmp, kept)
    return kept


@contextlib.contextmanager
def _lock(path):
    lock_path = os.path.join(
        os.path.dirname(os.path.abspath(path)), f".{os.path.basename(os.path.abspath(path))}.lock"
    )
    with open(lock_path, "w") as fh:
        if fcntl is not None:
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            try:
                os.remove(lock_path)
            except OSError:
                pass


def _commit(tmp, path, overwrite):
    """Put the finished run in place (see the module docstring); returns nothing or raises a
    :class:`ConfigError` naming where the run was kept instead."""
    with _lock(path):
        if os.path.islink(path) or (os.path.exists(path) and not os.path.isdir(path)):
            kept = _keep_beside(tmp, path, "lopt")
            raise ConfigError(
                f"--out {path} became a link or a file during the run; left as "
                f"it is, the run is in {kept}"
            )
        if os.path.isdir(path):
            names, shown = _listing(path)
            if not names:
                os.rmdir(path)
            elif overwrite and is_run_folder(path):
                old = tempfile.mkdtemp(
                    prefix=f".{os.path.basename(os.path.abspath(path))}.old-",
                    dir=os.path.dirname(os.path.abspath(path)),
                )
                os.replace(path, os.path.join(old, "run"))
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
                return
            else:
                kept = _keep_beside(tmp, path, "lopt")
                why = (
                    "it is not a folder lopt_np wrote"
                    if overwrite
                    else "it is not empty and --overwrite was not given"
                )
                raise ConfigError(
                    f"--out {path} changed during the run (it holds {shown}) and "
                    f"was left as it is ({why}); the run is in {kept}"
                )
        os.replace(tmp, path)


@contextlib.contextmanager
def atomic_output_dir(path, overwrite=False):
    """Yield a temporary folder to write a run into; on success it becomes ``path`` (see the
    module docstring). On an error a run that already holds its model (``model.json``) is
    kept beside ``path`` and the error names the folder; anything less is removed."""
    check_output_dir(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    prefix = f".{os.path.basename(os.path.abspath(path))}.lopt-tmp-"
    try:
        os.makedirs(parent, exist_ok=True)
        _remove_stale(parent, prefix)
        tmp = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
        _permissions(tmp)
    except OSError as exc:
        raise ConfigError(f"cannot create the output folder {path}: {exc}") from None
    try:
        yield tmp
    except BaseException as exc:
        if not os.path.isfile(os.path.join(tmp, "model.json")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        try:
            kept = _keep_beside(tmp, path, "incomplete")
        except OSError:
            kept = tmp
        message = str(exc) if isinstance(exc, LoptError) else f"{type(exc).__name__}: {exc}"
        raise LoptError(
            f"{message}; the trained model and what was written are kept in {kept}"
        ) from exc
    try:
        _commit(tmp, path, overwrite)
    except OSError as exc:
        raise LoptError(f"cannot move the run into {path} ({exc}); it is kept in {tmp}") from None


def write_whole(path, write):
    """Write a file whole or not at all: ``write(tmp)`` fills a temporary sibling, which is
    renamed to ``path`` when complete (and removed on any error)."""
    path = os.fspath(path)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as fh:
            json.dump(obj, fh, indent=2, default=_json_default)
            fh.write("\n")

    write_whole(path, write)


def write_text(path, text):
    """``text`` as a UTF-8 file, written whole."""

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)

    write_whole(path, write)


def write_npz(path, arrays, compressed=True):
    """``arrays`` (name → array) as an ``.npz`` file, written whole."""

    def write(tmp):
        with open(tmp, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)

    write_whole(path, write)


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def format_summary(s):
    """The data summary a run prints: sizes, what the filter dropped and why, the split."""
    lines = [
        f"users {s['users']:,}  items {s['items']:,}  interactions {s['interactions']:,}  "
        f"density {s['density']:.3%}"
    ]
    if s.get("min_count", 0) > 1:
        dropped = (
            f"dropped {s.get('dropped_interactions', 0):,} interactions, "
            f"{s.get('dropped_users', 0):,} users and {s.get('dropped_items', 0):,} items "
            f"with fewer than {s['min_count']} records ({s.get('filter', '')}, "
            f"{s.get('filter_rounds', 0)} round(s))"
        )
    else:
        dropped = "no frequency filter, nothing dropped"
    lines.append(
        f"{s.get('records', s['interactions']):,} records read; "
        f"{s.get('duplicates_collapsed', 0):,} duplicate (user, item) records "
        f"collapsed; {dropped}"
    )
    lines.append(
        f"split {s.get('split', '')}: train {s['train']:,} / validation {s['valid']:,} "
        f"/ test {s['test']:,}"
    )
    if s.get("selection"):
        lines[-1] += (
            f"; of the validation, {s['selection']:,} held out from Λ for early "
            f"stopping and model selection"
        )
    if s.get("users_without_test"):
        lines.append(
            f"{s['users_without_test']:,} users with too short a history for a test "
            f"item are in training only"
        )
    return "\n".join(lines)


def metric_label(metric):
    """A metric's printed name: ``auc`` → AUC, ``hr@100`` → HR@100, ``ndcg@50`` → NDCG@50."""
    return "AUC" if metric == "auc" else metric.replace("hr", "HR").replace("ndcg", "NDCG")


def format_metrics(metrics):
    return "  ".join(f"{metric_label(k)} {v:.4f}" for k, v in metrics.items())


def run_summary(title, data_info, best_epoch, wall_seconds, metrics):
    """The ``summary.txt`` of one training run."""
    return (
        f"{title}\n{format_summary(data_info)}\nbest epoch {best_epoch}; "
        f"wall time {wall_seconds:.1f} s\ntest: {format_metrics(metrics)}\n"
    )


def save_run(folder, model, split, test_result, data_info, summary_text):
    """Write every file of a run into ``folder`` (normally the temporary one); ``split``
    ``None``: no ``split.npz`` (a sweep's runs share the sweep's)."""
    write_json(os.path.join(folder, "config.json"), {"train": model.config, "data": data_info})
    write_json(
        os.path.join(folder, "metrics.json"),
        {
            "test": test_result["metrics"],
            "test_users": test_result["n_users"],
            "test_pairs": test_result["n_pairs"],
            "groups": test_result["groups"],
            "best_epoch": model.best_epoch,
            "history": model.history,
        },
    )
    np.savez_compressed(os.path.join(folder, "lambda_trajectory.npz"), **model.trajectory)
    model.save(folder)
    if split is not None:
        split.save(os.path.join(folder, "split.npz"))
    with open(os.path.join(folder, "summary.txt"), "w") as fh:
        fh.write(summary_text)
