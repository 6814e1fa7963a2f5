"""The one trainer behind every mode: fixed λ (``learn_lambda=False``) and λOpt with any
granularity × {SGD, Adam} × {full, batch} scope, on any backend (SPEC §5 iteration order).

    model = LambdaOpt(granularity="DUI", optimizer="adam").fit(split)
    model.evaluate(split)["metrics"]
"""

import dataclasses
import functools
import math
import os
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numba
import numpy as np

from .backends import BACKENDS, make_backend
from .checkpoint import check_same_run, has_checkpoint, load_checkpoint, save_checkpoint
from .errors import ConfigError, DataError, TrainingDivergedError, TrainingInterrupted
from .evaluation import (
    DEFAULT_GROUP_EDGES,
    DEFAULT_KS,
    check_ks,
    evaluate,
    evaluation_device,
    group_of,
)
from .math.granularity import get_granularity, init_lambda
from .math.hypergradient import LOOKAHEAD_COUNTS, Lookahead, ThetaOptimizer
from .math.lambda_update import LAMBDA_OPTIMIZERS, LAMBDA_ROWS, LambdaOptimizer
from .math.optimizers import EPS_PLACEMENTS, THETA_OPTIMIZERS, check_optimizer_scope
from .math.penalty import SCOPES
from .data.split import EMPTY_PAIRS, Split, hold_out_selection, selection_target
from .model import Model
from .progress import ConsoleProgress, Progress, RunControl, Tee  # noqa: F401 (re-export)
from .data.inputs import DATA_FIELDS, DataConfig, to_split
from .sampling import STREAM_LOOKAHEAD, BatchStream, TripletSampler
from .settings import check_declared, setting

METRICS = ("auc", "hr", "ndcg")
LOOKAHEAD_BATCHES = ("independent", "stream", "same")
DTYPES = ("float32", "float64")

# Named combinations of settings (SPEC §8). The defaults of :class:`TrainConfig` are the
# combination that measured best (README, "Accuracy"): the authors' lookahead semantics with an
# N(0, 0.1²) init and a selection hold-out, and Λ's Adam/AMSGrad on V's rows only (the dense
# update, their code's and SPEC §5's, measured the same accuracy and is slower). ``spec``:
# SPEC §3-§5's semantics, the same settings otherwise. ``authors``: what the authors' code (LaceyChen17/lambda-opt @672a7ec) computes, as
# its recorded traces confirm, with its ML-1M script's settings. Their Θ gradient clip (global
# norm 100) is left out: it never takes effect (largest pre-clip norm 0.63 in the traces);
# ``theta_clip`` runs it on the reference backend, where the replay tests check both.
SPEC_SEMANTICS = dict(
    eps_placement="inside",
    lambda_eps_placement="inside",
    lookahead_scope="same",
    lookahead_eps_placement="same",
    lookahead_count="next",
    assumed_penalty=False,
    lambda_warmup_steps=0,
    lookahead_batches="independent",
    lambda_rows="all",
)
AUTHORS_SEMANTICS = dict(
    eps_placement="outside",
    lambda_eps_placement="outside",
    lookahead_scope="full",
    lookahead_eps_placement="inside",
    lookahead_count="current",
    assumed_penalty=True,
    lambda_warmup_steps=1,
    lookahead_batches="stream",
    scope="batch",
    lambda_rows="all",
)
FINAL_LAMBDAS = ("zero", "learned")
# what a run written before an option existed did, where that differs from the option's default
# (a checkpoint without the option resumes with this value; every other option: its default)
BEFORE_OPTION = {"lambda_rows": "all"}
PRESETS = {
    "default": {},
    "spec": SPEC_SEMANTICS,
    "authors": dict(
        AUTHORS_SEMANTICS,
        dim=128,
        lr=1e-3,
        init_std=1.0,
        lambda_optimizer="amsgrad",
        lambda_lr=1e-3,
        lambda_clip=100.0,
        lambda_init=0.0,
        eps=1e-8,
        batch_size=1024,
        selection_frac=0.0,
        patience=0,
    ),
}


POSITIVE = dict(low=0, low_open=True)  # bounds of a learning rate, an ε, a std
UNIT = dict(low=0, high=1, high_open=True)  # of a β or a fraction: [0, 1)


@dataclass
class TrainConfig:
    """Every hyperparameter of a run, with the names the CLI uses (``--lambda-lr`` …): each
    field declares its default, help text, choices and bounds once (``lopt_np.settings``), and
    both :meth:`validate` and the ``lopt`` options read them."""

    dim: int = setting(128, "Latent dimension K.", low=1)
    lr: float = setting(1e-3, "Θ learning rate.", **POSITIVE)
    optimizer: str = setting("adam", "Θ optimizer.", choices=THETA_OPTIMIZERS)
    beta1: float = setting(0.9, "Θ's Adam β1.", **UNIT)
    beta2: float = setting(0.999, "Θ's Adam β2.", **UNIT)
    eps: float = setting(1e-8, "Θ's Adam ε (Λ's: --lambda-eps).", **POSITIVE)
    batch_size: int = setting(1024, "Training triplets per step.", low=1)
    valid_batch_size: int = setting(0, "Validation triplets per Λ update (0: --batch-size).", low=0)
    epochs: int = setting(100, "At most this many epochs.", low=1)
    init_std: float = setting(0.1, "Std of the N(0, σ²) embedding init.", **POSITIVE)
    granularity: str = setting("DUI", "Which indices Λ carries (SPEC §3).")
    learn_lambda: bool = setting(True, "Learn Λ (false: MF-λFix, Λ fixed at lambda_init).")
    lambda_init: float = setting(
        0.0, "Initial Λ; with --fixed-lambda the fixed λ (required there).", low=0
    )
    lambda_optimizer: str = setting("amsgrad", "Λ's optimizer.", choices=LAMBDA_OPTIMIZERS)
    lambda_lr: float = setting(1e-3, "Λ's learning rate: the main knob of λOpt.", **POSITIVE)
    lambda_clip: float = setting(
        100.0,
        "Clip G_Λ to this global L2 norm (none: no clipping).",
        low=0,
        low_open=True,
        finite=False,
    )
    # Λ's Adam/AMSGrad moments (its own, not Θ's)
    lambda_beta1: float = setting(0.9, "Λ's Adam/AMSGrad β1 (its own; Θ's is beta1).", **UNIT)
    lambda_beta2: float = setting(0.999, "Λ's Adam/AMSGrad β2 (its own; Θ's is beta2).", **UNIT)
    lambda_eps: float = setting(1e-8, "Λ's Adam/AMSGrad ε (its own; Θ's is --eps).", **POSITIVE)
    lambda_update_interval: int = setting(1, "Update Λ every N steps.", low=1)
    lambda_rows: str = setting(
        "batch",
        "Λ entries an Adam/AMSGrad step updates: batch (only the users and items of the "
        "validation batch; the rest keep value and moments, like lazy Adam) or all (every "
        "entry: moments decay where G_Λ = 0; the authors' and SPEC §5's).",
        choices=LAMBDA_ROWS,
    )
    scope: str = setting(
        "batch", "Penalty on the batch's rows or on every row (SPEC §3).", choices=SCOPES
    )
    # the variants of SPEC §8 (the authors' choices measured best; ``PRESETS["spec"]``: §3-§5)
    eps_placement: str = setting(
        "outside",
        "Θ's Adam: ε inside the root, √(v + ε) (SPEC §4, Eq. 12), or outside it, √v̂ + ε "
        "(torch.optim.Adam, the authors' real step).",
        choices=EPS_PLACEMENTS,
    )
    lambda_eps_placement: str = setting(
        "outside", "Λ's Adam/AMSGrad: ε inside or outside the root.", choices=EPS_PLACEMENTS
    )
    lookahead_scope: str = setting(
        "full",
        "Penalty scope of the lookahead's differentiable term (same: --scope; full: 2ΛΘ on "
        "every row, weight 1, as the authors').",
        choices=("same",) + SCOPES,
    )
    lookahead_eps_placement: str = setting(
        "inside",
        "ε in the lookahead's Adam step (same: --eps-placement; the authors' lookahead: inside).",
        choices=("same",) + EPS_PLACEMENTS,
    )
    lookahead_count: str = setting(
        "current",
        "Bias-correction count of the lookahead's Adam: next = t + 1 (the update about to be "
        "taken), current = t (the authors').",
        choices=LOOKAHEAD_COUNTS,
    )
    assumed_penalty: bool = setting(
        True,
        "The lookahead's training gradient also holds its batch's penalty at the current Λ, "
        "as a constant (the authors').",
    )
    theta_clip: float = setting(
        math.inf,
        "Global-norm clip of the Θ gradient (reference backend only).",
        low=0,
        low_open=True,
        finite=False,
    )
    lambda_warmup_steps: int = setting(
        1, "Real steps before the first Λ step (the authors: 1).", low=0
    )
    lookahead_batches: str = setting(
        "stream",
        "The lookahead's training batch: from an independent stream, the batch before the "
        "real step's in one stream (the authors'), or the real step's own batch (same).",
        choices=LOOKAHEAD_BATCHES,
    )
    shared_assumed_state: bool = setting(
        False,
        "The lookahead's training gradient also enters the real Adam's moments and step "
        "count (a torch-2 port of the authors' code whose copied optimizer shares the real "
        "one's state; dense Adam, CPU).",
    )
    # SPEC §8, last paragraph: 0 lets Λ and the selection share the validation set
    selection_frac: float = setting(
        0.25,
        "Share of each user's validation interactions held out from Λ for early stopping "
        "and model selection (0: none held out).",
        **UNIT,
    )
    seed: int = setting(0, "Seed of the initialization and the sampling.", low=0)
    device: str = setting(
        "cpu",
        "cuda: every step on the GPU (numba-cuda, the `cuda` extra).",
        choices=BACKENDS,
    )
    dtype: str = setting("float32", "Float type of Θ, Λ and their moments.", choices=DTYPES)
    threads: int = setting(
        0, "CPU threads (0: all cores; one for a model of (users + items) × K < 262,144).", low=0
    )
    eval_every: int = setting(1, "Validation metrics every N epochs (0: only at the end).", low=0)
    early_stopping: str = setting(
        "hr@100", "Validation metric for early stopping and model selection."
    )
    patience: int = setting(
        10, "Stop after N evaluations without improvement, keep the best (0: off).", low=0
    )
    ks: tuple = setting(DEFAULT_KS, "Cut-offs K of HR@K and NDCG@K.")
    final_epochs: int = setting(20, "Epochs of the --final fit.", low=1)
    final_lambda: str = setting(
        "zero",
        "Penalty of the --final fit: none (zero) or the learned Λ held fixed.",
        choices=FINAL_LAMBDAS,
    )

    def validate(self):
        """Every value checked, types first, as a :class:`ConfigError` naming the option: each
        field against its declaration (``settings.check_declared``), then what involves
        several fields or a registry."""

        def need(cond, msg):
            if not cond:
                raise ConfigError(msg)

        check_declared(self)
        need(
            isinstance(self.ks, (tuple, list))
            and len(self.ks) > 0
            and all(
                isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1
                for k in self.ks
            ),
            f"ks must be a non-empty list of positive integers, got {self.ks!r}",
        )
        need(
            not self.shared_assumed_state
            or (self.optimizer == "adam" and self.device in ("cpu", "reference")),
            "shared_assumed_state needs the dense 'adam' optimizer on the cpu or reference backend",
        )
        need(
            self.lookahead_count == "next"
            or self.lambda_warmup_steps >= 1
            or not self.learn_lambda,
            "lookahead_count 'current' uses t = real steps done, which is 0 at the first step: "
            "set lambda_warmup_steps ≥ 1",
        )
        if self.device != "reference" and math.isfinite(self.theta_clip):
            raise ConfigError(
                f"theta_clip is implemented on the reference backend only "
                f"(device {self.device!r}); leave it unset"
            )
        get_granularity(self.granularity)
        try:
            check_optimizer_scope(self.optimizer, self.scope)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.device == "cuda":  # fail before any data is read, in one line
            from .backends.cuda_support import cuda_module

            cuda_module()
        metric = self.early_stopping.split("@")[0]
        need(
            metric in METRICS and (metric == "auc" or "@" in self.early_stopping),
            f"early_stopping must be auc, hr@K or ndcg@K, got {self.early_stopping!r}",
        )
        if "@" in self.early_stopping:
            need(
                self.early_stopping.split("@")[1].isdigit(),
                f"early_stopping must be auc, hr@K or ndcg@K, got {self.early_stopping!r}",
            )
        return self

    def watched_ks(self):
        ks = tuple(self.ks)
        if "@" in self.early_stopping:
            k = int(self.early_stopping.split("@")[1])
            ks = ks if k in ks else ks + (k,)
        return ks

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["ks"] = list(self.ks)
        d["lambda_clip"] = None if math.isinf(self.lambda_clip) else self.lambda_clip
        d["theta_clip"] = None if math.isinf(self.theta_clip) else self.theta_clip
        d["granularity"] = get_granularity(self.granularity).name
        return d

    @classmethod
    def from_preset(cls, preset="default", **params):
        """A config from a named preset (:data:`PRESETS`), ``params`` overriding it."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
        return cls(**{**PRESETS[preset], **params})

    def theta_optimizer(self):
        return ThetaOptimizer(
            self.optimizer,
            self.lr,
            self.beta1,
            self.beta2,
            self.eps,
            self.eps_placement,
            self.theta_clip,
        )

    def lambda_optimizer_settings(self):
        return LambdaOptimizer(
            self.lambda_optimizer,
            self.lambda_lr,
            self.lambda_beta1,
            self.lambda_beta2,
            self.lambda_eps,
            self.lambda_clip,
            self.lambda_eps_placement,
            self.lambda_rows,
        )

    def lookahead_rule(self):
        """The :class:`Lookahead` these settings describe, "same" resolved."""
        return Lookahead(
            scope=self.scope if self.lookahead_scope == "same" else self.lookahead_scope,
            assumed_penalty=bool(self.assumed_penalty),
            eps_placement=(
                self.eps_placement
                if self.lookahead_eps_placement == "same"
                else self.lookahead_eps_placement
            ),
            count=self.lookahead_count,
            shared_state=bool(self.shared_assumed_state),
        )

    def lambda_due(self, step):
        """Whether real step number ``step`` (0-based) is preceded by a λ step."""
        k = step - self.lambda_warmup_steps
        return k >= 0 and k % self.lambda_update_interval == 0


TRAIN, LOOKAHEAD, VALID = "train", "lookahead", "valid"


def lambda_opt_iteration(backend, cfg, step, draw):
    """One λOpt iteration, the one place its order is written (SPEC §5; §8 variants): when a λ
    step is due, draw B̄ then V and take the λ step (steps 1-5); then draw B and take the real
    step (``lookahead_batches="same"``: B is drawn first and serves as B̄). ``draw(kind)``
    returns the next batch of ``kind`` (TRAIN, LOOKAHEAD or VALID); the trainer samples them,
    the trace replay reads them from a recording. Returns
    ``(L_fit, L_val(Θ̄) or None)``."""
    valid_loss, real_batch = None, None
    if backend.learn_lambda and cfg.lambda_due(step):
        if cfg.lookahead_batches == "same":  # B̄ = B
            real_batch = draw(TRAIN)
        lookahead_batch = draw(LOOKAHEAD) if real_batch is None else real_batch
        valid_loss = backend.lambda_step(lookahead_batch, draw(VALID))
    if real_batch is None:
        real_batch = draw(TRAIN)
    return backend.theta_step(real_batch), valid_loss


def make_trainer_backend(cfg, P, Q, lam_P, lam_Q, max_batch, max_valid_batch):
    """The backend of ``cfg.device`` with the optimizers and lookahead rule ``cfg`` names."""
    return make_backend(
        cfg.device,
        P,
        Q,
        lam_P,
        lam_Q,
        get_granularity(cfg.granularity),
        cfg.theta_optimizer(),
        cfg.lambda_optimizer_settings(),
        scope=cfg.scope,
        learn_lambda=cfg.learn_lambda,
        lookahead=cfg.lookahead_rule(),
        max_batch=max_batch,
        max_valid_batch=max_valid_batch,
    )


# a model with fewer entries, (users + items) × K, runs its epochs fastest on one thread when
# ``threads`` is 0: its parallel regions are too short to pay for a second thread, and stall
# whenever one is descheduled (docs/performance.rst, "Threads for small models")
SERIAL_BELOW = 1 << 18


def thread_count(threads, n_users, n_items, dim):
    """The Numba threads of a run: ``threads``, or for 0 every core (one for a model of fewer
    than :data:`SERIAL_BELOW` entries). Results do not depend on it (docs/design.rst)."""
    cores = numba.config.NUMBA_NUM_THREADS
    if threads:
        return min(threads, cores)
    return 1 if (n_users + n_items) * dim < SERIAL_BELOW else cores


DIVERGED_LOSS_FACTOR = 100.0  # a training loss this many times its start has diverged
DIVERGED_PARAMETER = 1e6  # and so has an embedding entry beyond this magnitude


def check_divergence(train_loss, first_loss, P, Q, step, epoch):
    """The divergence rule, checked after every epoch (beside the NaN/inf check after every
    step): the epoch's mean training loss above DIVERGED_LOSS_FACTOR × max(the first step's
    loss, ln 2), or an embedding entry beyond ±DIVERGED_PARAMETER, stops training with a
    :class:`TrainingDivergedError` naming the step. A converging MF-BPR loss falls below ln 2
    and its embeddings stay within a few units."""
    if train_loss > DIVERGED_LOSS_FACTOR * first_loss:
        raise TrainingDivergedError(
            f"the training loss reached {train_loss:.3g} by step {step} (epoch {epoch}), over "
            f"{DIVERGED_LOSS_FACTOR:g} times its start ({first_loss:.3g}): training diverged; "
            f"lower lr or lambda_lr, or set lambda_clip"
        )
    largest = max(float(np.abs(P).max(initial=0)), float(np.abs(Q).max(initial=0)))
    if largest > DIVERGED_PARAMETER:
        raise TrainingDivergedError(
            f"an embedding entry reached {largest:.3g} by step {step} (epoch {epoch}), beyond "
            f"±{DIVERGED_PARAMETER:g}: training diverged; lower lr or lambda_lr"
        )


# the mean Λ of the progress reports reads all of Λ (2 ms at ML-10M shape, about one λOpt step):
# while Λ is learned it is taken at most this often, and at the end of every epoch
LAMBDA_MEAN_EVERY_S = 1.0


class LambdaMeans:
    """``(mean Λ^P, mean Λ^Q)`` for :meth:`Progress.step`: recomputed when ``final`` (an epoch's
    last step) or :data:`LAMBDA_MEAN_EVERY_S` after the last time while Λ is learned; a fixed Λ
    is read once. Taking it every 20 steps cost 1.2 s of a 25 s ML-10M-shape epoch."""

    def __init__(self, backend, every=LAMBDA_MEAN_EVERY_S, clock=time.perf_counter):
        self.backend, self.every, self.clock = backend, every, clock
        self.value, self.taken_at = None, 0.0

    def __call__(self, final):
        now = self.clock()
        stale = self.backend.learn_lambda and (final or now - self.taken_at >= self.every)
        if self.value is None or stale:
            self.value, self.taken_at = self.backend.mean_lambda(), now
        return self.value


def lambda_per_row(lam, n_rows):
    """Λ of one table averaged over the latent dimensions, one value per row (Figures 7-8)."""
    return np.broadcast_to(lam.mean(axis=1, keepdims=True), (n_rows, 1))[:, 0]


class Checkpoints:
    """Where and how often :meth:`LambdaOpt.fit` writes checkpoints (``lopt_np.checkpoint``)."""

    def __init__(self, folder, every, meta):
        self.folder, self.every, self.meta = folder, every, meta

    def save(
        self,
        backend,
        cfg,
        history,
        traj,
        epoch,
        step,
        first_loss,
        best,
        best_epoch,
        bad_epochs,
        best_params,
        stream,
    ):
        arrays = {f"backend.{k}": v for k, v in backend.checkpoint_state().items()}
        arrays["traj.user"] = np.stack(traj["user_lambda"])
        arrays["traj.item"] = np.stack(traj["item_lambda"])
        if best_params is not None:
            arrays.update(
                {f"best.{k}": v for k, v in zip(("P", "Q", "lam_P", "lam_Q"), best_params)}
            )
        meta = {
            "config": cfg.to_dict(),
            "epoch": epoch,
            "step": step,
            "first_loss": first_loss,
            "best": None if math.isinf(best) else best,
            "best_epoch": best_epoch,
            "bad_epochs": bad_epochs,
            "history": history,
            "stream_passes": stream.passes if stream is not None else 0,
            "stream_pos": stream.pos if stream is not None else 0,
            **self.meta,
        }
        save_checkpoint(self.folder, arrays, meta)


class EpochBatches:
    """The batches of one epoch, by kind (what :func:`lambda_opt_iteration`'s ``draw`` returns):
    the real batches B in a fresh order of the training positives; B̄ from an independent order
    (``lookahead_batches="independent"``) or, with B, consecutive batches of one stream that runs
    across epochs (``"stream"``), or B itself (``"same"``: no draw of its own); V from the
    validation positives Λ may see, cycled as needed."""

    def __init__(self, sampler, cfg, epoch, stream, learning, valid_batch_size):
        self.cfg, self.stream = cfg, stream
        self.vbs = valid_batch_size
        if stream is None:
            self.train = sampler.train_triplets(epoch)
            if learning and cfg.lookahead_batches == "independent":
                self.lookahead = sampler.train_triplets(epoch, STREAM_LOOKAHEAD)
        self.n = len(sampler.split.train)
        self.n_steps = -(-self.n // cfg.batch_size)
        if learning:
            n_lambda = self.n_steps // cfg.lambda_update_interval + 1
            self.valid = sampler.valid_triplets(epoch, n_lambda * self.vbs)
        self.valid_drawn = 0

    def draw(self, s, kind):
        """The next batch of ``kind`` at real step ``s`` of the epoch."""
        if kind == VALID:
            lo = self.valid_drawn * self.vbs
            self.valid_drawn += 1
            return self.valid.batch(lo, lo + self.vbs)
        bs = self.cfg.batch_size
        if self.stream is not None:
            return self.stream.next(bs)
        return (self.lookahead if kind == LOOKAHEAD else self.train).batch(s * bs, (s + 1) * bs)


class LambdaOpt:
    """MF-BPR with Λ learned by λOpt (or fixed: ``learn_lambda=False``); see :class:`TrainConfig`."""

    def __init__(self, preset: str = "default", **params: Any) -> None:
        names = {f.name for f in dataclasses.fields(TrainConfig)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        self.config = TrainConfig.from_preset(preset, **params).validate()

    def fit(
        self,
        data: Any,
        progress: Optional[Progress] = None,
        *,
        verbose: bool = False,
        callbacks: Sequence[Callable] = (),
        time_budget: Optional[float] = None,
        checkpoint_dir: Optional[str] = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        checkpoint_meta: Optional[dict] = None,
        **data_options: Any,
    ) -> Model:
        """Train MF-BPR with Λ learned by λOpt (SPEC §5), or fixed, and select the epoch.

        Parameters
        ----------
        data : Split, path, pandas.DataFrame or scipy.sparse matrix
            The interactions (``data.inputs.to_split``); a sparse matrix has users as rows,
            items as columns and every stored nonzero a positive.
        progress : Progress, optional
            Your own hooks (``lopt_np.progress``).
        verbose : bool
            The CLI's per-epoch lines on stderr.
        callbacks : sequence of callables
            ``fn(record, model)`` after each epoch (``model``: that epoch's parameters);
            returning True stops training, the best epoch kept.
        time_budget : float, optional
            Seconds; training stops after the epoch that passes them.
        checkpoint_dir, checkpoint_every, resume, checkpoint_meta
            Write a checkpoint to ``checkpoint_dir`` every ``checkpoint_every`` epochs
            (``lopt_np.checkpoint``; cpu and reference backends); ``resume=True`` continues a
            checkpoint found there (same settings required) to the model an uninterrupted run
            reaches, bit-identical for a seed. ``checkpoint_meta``: JSON-able notes stored
            with it (the CLI keeps the data options there).
        **data_options
            :class:`~lopt_np.data.inputs.DataConfig`'s fields: ``user_col``, ``item_col``,
            ``time_col`` (None: no timestamps), ``min_count``, ``split``, ``split_seed``, ….

        Returns
        -------
        Model
            The kept epoch's embeddings and Λ, with the history, the Λ trajectory, why
            training stopped (``stop_reason``) and the split it made (``model.split``). Λ
            learns on the validation part; the epoch is selected on the validation, or on
            its held-out selection slice (``selection_frac``).
        """
        unknown = sorted(set(data_options) - set(DATA_FIELDS))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) of fit: {', '.join(unknown)}; the data "
                f"options are {', '.join(DATA_FIELDS)}"
            )
        if isinstance(data, Split) and data_options:
            raise ConfigError(
                f"{', '.join(sorted(data_options))} cannot change a prepared "
                f"Split; pass the raw data instead"
            )
        if time_budget is not None and not (
            isinstance(time_budget, (int, float))
            and not isinstance(time_budget, bool)
            and time_budget > 0
        ):
            raise ConfigError(
                f"time_budget must be a positive number of seconds, got {time_budget!r}"
            )
        if callbacks is None or callable(callbacks):
            callbacks = [] if callbacks is None else [callbacks]
        if not all(callable(fn) for fn in callbacks):
            raise ConfigError("callbacks must be callables fn(record, model)")
        split = to_split(data, DataConfig(**data_options))
        cfg = self.config
        seen = split.csr() if callbacks else None
        control = RunControl(
            callbacks,
            time_budget,
            lambda params, record: Model(
                *params,
                cfg.to_dict(),
                [],
                {},
                record["epoch"],
                split.user_ids,
                split.item_ids,
                *seen,
            ),
        )
        console = ConsoleProgress(cfg.epochs) if verbose else None
        checkpoints = resumed = None
        if checkpoint_dir is not None:
            if (
                isinstance(checkpoint_every, bool)
                or not isinstance(checkpoint_every, (int, np.integer))
                or checkpoint_every < 1
            ):
                raise ConfigError(
                    f"checkpoint_every must be a positive integer, got {checkpoint_every!r}"
                )
            if cfg.device not in ("cpu", "reference"):
                raise ConfigError(
                    f"checkpoints are written on the cpu and reference backends, not {cfg.device}"
                )
            checkpoints = Checkpoints(
                os.fspath(checkpoint_dir), int(checkpoint_every), checkpoint_meta or {}
            )
            if resume and has_checkpoint(checkpoints.folder):
                resumed = load_checkpoint(checkpoints.folder)
                check_same_run(
                    resumed[1], cfg.to_dict(), {**TrainConfig().to_dict(), **BEFORE_OPTION}
                )
        elif resume:
            raise ConfigError("resume=True needs the checkpoint_dir to resume from")
        return self._fit(
            split, cfg, Tee(progress, console, control), checkpoints=checkpoints, resume=resumed
        )

    def fit_final(
        self,
        model: Model,
        split: Split,
        progress: Optional[Progress] = None,
        epochs: Optional[int] = None,
        warm_start: bool = True,
        final_lambda: Optional[str] = None,
    ) -> Model:
        """A model for serving, trained on every interaction of ``split`` (train, validation
        and test), with no Λ step and no early stopping (nothing is held out). The result
        cannot be evaluated on ``split``'s test: it trained on it.

        Parameters
        ----------
        model : Model
            The model :meth:`fit` kept.
        split : Split
            The split it was fitted on (``model.split``).
        progress : Progress, optional
            Your own hooks, as in :meth:`fit`.
        epochs : int, optional
            Default: ``final_epochs`` (20) with ``warm_start``, else ``model.best_epoch``.
        warm_start : bool
            ``model``'s P and Q continue with a fresh optimizer state (default), or a fresh
            start.
        final_lambda : {"zero", "learned"}, optional
            The penalty of those epochs: none, or ``model``'s learned Λ held fixed (default:
            the config's, ``zero``). The defaults measured best on the latest interactions of
            ml-100k and ml-1m-u2999 (README, "The final fit").

        Returns
        -------
        Model
            The serving model, with its history.
        """
        final_lambda = final_lambda or self.config.final_lambda
        if final_lambda not in FINAL_LAMBDAS:
            raise ConfigError(
                f"final_lambda must be one of {', '.join(FINAL_LAMBDAS)}, got {final_lambda!r}"
            )
        if epochs is None:
            epochs = self.config.final_epochs if warm_start else model.best_epoch
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 1:
            raise ConfigError(f"the final fit needs a positive number of epochs, got {epochs!r}")
        cfg = dataclasses.replace(
            self.config,
            learn_lambda=False,
            epochs=int(epochs),
            patience=0,
            eval_every=0,
            selection_frac=0.0,
            final_lambda=final_lambda,
        )
        everything = dataclasses.replace(
            split,
            train=np.concatenate([split.train, split.valid, split.selection, split.test]),
            valid=EMPTY_PAIRS,
            test=EMPTY_PAIRS,
            selection=EMPTY_PAIRS,
            info={**split.info, "split": "every interaction in training (final fit)"},
        )
        lam = (model.lambda_P, model.lambda_Q)
        if final_lambda == "zero":
            lam = tuple(np.zeros_like(x) for x in lam)
        return self._fit(
            everything,
            cfg,
            Tee(progress),
            fixed_lambda=lam,
            start=(model.P, model.Q) if warm_start else None,
        )

    def _fit(
        self, split, cfg, progress, fixed_lambda=None, start=None, checkpoints=None, resume=None
    ):
        check_ks(cfg.watched_ks(), split.n_items)
        split = hold_out_selection(split, cfg.selection_frac)
        _, select_on = selection_target(split, "valid", cfg.selection_frac)
        if len(split.valid) == 0 and cfg.learn_lambda:
            raise ConfigError("λOpt needs validation interactions, and the split has none")
        numba.set_num_threads(thread_count(cfg.threads, split.n_users, split.n_items, cfg.dim))
        dtype = np.dtype(cfg.dtype)
        g = get_granularity(cfg.granularity)
        rng = np.random.default_rng(cfg.seed)
        P = rng.normal(0, cfg.init_std, (split.n_users, cfg.dim)).astype(dtype)
        Q = rng.normal(0, cfg.init_std, (split.n_items, cfg.dim)).astype(dtype)
        if start is not None:
            P, Q = (np.array(x, dtype=dtype) for x in start)
        lam_P, lam_Q = init_lambda(g, split.n_users, split.n_items, cfg.dim, cfg.lambda_init, dtype)
        if fixed_lambda is not None:
            lam_P[...] = fixed_lambda[0]
            lam_Q[...] = fixed_lambda[1]
        if len(split.train) == 0:
            raise DataError("the split has no training interactions")
        # batch sizes capped by the data: no buffer larger than what it can hold
        batch = min(cfg.batch_size, len(split.train))
        vbs = min(cfg.valid_batch_size or cfg.batch_size, max(1, len(split.valid)))
        backend = make_trainer_backend(cfg, P, Q, lam_P, lam_Q, batch, vbs)
        sampler = TripletSampler(split, cfg.seed)
        stream = BatchStream(sampler) if cfg.lookahead_batches == "stream" else None
        ufreq_group = group_of(split.user_frequency(), DEFAULT_GROUP_EDGES)
        ifreq_group = group_of(split.item_frequency(), DEFAULT_GROUP_EDGES)
        history, traj = [], {"user_lambda": [], "item_lambda": []}
        lambda_means = LambdaMeans(backend)
        best, best_epoch, best_params, bad_epochs = -np.inf, 0, None, 0
        step, stop_reason, first_loss, start_epoch = 0, "", None, 1
        if resume is not None:  # continue from a checkpoint (end of an epoch)
            arrays, meta = resume
            backend.load_checkpoint_state(
                {k[len("backend.") :]: v for k, v in arrays.items() if k.startswith("backend.")}
            )
            history = meta["history"]
            traj = {
                "user_lambda": list(arrays["traj.user"]),
                "item_lambda": list(arrays["traj.item"]),
            }
            best = -np.inf if meta["best"] is None else meta["best"]
            best_epoch, bad_epochs = meta["best_epoch"], meta["bad_epochs"]
            if "best.P" in arrays:
                best_params = tuple(arrays[f"best.{k}"] for k in ("P", "Q", "lam_P", "lam_Q"))
            step, first_loss, start_epoch = meta["step"], meta["first_loss"], meta["epoch"] + 1
            if stream is not None:
                stream.restore(meta["stream_passes"], meta["stream_pos"])
            P, Q, lam_P, lam_Q = backend.parameters()
        for epoch in range(start_epoch, cfg.epochs + 1):
            t0 = time.perf_counter()
            batches = EpochBatches(sampler, cfg, epoch, stream, backend.learn_lambda, vbs)
            n_steps = batches.n_steps
            progress.epoch_start(epoch, n_steps)
            tl_sum = vl_sum = 0.0
            vl_count = 0
            steps_done = n_steps
            for s in range(n_steps):
                stop_reason = progress.stop_now()
                if stop_reason:  # an interruption: stop at this step boundary
                    steps_done = s
                    break
                draw = functools.partial(batches.draw, s)
                tl, vl = lambda_opt_iteration(backend, cfg, step, draw)
                step += 1
                if first_loss is None:
                    first_loss = max(tl, math.log(2.0))
                if vl is not None:
                    if not math.isfinite(vl):
                        raise TrainingDivergedError(
                            f"the validation loss became {vl} at step {step} (epoch {epoch}); "
                            f"lower lr or lambda_lr, or set lambda_clip"
                        )
                    vl_sum += vl
                    vl_count += 1
                if not math.isfinite(tl):
                    raise TrainingDivergedError(
                        f"the training loss became {tl} at step {step} (epoch {epoch}); "
                        f"lower lr or lambda_lr, or set lambda_clip"
                    )
                tl_sum += tl
                if s % 20 == 0 or s == n_steps - 1:
                    progress.step(
                        s + 1,
                        tl_sum / (s + 1),
                        vl_sum / vl_count if vl_count else None,
                        lambda_means(final=s == n_steps - 1),
                    )
            if not backend.all_finite():
                raise TrainingDivergedError(
                    f"NaN or inf in the parameters, optimizer state or Λ after step {step} "
                    f"(epoch {epoch}); lower lr or lambda_lr, or set lambda_clip"
                )
            P, Q, lam_P, lam_Q = backend.parameters()
            if stop_reason and steps_done == 0:
                break  # interrupted before this epoch's first step
            check_divergence(tl_sum / steps_done, first_loss, P, Q, step, epoch)
            record = {
                "epoch": epoch,
                "step": step,
                "train_loss": tl_sum / steps_done,
                "lookahead_valid_loss": vl_sum / vl_count if vl_count else None,
                "mean_lambda_P": float(lam_P.mean()),
                "mean_lambda_Q": float(lam_Q.mean()),
                "train_seconds": time.perf_counter() - t0,
            }
            traj["user_lambda"].append(lambda_per_row(lam_P, split.n_users).astype(np.float32))
            traj["item_lambda"].append(lambda_per_row(lam_Q, split.n_items).astype(np.float32))
            if stop_reason:  # a partial epoch: not evaluated, not selected
                record["interrupted_after_steps"] = steps_done
                history.append(record)
                progress.epoch_parameters(P, Q, lam_P, lam_Q)
                progress.epoch_end(record)
                break
            if cfg.eval_every and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs):
                t1 = time.perf_counter()
                res = evaluate(
                    P, Q, split, select_on, cfg.watched_ks(), device=evaluation_device(cfg.device)
                )
                record["valid"] = res["metrics"]
                record["eval_seconds"] = time.perf_counter() - t1
                score = res["metrics"][cfg.early_stopping]
                if score > best:
                    best, best_epoch, bad_epochs = score, epoch, 0
                    best_params = (P, Q, lam_P, lam_Q)
                else:
                    bad_epochs += 1
            history.append(record)
            progress.epoch_parameters(P, Q, lam_P, lam_Q)
            progress.epoch_end(record)
            if checkpoints is not None and epoch % checkpoints.every == 0:
                checkpoints.save(
                    backend,
                    cfg,
                    history,
                    traj,
                    epoch,
                    step,
                    first_loss,
                    best,
                    best_epoch,
                    bad_epochs,
                    best_params,
                    stream,
                )
            if cfg.patience and bad_epochs >= cfg.patience:
                stop_reason = f"{cfg.patience} epochs without improvement"
                break
            stop_reason = progress.stop()
            if stop_reason:
                break
        if not history:
            raise TrainingInterrupted(f"{stop_reason} before the first training step")
        if best_params is None or not cfg.patience:
            best_params, best_epoch = (P, Q, lam_P, lam_Q), history[-1]["epoch"]
        trajectory = self._trajectory(traj, ufreq_group, ifreq_group, history)
        seen_indptr, seen_items = split.csr()
        return Model(
            *best_params,
            cfg.to_dict(),
            history,
            trajectory,
            best_epoch,
            split.user_ids,
            split.item_ids,
            seen_indptr,
            seen_items,
            stop_reason=stop_reason or "the last epoch",
            split=split,
        )

    @staticmethod
    def _trajectory(traj, ugroup, igroup, history):
        """Per-epoch Λ summaries per frequency group (Figure 7) and per row (Figure 8)."""
        out = {
            "epochs": np.array([h["epoch"] for h in history]),
            "group_edges": np.array(DEFAULT_GROUP_EDGES),
        }
        for who, groups in (("user", ugroup), ("item", igroup)):
            per_row = np.stack(traj[f"{who}_lambda"])  # epochs × rows
            out[f"{who}_lambda"] = per_row
            n_groups = len(DEFAULT_GROUP_EDGES)
            mean = np.full((len(per_row), n_groups), np.nan)
            std = np.full_like(mean, np.nan)
            for g in range(n_groups):
                sel = groups == g
                if sel.any():
                    mean[:, g] = per_row[:, sel].mean(axis=1)
                    std[:, g] = per_row[:, sel].std(axis=1)
            out[f"{who}_group_mean"] = mean
            out[f"{who}_group_std"] = std
            out[f"{who}_group_count"] = np.bincount(groups, minlength=n_groups)
        return out
