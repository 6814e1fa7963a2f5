"""The paper's baselines beyond MF-λFix (§5.1.3), trained on the same triplets and evaluated
with the same protocol (SPEC §7):

- **SGDA** is λOpt with granularity ``D`` and the SGD optimizer: :func:`sgda_params` gives
  its :class:`~lopt_np.trainer.LambdaOpt` settings (the engine's kernels and derivatives).
- **AMF** (APR, ``math.apr``) continues from a converged MF-λFix model with adversarial
  perturbations on the embeddings.
- **NeuMF** (``math.neumf``) adds an MLP tower to a GMF tower pre-trained from MF-λFix.

AMF and NeuMF run on the NumPy reference layer (no compiled kernels): their wall times are
those of plain NumPy, not of the engine. Both use dense Adam (Eq. 12-14 as in SPEC §4) and the
fixed λ of the selected MF-λFix model on the embedding rows of each batch (SPEC §3, ``batch``
scope), the same MF configuration as the other rows of Table 2.
"""

import dataclasses
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, TrainingDivergedError
from ..evaluation import DEFAULT_KS, evaluate, evaluate_scores
from ..math.apr import apr_grad
from ..math.bpr import bpr_loss
from ..math.neumf import EMBEDDINGS, init_neumf, neumf_bpr_grad, neumf_score_matrix
from ..math.optimizers import adam_step
from ..math.penalty import batch_row_weights, penalty_grad
from ..sampling import TripletSampler
from ..settings import check_declared, setting


def sgda_params(params, lr=None):
    """SGDA as the paper re-derives it: λOpt-D with SGD for MF (``lr``: SGD's step size)."""
    out = {**params, "granularity": "D", "optimizer": "sgd", "learn_lambda": True}
    if lr is not None:
        out["lr"] = lr
    return out


AMF_EPS_GRID = (0.05, 0.2, 0.5)  # the AMF ε values lopt reproduce tries (best by validation)


@dataclass
class BaselineConfig:
    """Settings shared by AMF and NeuMF (the model-specific ones are ignored by the other)."""

    lam: float = setting(0.0, "Fixed L2 coefficient on the batch's embedding rows.", low=0)
    lr: float = setting(1e-3, "Adam learning rate of AMF and NeuMF.", low=0, low_open=True)
    beta1: float = setting(0.9, "Adam β1 of AMF and NeuMF.", low=0, high=1, high_open=True)
    beta2: float = setting(0.999, "Adam β2 of AMF and NeuMF.", low=0, high=1, high_open=True)
    eps: float = setting(1e-8, "Adam ε of AMF and NeuMF.", low=0, low_open=True)
    batch_size: int = setting(1024, "Training triplets per step.", low=1)
    epochs: int = setting(30, "Epochs of AMF and NeuMF after MF-λFix.", low=1)
    seed: int = setting(0, "Seed of the initialization and the sampling.", low=0)
    patience: int = setting(5, "Early-stopping patience of AMF and NeuMF (0: off).", low=0)
    early_stopping: str = setting("hr@100", "Validation metric for early stopping.")
    ks: tuple = setting(DEFAULT_KS, "Cut-offs K of HR@K and NDCG@K.")
    adv_eps: float = setting(
        0.5, "AMF: the norm ε of each row's adversarial perturbation.", low=0, low_open=True
    )
    reg_adv: float = setting(1.0, "AMF: weight γ of the adversarial BPR loss.", low=0)
    mlp_dim: int = setting(32, "NeuMF: width of the MLP tower's embeddings.", low=1)
    layers: tuple = setting((64, 32, 16), "NeuMF: hidden widths of the MLP tower.")

    def validate(self):
        """Each field against its declaration (``settings.check_declared``), then the tower."""
        check_declared(self)
        if not self.layers or min(self.layers) < 1:
            raise ConfigError(f"layers must be one or more positive widths, got {self.layers!r}")
        return self

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["ks"], d["layers"] = list(self.ks), list(self.layers)
        return d


@dataclass
class BaselineModel:
    """A trained AMF or NeuMF: parameters (plain arrays), history, kept epoch, config."""

    name: str
    params: dict
    history: list
    best_epoch: int
    config: dict

    def evaluate(self, split, target="test", ks=None):
        """SPEC §7 metrics: AMF is MF (``evaluation.evaluate``); NeuMF scores blocks of 128
        users (it holds users × items × width activations)."""
        ks = ks or self.config["ks"]
        if self.name == "NeuMF":
            return evaluate_scores(
                lambda users: neumf_score_matrix(self.params, users),
                split,
                target,
                ks,
                block_size=128,
            )
        return evaluate(self.params["P"], self.params["Q"], split, target, ks)


def fit_amf(split, P, Q, config=None, progress=None):
    """AMF: adversarial training (``math.apr``) started from MF-λFix's ``P``, ``Q``."""
    cfg = (config or BaselineConfig()).validate()

    def grad(params, users, pos, neg):
        loss = bpr_loss(params["P"], params["Q"], users, pos, neg)
        gP, gQ, _, _ = apr_grad(params["P"], params["Q"], users, pos, neg, cfg.adv_eps, cfg.reg_adv)
        return loss, {"P": gP, "Q": gQ}

    params = {"P": np.array(P, np.float32), "Q": np.array(Q, np.float32)}
    return _fit("AMF", params, {"P": "user", "Q": "item"}, grad, split, cfg, progress)


def fit_neumf(split, P, Q, config=None, progress=None):
    """NeuMF with its GMF tower pre-trained from MF-λFix's ``P``, ``Q`` (``math.neumf``)."""
    cfg = (config or BaselineConfig()).validate()
    rng = np.random.default_rng(cfg.seed)
    params = init_neumf(P, Q, cfg.mlp_dim, tuple(cfg.layers), rng)
    return _fit("NeuMF", params, EMBEDDINGS, neumf_bpr_grad, split, cfg, progress)


def _fit(name, params, embeddings, grad, split, cfg, progress):
    """Dense Adam on ``grad``'s loss plus λ‖·‖² on the batch's rows of the ``embeddings``
    tables; validation every epoch; keeps the best epoch when ``patience`` is set."""
    sampler = TripletSampler(split, cfg.seed)
    state = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    model = BaselineModel(name, params, [], 0, cfg.to_dict())
    best, best_params, bad, t = -np.inf, None, 0, 0
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        train = sampler.train_triplets(epoch)
        n = len(train.users)
        loss_sum, n_steps = 0.0, -(-n // cfg.batch_size)
        for s in range(n_steps):
            users, pos, neg = train.batch(s * cfg.batch_size, (s + 1) * cfg.batch_size)
            loss, grads = grad(params, users, pos, neg)
            if cfg.lam:
                wP, wQ = batch_row_weights(users, pos, neg, split.n_users, split.n_items, "batch")
                for k, who in embeddings.items():
                    grads[k] += penalty_grad(wP if who == "user" else wQ, cfg.lam, params[k])
            t += 1
            for k, theta in params.items():
                m, v = state[k]
                theta[...], m[...], v[...] = adam_step(
                    theta, m, v, t, grads[k], cfg.lr, cfg.beta1, cfg.beta2, cfg.eps
                )
            loss_sum += loss
        if not all(np.isfinite(v).all() for v in params.values()):
            raise TrainingDivergedError(
                f"{name}: NaN or inf in the parameters at epoch {epoch}; lower lr"
            )
        record = {
            "epoch": epoch,
            "train_loss": loss_sum / n_steps,
            "train_seconds": time.perf_counter() - t0,
        }
        t1 = time.perf_counter()
        record["valid"] = model.evaluate(split, "valid")["metrics"]
        record["eval_seconds"] = time.perf_counter() - t1
        model.history.append(record)
        score = record["valid"][cfg.early_stopping]
        if score > best:
            best, model.best_epoch, bad = score, epoch, 0
            best_params = {k: v.copy() for k, v in params.items()}
        else:
            bad += 1
        if progress:
            progress(name, record)
        if cfg.patience and bad >= cfg.patience:
            break
    if cfg.patience:
        model.params = best_params
    else:
        model.best_epoch = model.history[-1]["epoch"]
    return model
