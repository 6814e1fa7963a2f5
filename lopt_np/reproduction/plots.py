"""The paper's Figures 1, 6, 7 and 8 from saved runs (``lopt plot``; matplotlib, the ``plot``
extra, imported only here and only when a figure is drawn).

- Figure 1: test metrics of MF-λFix against the fixed λ (a ``lopt grid`` folder).
- Figure 6: relative gain of MF-λOpt-DUI over MF-λFix per user and per item training-frequency
  group (SPEC §7 per-group breakdown; a reproduction folder, or a run with ``baseline``).
- Figure 7: Λ-trajectories: per epoch, mean over the rows of a frequency group of the Λ
  averaged over dimensions, with a ± one standard deviation band.
- Figure 8: mean Λ against training frequency (log-spaced bins) for every epoch, as a heat map.
- Learning curve: the validation metric per epoch of a ``lopt train`` run and, where the run
  has its MF-λFix comparison (``comparison.json``) or a ``baseline``, of MF-λFix.

Every figure carries a footer with the dataset and the key settings of the run it draws.
"""

import functools
import json
import os

import numpy as np
import pandas as pd

from ..data.split import Split
from ..errors import ConfigError, DataError
from ..evaluation import group_labels
from ..io import metric_label, write_whole

FIGURES = {
    "figure1_lambda_grid.png": "Figure 1",
    "figure6_group_gain.png": "Figure 6",
    "figure7_lambda_trajectories.png": "Figure 7",
    "figure8_lambda_vs_frequency.png": "Figure 8",
    "learning_curve.png": "learning curve",
}


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("lopt plot needs matplotlib: pip install 'lopt_np[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc


def figure1_lambda_grid(grid_dir, path):
    """Test (solid) and validation (dashed) metrics against λ; λ = 0 drawn left of the axis'
    smallest value and labelled 0; the selected λ marked."""
    plt = _pyplot()
    table = pd.read_csv(os.path.join(grid_dir, "grid.csv"))
    selected = _read_json(os.path.join(grid_dir, "grid.json"))["selected_lambda"]
    lams = table["lambda"].to_numpy(float)
    positive = lams[lams > 0]
    zero_at = positive.min() / 10 if len(positive) else 1e-6
    x = np.where(lams > 0, lams, zero_at)
    order = np.argsort(x)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, family in zip(axes, ("hr", "ndcg")):
        cols = [c[5:] for c in table.columns if c.startswith(f"test_{family}@")]
        for q, m in enumerate(cols):
            (line,) = ax.plot(
                x[order],
                table[f"test_{m}"].to_numpy()[order],
                "o-",
                label=f"test {metric_label(m)}",
            )
            if f"valid_{m}" in table:
                ax.plot(
                    x[order],
                    table[f"valid_{m}"].to_numpy()[order],
                    "s--",
                    alpha=0.6,
                    color=line.get_color(),
                    label=f"validation {metric_label(m)}",
                )
        ax.axvline(
            selected if selected > 0 else zero_at,
            color="grey",
            ls=":",
            label=f"selected λ = {selected:g}",
        )
        ax.set_xscale("log")
        ticks = np.sort(np.unique(x))
        ax.set_xticks(
            ticks, [("0" if t == zero_at and not (lams == t).any() else f"{t:g}") for t in ticks]
        )
        ax.set_xlabel("fixed λ (global L2 coefficient; log scale)")
        ax.set_ylabel(f"{family.upper()}@K (mean over users)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Figure 1: MF-λFix performance against the fixed λ")
    _save(fig, path, settings_note(grid_dir))


def group_gain(fix_groups, opt_groups, metric):
    """Per group, 100 (opt − fix)/fix of ``metric`` (NaN for an empty group or fix = 0)."""
    return [
        100 * (o[metric] - f[metric]) / f[metric]
        if f["count"] and f[metric] and o[metric] is not None
        else np.nan
        for f, o in zip(fix_groups, opt_groups)
    ]


def figure6_group_gain(fix_dir, lopt_dir, path, metrics=("hr@100", "ndcg@100")):
    """Relative gain (%) of the λOpt run over the λFix run per frequency group, users and items
    side by side; each bar labelled with the group's size."""
    plt = _pyplot()
    fix = _read_json(os.path.join(fix_dir, "metrics.json"))["groups"]
    opt = _read_json(os.path.join(lopt_dir, "metrics.json"))["groups"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, who in zip(axes, ("users", "items")):
        labels = [g["group"] for g in fix[who]]
        width = 0.8 / len(metrics)
        for q, m in enumerate(metrics):
            gain = group_gain(fix[who], opt[who], m)
            pos = np.arange(len(labels)) + (q - (len(metrics) - 1) / 2) * width
            ax.bar(pos, gain, width, label=metric_label(m))
        counts = [g["count"] for g in fix[who]]
        ax.set_xticks(
            np.arange(len(labels)),
            [f"{lab}\n(n={c})" for lab, c in zip(labels, counts)],
            fontsize=8,
        )
        ax.axhline(0, color="black", lw=0.8)
        ax.set_xlabel(f"{who[:-1]} training frequency (interactions in train)")
        ax.set_ylabel("gain of MF-λOpt-DUI over MF-λFix (%)")
        ax.set_title(f"per {who[:-1]} group")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Figure 6: improvement of MF-λOpt-DUI over MF-λFix by frequency group")
    _save(fig, path, settings_note(lopt_dir))


def _trajectory(run_dir):
    path = os.path.join(run_dir, "lambda_trajectory.npz")
    if not os.path.isfile(path):
        raise DataError(f"{run_dir} has no lambda_trajectory.npz")
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def figure7_lambda_trajectories(run_dir, path):
    """Mean Λ per frequency group per epoch, band = ± one standard deviation over the group
    (log y scale when every mean after the first epoch is positive; the band is cut at the
    axis' bottom)."""
    plt = _pyplot()
    tr = _trajectory(run_dir)
    labels = group_labels(list(tr["group_edges"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    epochs = tr["epochs"]
    for ax, who in zip(axes, ("user", "item")):
        mean, std = tr[f"{who}_group_mean"], tr[f"{who}_group_std"]
        count = tr[f"{who}_group_count"]
        shown = mean[:, count > 0]
        log_scale = bool(len(shown) > 1 and (shown[1:] > 0).all())
        floor = 0.5 * shown[1:].min() if log_scale else 0.0  # epoch 1 may still be at Λ = 0
        for g, label in enumerate(labels):
            if not count[g]:
                continue
            (line,) = ax.plot(epochs, mean[:, g], label=f"{label} (n={count[g]})")
            ax.fill_between(
                epochs,
                np.maximum(mean[:, g] - std[:, g], floor),
                mean[:, g] + std[:, g],
                color=line.get_color(),
                alpha=0.15,
            )
        if log_scale:  # long-tailed: groups differ by orders of magnitude
            ax.set_yscale("log")
            ax.set_ylim(bottom=floor)
        _integer_epochs(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel(
            "Λ: row mean over dimensions,\ngroup mean" + (" (log scale)" if log_scale else "")
        )
        ax.set_title(f"{who}s, grouped by training frequency")
        ax.grid(alpha=0.3)
        ax.legend(
            fontsize=7,
            title="frequency group",
            title_fontsize=7,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            borderaxespad=0,
        )
    fig.suptitle(
        "Figure 7: Λ-trajectories of MF-λOpt-DUI by frequency group "
        "(band: ± one std within the group)"
    )
    _save(fig, path, settings_note(run_dir))


def figure8_lambda_vs_frequency(run_dir, path, n_bins=12):
    """Heat map: epoch (x) × training frequency (log-spaced bins, y), colour = mean Λ."""
    plt = _pyplot()
    from matplotlib.colors import LogNorm

    tr = _trajectory(run_dir)
    split = Split.load(os.path.join(run_dir, "split.npz"))
    epochs = tr["epochs"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, who, freq in zip(
        axes, ("user", "item"), (split.user_frequency(), split.item_frequency())
    ):
        lam = tr[f"{who}_lambda"]  # epochs × rows
        lo, hi = max(freq.min(), 1), freq.max() + 1
        edges = np.unique(np.geomspace(lo, hi, n_bins + 1).round().astype(int))
        grid = np.full((len(edges) - 1, len(epochs)), np.nan)
        for b in range(len(edges) - 1):
            sel = (freq >= edges[b]) & (freq < edges[b + 1])
            if sel.any():
                grid[b] = lam[:, sel].mean(axis=1)
        positive = grid[np.isfinite(grid) & (grid > 0)]
        norm = (
            LogNorm(positive.min(), positive.max())
            if len(positive) and positive.max() > positive.min()
            else None
        )
        x = np.concatenate([epochs - 0.5, [epochs[-1] + 0.5]])
        mesh = ax.pcolormesh(
            x, edges, np.ma.masked_invalid(grid), norm=norm, cmap="viridis", shading="flat"
        )
        ax.set_yscale("log")
        ax.set_yticks(edges[::2], [str(e) for e in edges[::2]])  # bin edges, plain numbers
        ax.minorticks_off()
        _integer_epochs(ax)
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"{who} training frequency (bin edges; log scale)")
        ax.set_title(f"{who}s")
        fig.colorbar(mesh, ax=ax, label="mean Λ over the bin's rows and dimensions")
    fig.suptitle("Figure 8: average Λ against frequency as training goes on (MF-λOpt-DUI)")
    _save(fig, path, settings_note(run_dir))


def _integer_epochs(ax):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def settings_note(run_dir):
    """One line: the dataset and the key settings of the run in ``run_dir`` (its
    ``config.json``), for a figure's footer."""
    path = os.path.join(run_dir, "config.json")
    if not os.path.isfile(path):
        return ""
    config = _read_json(path)
    data, train = config.get("data", {}), config.get("train", {})
    source = data.get("source", "?")
    name = "synthetic data" if source == "synthetic" else os.path.basename(str(source))
    parts = [
        f"{name}: {data.get('users', '?'):,} users × {data.get('items', '?'):,} items"
        if isinstance(data.get("users"), int)
        else name
    ]
    if train:
        parts.append(f"MF K={train.get('dim')}, {train.get('optimizer')} lr {train.get('lr'):g}")
        if train.get("learn_lambda"):
            parts.append(
                f"λOpt-{train.get('granularity')}, Λ by {train.get('lambda_optimizer')}"
                f" lr {train.get('lambda_lr'):g}"
            )
        parts.append(f"seed {train.get('seed')}")
    return " · ".join(parts)


def figure_learning_curve(run_dir, path, baseline=None):
    """The run's validation metric (the one early stopping watched) per epoch, its kept epoch
    marked, beside MF-λFix's (the run's comparison, or ``baseline``'s metrics.json)."""
    plt = _pyplot()
    metrics = _read_json(os.path.join(run_dir, "metrics.json"))
    config = _read_json(os.path.join(run_dir, "config.json")).get("train", {})
    metric = config.get("early_stopping", "hr@100")
    curves = [
        (
            "MF-λOpt" if config.get("learn_lambda") else "MF-λFix",
            metrics["history"],
            metrics.get("best_epoch"),
        )
    ]
    comparison = os.path.join(run_dir, "comparison.json")
    if baseline:
        fix = _read_json(os.path.join(baseline, "metrics.json"))
        curves.append(("MF-λFix (baseline)", fix["history"], fix.get("best_epoch")))
    elif os.path.isfile(comparison):
        comp = _read_json(comparison)
        curves.append((f"MF-λFix, λ={comp['lambda_fix']:g}", comp["lambda_fix_history"], None))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for label, history, best in curves:
        points = [(h["epoch"], h["valid"][metric]) for h in history if "valid" in h]
        if not points:
            continue
        x, y = zip(*points)
        (line,) = ax.plot(x, y, "-", label=label)
        if best:
            ax.plot(
                [best],
                [dict(points).get(best, np.nan)],
                "o",
                color=line.get_color(),
                label=f"{label}: kept epoch {best}",
            )
    _integer_epochs(ax)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"validation {metric_label(metric)}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(f"Learning curve: validation {metric_label(metric)} per epoch")
    _save(fig, path, settings_note(run_dir))


def _save(fig, path, note=""):
    if note:
        fig.text(0.5, 0.005, note, ha="center", va="bottom", fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.035 if note else 0, 1, 1))
    write_whole(path, lambda tmp: fig.savefig(tmp, dpi=120, format="png"))
    import matplotlib.pyplot as plt

    plt.close(fig)


def plot_run(run_dir, out_dir=None, baseline=None):
    """Draw every figure ``run_dir`` has the data for; returns the written paths.

    A reproduction folder (``table2.json``) gives all four; a ``lopt grid`` folder Figure 1; a
    ``lopt train`` run with learned Λ Figures 7 and 8, and Figure 6 with ``baseline`` (a
    MF-λFix run or grid folder)."""
    if not os.path.isdir(run_dir):
        raise DataError(f"{run_dir} is not a directory")
    out_dir = out_dir or os.path.join(run_dir, "figures")
    jobs = []
    if os.path.isfile(os.path.join(run_dir, "table2.json")):
        fix, dui = os.path.join(run_dir, "MF-lFix"), os.path.join(run_dir, "MF-lOpt-DUI")
        jobs.append((figure1_lambda_grid, (fix,), "figure1_lambda_grid.png"))
        if os.path.isdir(dui):
            jobs += [
                (figure6_group_gain, (fix, dui), "figure6_group_gain.png"),
                (figure7_lambda_trajectories, (dui,), "figure7_lambda_trajectories.png"),
                (figure8_lambda_vs_frequency, (dui,), "figure8_lambda_vs_frequency.png"),
            ]
    elif os.path.isfile(os.path.join(run_dir, "grid.csv")):
        jobs.append((figure1_lambda_grid, (run_dir,), "figure1_lambda_grid.png"))
    elif os.path.isfile(os.path.join(run_dir, "lambda_trajectory.npz")):
        config = _read_json(os.path.join(run_dir, "config.json")).get("train", {})
        if not config.get("learn_lambda", False):
            raise DataError(
                f"{run_dir} is a fixed-λ run: it has no Λ trajectory to draw "
                f"(plot a grid or reproduction folder for Figure 1)"
            )
        jobs += [
            (figure7_lambda_trajectories, (run_dir,), "figure7_lambda_trajectories.png"),
            (figure8_lambda_vs_frequency, (run_dir,), "figure8_lambda_vs_frequency.png"),
            (
                functools.partial(figure_learning_curve, baseline=baseline),
                (run_dir,),
                "learning_curve.png",
            ),
        ]
        if baseline:
            jobs.append((figure6_group_gain, (baseline, run_dir), "figure6_group_gain.png"))
    else:
        raise DataError(
            f"{run_dir} is not a run, grid or reproduction folder (no table2.json, "
            f"grid.csv or lambda_trajectory.npz)"
        )
    if baseline and not os.path.isfile(os.path.join(baseline, "metrics.json")):
        raise DataError(f"--baseline {baseline} is not a run or grid folder (no metrics.json)")
    _pyplot()  # fail before any file is touched
    os.makedirs(out_dir, exist_ok=True)
    written = []
    for fn, args, name in jobs:
        path = os.path.join(out_dir, name)
        fn(*args, path)
        written.append(path)
    return written
