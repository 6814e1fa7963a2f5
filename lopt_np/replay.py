"""Replay a recorded trace of the authors' code (``shared/reference-trace``) through the trainer's
own driver (:func:`lopt_np.trainer.lambda_opt_iteration`) and backends, batch for batch.

The trace holds the initial P0/Q0, every batch the authors' sampler drew (assumed B̄,
validation V, real B per step), P/Q/Λ snapshots and per-step losses and column fingerprints.
:func:`replay` feeds the recorded batches in the recorded order and returns the largest
deviations from the recording; the trace README gives the tolerances (1e-11 absolute under Adam,
1e-13 under SGD, float64).
"""

import json

import numpy as np

from .math.granularity import get_granularity, init_lambda
from .trainer import LOOKAHEAD, TRAIN, VALID, TrainConfig, lambda_opt_iteration
from .trainer import make_trainer_backend

LAMBDA_NETWORKS = {"dimension+user+item": "DUI", "dimension-wise": "D"}


def load_trace(path):
    """The arrays of a trace file, plus ``meta`` (its parsed ``meta_json``)."""
    with np.load(path) as d:
        trace = {k: d[k] for k in d.files}
    trace["meta"] = json.loads(str(trace.pop("meta_json")))
    return trace


def trace_config(trace, preset="authors", **overrides):
    """The :class:`TrainConfig` of the trace's run under ``preset`` (default: the authors'
    semantics), float64; ``overrides`` switch single options (e.g. to show that a replay
    breaks)."""
    o = trace["meta"]["opt"]
    bs = int(o["batch_size_train"])
    settings = dict(
        dim=int(o["latent_dim"]),
        optimizer=o["mf_optimizer"],
        lr=float(o["mf_lr"]),
        eps=float(o["mf_eps"]),
        beta1=float(o["mf_betas"][0]),
        beta2=float(o["mf_betas"][1]),
        batch_size=bs,
        valid_batch_size=int(o["batch_size_valid"]),
        granularity=LAMBDA_NETWORKS[o["lambda_network_type"]],
        lambda_optimizer="amsgrad" if o["lambda_network_amsgrad"] else "adam",
        lambda_lr=float(o["lambda_network_lr"]),
        lambda_clip=float(o["lambda_network_grad_clip"]),
        lambda_beta1=float(o["lambda_network_betas"][0]),
        lambda_beta2=float(o["lambda_network_betas"][1]),
        lambda_init=float(o["lambda_network_init"]),
        dtype="float64",
        eval_every=0,
        patience=0,
    )
    return TrainConfig.from_preset(preset, **{**settings, **overrides}).validate()


class _NotRecorded(Exception):
    """The driver asked for a batch the recording has none of at that step."""


def _batch(trace, name, k):
    n = int(trace[f"{name}_batch_size"][k])
    if n == 0:
        raise _NotRecorded(name)
    b = trace[f"{name}_batch"][k, :n].astype(np.int64)
    return b[:, 0], b[:, 1], b[:, 2]


def replay(trace, cfg, steps=None):
    """Run ``steps`` (default: all) recorded steps under ``cfg`` and compare with the recording.

    Returns the largest absolute deviations ``{"theta", "lambda", "train_loss", "valid_loss"}``
    over the stored snapshots and steps, ``"fingerprint"`` (relative, every step) and
    ``"steps"`` (replayed). A recorded step with no assumed batch (step 0) must have no λ step
    under ``cfg``, and the other way round: a mismatch is counted in ``"draws"``, and a λ step
    the recording has no batches for ends the replay there.
    """
    n_steps = int(len(trace["step_idx"]) if steps is None else steps)
    g = get_granularity(cfg.granularity)
    n_users, n_items = trace["P0"].shape[0], trace["Q0"].shape[0]
    lam_P, lam_Q = init_lambda(g, n_users, n_items, cfg.dim, cfg.lambda_init, np.float64)
    backend = make_trainer_backend(
        cfg,
        trace["P0"].copy(),
        trace["Q0"].copy(),
        lam_P,
        lam_Q,
        cfg.batch_size,
        cfg.valid_batch_size or cfg.batch_size,
    )
    snaps = {int(n): s for s, n in enumerate(trace["snap_n_steps"])}
    dev = {
        "theta": 0.0,
        "lambda": 0.0,
        "train_loss": 0.0,
        "valid_loss": 0.0,
        "fingerprint": 0.0,
        "draws": 0,
        "steps": n_steps,
    }
    for k in range(n_steps):
        drawn = []

        def draw(kind):
            drawn.append(kind)
            name = {LOOKAHEAD: "assumed", VALID: "valid", TRAIN: "real"}[kind]
            return _batch(trace, name, k)

        try:
            train_loss, valid_loss = lambda_opt_iteration(backend, cfg, k, draw)
        except _NotRecorded:
            dev["draws"] += 1
            dev["steps"] = k
            break
        recorded_lambda_step = trace["assumed_batch_size"][k] > 0
        if (LOOKAHEAD in drawn) != recorded_lambda_step:
            dev["draws"] += 1
        dev["train_loss"] = max(dev["train_loss"], abs(train_loss - trace["train_loss"][k]))
        if valid_loss is not None and recorded_lambda_step:
            dev["valid_loss"] = max(dev["valid_loss"], abs(valid_loss - trace["valid_loss"][k]))
        P, Q, lP, lQ = backend.parameters()
        lP, lQ = np.broadcast_to(lP, P.shape), np.broadcast_to(lQ, Q.shape)
        fps = [("P", P), ("Q", Q), ("lam_user", lP), ("lam_item", lQ)]
        for name, x in fps:
            if g.tied and name.startswith("lam"):  # D: the fingerprint is Λ itself
                got, want = x[0], trace[f"fp_{name}_colsum"][k]
                dev["fingerprint"] = max(dev["fingerprint"], _rel(got, want))
                continue
            for stat, got in (("colsum", x.sum(axis=0)), ("colsumsq", (x * x).sum(axis=0))):
                dev["fingerprint"] = max(
                    dev["fingerprint"], _rel(got, trace[f"fp_{name}_{stat}"][k])
                )
        s = snaps.get(k + 1)
        if s is not None:
            dev["theta"] = max(
                dev["theta"],
                np.abs(P - trace["snap_P"][s]).max(),
                np.abs(Q - trace["snap_Q"][s]).max(),
            )
            want_P = trace["snap_lam_user"][s].reshape(-1, lP.shape[1])
            want_Q = trace["snap_lam_item"][s].reshape(-1, lQ.shape[1])
            dev["lambda"] = max(dev["lambda"], np.abs(lP - want_P).max(), np.abs(lQ - want_Q).max())
    return {k: float(v) if k not in ("draws", "steps") else v for k, v in dev.items()}


def _rel(got, want):
    """Largest |got − want| relative to the column's scale (at least 1)."""
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)))
