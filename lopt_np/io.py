"""Run directories: written whole or not at all.

Files of a run (``lopt train --out DIR``): the model folder's ``model.npz`` and ``model.json``
(``lopt_np.model``), ``config.json``, ``metrics.json`` (test metrics, per-group breakdown,
per-epoch history), ``lambda_trajectory.npz``, ``split.npz`` and ``summary.txt``. Everything is written into a temporary sibling folder that is
renamed to DIR only when complete.
"""
import contextlib
import json
import os
import shutil
import tempfile

import numpy as np

from .data.split import Split
from .errors import ConfigError, DataError


def check_output_dir(path, overwrite):
    """Fail early (before any work) if ``path`` is a non-empty folder and not ``overwrite``."""
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise ConfigError(f"--out {path} exists and is not a directory")
        if os.listdir(path) and not overwrite:
            raise ConfigError(f"output directory {path} exists and is not empty; "
                              f"pass --overwrite to replace it")


@contextlib.contextmanager
def atomic_output_dir(path, overwrite=False):
    """Yield a temporary folder; on success it replaces ``path``, on any error it is removed."""
    check_output_dir(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(path))}.", dir=parent)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if os.path.exists(path):
        shutil.rmtree(path)
    os.replace(tmp, path)


def write_json(path, obj):
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, default=_json_default)
        fh.write("\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot write {type(o).__name__} to JSON")


def format_summary(s):
    """The data summary a run prints: sizes, what the filter dropped and why, the split."""
    lines = [f"users {s['users']:,}  items {s['items']:,}  interactions {s['interactions']:,}  "
             f"density {s['density']:.3%}"]
    if s.get("min_count", 0) > 1:
        dropped = (f"dropped {s.get('dropped_interactions', 0):,} interactions, "
                   f"{s.get('dropped_users', 0):,} users and {s.get('dropped_items', 0):,} items "
                   f"with fewer than {s['min_count']} records ({s.get('filter', '')}, "
                   f"{s.get('filter_rounds', 0)} round(s))")
    else:
        dropped = "no frequency filter, nothing dropped"
    lines.append(f"{s.get('records', s['interactions']):,} records read; "
                 f"{s.get('duplicates_collapsed', 0):,} duplicate (user, item) records "
                 f"collapsed; {dropped}")
    lines.append(f"split {s.get('split', '')}: train {s['train']:,} / validation {s['valid']:,} "
                 f"/ test {s['test']:,}")
    if s.get("selection"):
        lines[-1] += (f"; of the validation, {s['selection']:,} held out from Λ for early "
                      f"stopping and model selection")
    if s.get("users_without_test"):
        lines.append(f"{s['users_without_test']:,} users with too short a history for a test "
                     f"item are in training only")
    return "\n".join(lines)


def format_metrics(metrics):
    return "  ".join(f"{k.upper() if k == 'auc' else k.replace('hr', 'HR').replace('ndcg', 'NDCG')}"
                     f" {v:.4f}" for k, v in metrics.items())


def run_summary(title, data_info, best_epoch, wall_seconds, metrics):
    """The ``summary.txt`` of one training run."""
    return (f"{title}\n{format_summary(data_info)}\nbest epoch {best_epoch}; "
            f"wall time {wall_seconds:.1f} s\ntest: {format_metrics(metrics)}\n")


def save_run(folder, model, split, test_result, data_info, summary_text):
    """Write every file of a run into ``folder`` (normally the temporary one)."""
    write_json(os.path.join(folder, "config.json"), {"train": model.config, "data": data_info})
    write_json(os.path.join(folder, "metrics.json"),
               {"test": test_result["metrics"], "test_users": test_result["n_users"],
                "test_pairs": test_result["n_pairs"], "groups": test_result["groups"],
                "best_epoch": model.best_epoch, "history": model.history})
    np.savez_compressed(os.path.join(folder, "lambda_trajectory.npz"), **model.trajectory)
    model.save(folder)
    split.save(os.path.join(folder, "split.npz"))
    with open(os.path.join(folder, "summary.txt"), "w") as fh:
        fh.write(summary_text)


def load_run(folder):
    """``(model, split)`` of a run directory, for re-evaluation (``lopt evaluate``)."""
    from .model import Model
    model = Model.load(folder)
    if not os.path.isfile(os.path.join(folder, "split.npz")):
        raise DataError(f"{folder} is not a run directory: split.npz is missing")
    split = Split.load(os.path.join(folder, "split.npz"))
    if model.n_users != split.n_users or model.n_items != split.n_items:
        raise DataError(f"{folder}: model.npz ({model.n_users} users, {model.n_items} items) "
                        f"does not match split.npz ({split.n_users} users, {split.n_items} "
                        f"items)")
    return model, split
