"""The reference backend: SPEC §5 composed directly from ``lopt_np.math`` (dense, slow)."""

import numpy as np

from ..math.granularity import learned_blocks, replace_blocks
from ..math.hypergradient import (
    OptimizerState,
    absorb_assumed_gradient,
    lambda_hypergradient,
    real_step,
)
from ..math.lambda_update import init_lambda_optimizer_state, lambda_step, validation_rows
from .base import Backend


class ReferenceBackend(Backend):
    def __init__(self, P, Q, lam_P, lam_Q, *args, max_batch=None, max_valid_batch=None, **kwargs):
        super().__init__(P, Q, lam_P, lam_Q, *args, **kwargs)
        self.P, self.Q = P.copy(), Q.copy()
        self.lam_P = lam_P.copy()
        self.lam_Q = self.lam_P if self.granularity.tied else lam_Q.copy()
        z = np.zeros_like
        self.state = OptimizerState(z(P), z(P), z(Q), z(Q), 0)
        self.lambda_state = init_lambda_optimizer_state(
            learned_blocks(self.granularity, self.lam_P, self.lam_Q)
        )

    def lambda_step(self, train_batch, valid_batch):
        loss, grads = lambda_hypergradient(
            self.granularity,
            self.P,
            self.Q,
            self.lam_P,
            self.lam_Q,
            self.state,
            self.theta_opt,
            train_batch,
            valid_batch,
            self.lookahead,
        )
        if self.lookahead.shared_state:  # ḡ at the Λ of the assumed step, before its update
            self.state = absorb_assumed_gradient(
                self.P,
                self.Q,
                self.lam_P,
                self.lam_Q,
                self.state,
                self.theta_opt,
                train_batch,
                self.lookahead,
            )
            self.t = self.state.t
        blocks = learned_blocks(self.granularity, self.lam_P, self.lam_Q)
        rows = (
            validation_rows(self.granularity, self.lam_P, self.lam_Q, valid_batch)
            if self.lambda_opt.rows == "batch"
            else None
        )
        blocks, self.lambda_state = lambda_step(
            blocks, grads, self.lambda_state, self.lambda_opt, rows
        )
        blocks = [b.astype(self.dtype) for b in blocks]
        self.lam_P, self.lam_Q = replace_blocks(self.granularity, self.lam_P, self.lam_Q, blocks)
        self.lambda_t = self.lambda_state["t"]
        return float(loss)

    def theta_step(self, train_batch):
        self.P, self.Q, self.state, loss = real_step(
            self.P,
            self.Q,
            self.lam_P,
            self.lam_Q,
            self.state,
            self.theta_opt,
            train_batch,
            self.scope,
        )
        self.P, self.Q = self.P.astype(self.dtype), self.Q.astype(self.dtype)
        self.t = self.state.t
        return float(loss)

    def parameters(self):
        return self.P.copy(), self.Q.copy(), self.lam_P.copy(), self.lam_Q.copy()

    def all_finite(self):
        arrays = [self.P, self.Q, self.lam_P, self.lam_Q, *self.state[:4]]
        return all(np.isfinite(a).all() for a in arrays)

    def state_arrays(self):
        out = {
            "P": self.P,
            "Q": self.Q,
            "lam_P": self.lam_P,
            "lam_Q": self.lam_Q,
            "mP": self.state.mP,
            "vP": self.state.vP,
            "mQ": self.state.mQ,
            "vQ": self.state.vQ,
        }
        for key in ("m", "v", "vmax"):
            for k, a in enumerate(self.lambda_state[key]):
                out[f"lambda{k}_{key}"] = a
        return out

    def load_checkpoint_state(self, state):
        super().load_checkpoint_state(state)
        self.state = self.state._replace(t=self.t)  # the counters the math layer reads
        self.lambda_state["t"] = self.lambda_t
