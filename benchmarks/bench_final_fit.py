"""Is the final fit (``lopt train --final``, ``LambdaOpt.fit_final``) worth serving? Measured on
a time split: each user's latest 20 % of interactions are the "future", never seen by any
model here (after the paper's 20-record filter); on the remaining past, the usual protocol
(60/20/20 by time) trains MF-λOpt-DUI with the defaults (model A: it has seen the oldest 60 % of the past). Then, on the whole past
continuing A (or starting afresh) with no Λ step:

- B (the defaults): A's P and Q continue for ``final_epochs`` (20) epochs with no penalty
  (``final_lambda="zero"``);
- B, learned Λ: the same with A's learned Λ held fixed;
- fresh, learned Λ: a fresh start for A's kept number of epochs with A's Λ held fixed.

Every model is ranked on the future (SPEC §7 full ranking, every past interaction filtered).

    python benchmarks/bench_final_fit.py --dataset ml-100k --seeds 0,1,2

Results: ``benchmarks/results/bench_final_fit-<dataset>.{json,md}``.
"""

import argparse
import os
import sys
import time

import numpy as np

from report import save_report
from reproduce import DATA, HERE

METRICS = ("auc", "hr@50", "hr@100", "ndcg@50", "ndcg@100")
VARIANTS = ("model", "final", "final_learned_lambda", "fresh_learned_lambda")


def past_and_future(path):
    """``(inner split of the past, evaluation split with the future as test)``."""
    from lopt_np.data.inputs import PAPER_MIN_COUNT
    from lopt_np.data.loaders import load_interactions
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.split import EMPTY_PAIRS, Split

    df = load_interactions(path)
    outer = build_split(df, min_count=PAPER_MIN_COUNT)  # the paper's filter, split by time
    future = {(outer.user_ids[u], outer.item_ids[i]) for u, i in outer.test}
    key = list(zip(df["user"], df["item"]))
    keep = np.array([k not in future for k in key])
    keep &= df["user"].isin(outer.user_ids).to_numpy() & df["item"].isin(outer.item_ids).to_numpy()
    inner = build_split(df[keep].reset_index(drop=True), min_count=0)
    u_index = {x: k for k, x in enumerate(inner.user_ids)}
    i_index = {x: k for k, x in enumerate(inner.item_ids)}
    pairs = np.array(
        [
            (u_index[outer.user_ids[u]], i_index[outer.item_ids[i]])
            for u, i in outer.test
            if outer.user_ids[u] in u_index and outer.item_ids[i] in i_index
        ],
        np.int64,
    )
    past = np.concatenate([inner.train, inner.valid, inner.test])
    evaluation = Split(
        inner.n_users, inner.n_items, past, EMPTY_PAIRS, pairs, inner.user_ids, inner.item_ids
    )
    return inner, evaluation, len(outer.test) - len(pairs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="ml-100k")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", default=os.path.join(HERE, "results"))
    a = ap.parse_args()
    path = os.path.join(DATA, f"{a.dataset}.csv.gz")
    if not os.path.isfile(path):
        sys.exit(f"Error: {path} not found (set LOPT_SHARED_DATA to the folder holding it)")
    from lopt_np.evaluation import evaluate
    from lopt_np.trainer import LambdaOpt

    inner, evaluation, dropped = past_and_future(path)
    print(
        f"past: train {len(inner.train):,} / valid {len(inner.valid):,} / test "
        f"{len(inner.test):,}; future {len(evaluation.test):,} pairs ({dropped} with an item "
        f"or user absent from the past left out)",
        flush=True,
    )
    runs = []
    for seed in (int(s) for s in a.seeds.split(",")):
        est = LambdaOpt(seed=seed)
        t0 = time.perf_counter()
        model = est.fit(inner)
        t1 = time.perf_counter()
        final = est.fit_final(model, inner)
        t2 = time.perf_counter()
        learned = est.fit_final(model, inner, final_lambda="learned")
        fresh = est.fit_final(model, inner, warm_start=False, final_lambda="learned")
        row = {
            "seed": seed,
            "best_epoch": model.best_epoch,
            "fit_s": t1 - t0,
            "final_fit_s": t2 - t1,
        }
        for name, m in zip(VARIANTS, (model, final, learned, fresh)):
            row[name] = evaluate(m.P, m.Q, evaluation, "test")["metrics"]
        runs.append(row)
        print(
            f"seed {seed}: A (60 % of the past) HR@100 {row['model']['hr@100']:.4f}, "
            f"B (final fit) {row['final']['hr@100']:.4f}; kept epoch {model.best_epoch}; "
            f"{t1 - t0:.0f} s + {t2 - t1:.0f} s",
            flush=True,
        )
    lines = [
        f"{a.dataset}: the future = each user's latest 20 % ({len(evaluation.test):,} "
        f"pairs); MF-λOpt-DUI, defaults; {time.strftime('%Y-%m-%d')}",
        "",
        "| seed | model | " + " | ".join(m.upper() for m in METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    for r in runs:
        labels = (
            "A: trained on 60 % of the past",
            "B: A continued on all of the past, Λ = 0",
            "B, learned Λ",
            f"fresh start, learned Λ, {r['best_epoch']} epochs",
        )
        for name, label in zip(VARIANTS, labels):
            lines.append(
                f"| {r['seed']} | {label} | "
                + " | ".join(f"{r[name][m]:.4f}" for m in METRICS)
                + " |"
            )
    means = {
        name: {m: float(np.mean([r[name][m] for r in runs])) for m in METRICS} for name in VARIANTS
    }
    gain = {
        name: {m: means[name][m] / means["model"][m] - 1 for m in METRICS} for name in VARIANTS[1:]
    }
    lines.append("")
    for name, label in zip(VARIANTS[1:], ("B", "B with learned Λ", "the fresh start")):
        lines.append(
            f"mean gain of {label} over A: "
            + ", ".join(f"{m.upper()} {gain[name][m]:+.1%}" for m in METRICS)
        )
    text = "\n".join(lines)
    print(text)
    save_report(
        a.out,
        f"bench_final_fit-{a.dataset}",
        {
            "dataset": a.dataset,
            "runs": runs,
            "mean": means,
            "gain_over_model": gain,
            "future_pairs": len(evaluation.test),
            "dropped_future_pairs": dropped,
        },
        text,
    )


if __name__ == "__main__":
    main()
