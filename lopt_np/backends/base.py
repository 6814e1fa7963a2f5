"""The interface every backend implements, and what they share (settings, Λ layout)."""

import numpy as np

from ..errors import ConfigError
from ..math.granularity import get_granularity, learned_blocks
from ..kernels import OPTIMIZER_CODES
from ..math.hypergradient import LOOKAHEAD_COUNTS, Lookahead, ThetaOptimizer
from ..math.lambda_update import LAMBDA_OPTIMIZERS, LAMBDA_ROWS, LambdaOptimizer
from ..math.optimizers import EPS_PLACEMENTS, THETA_OPTIMIZERS, adam_eps_terms, adam_step_size
from ..math.penalty import SCOPES


def check_settings(theta_opt, lambda_opt, scope, lookahead):
    """Every name a backend dispatches on must be one of its registry's (``THETA_OPTIMIZERS``,
    ``LAMBDA_OPTIMIZERS``, …): an unknown one is a :class:`ConfigError` naming the choices, on
    every backend alike, never a fallback to another optimizer."""
    for what, value, allowed in (
        ("optimizer", theta_opt.name, THETA_OPTIMIZERS),
        ("eps_placement", theta_opt.eps_placement, EPS_PLACEMENTS),
        ("lambda_optimizer", lambda_opt.name, LAMBDA_OPTIMIZERS),
        ("lambda_eps_placement", lambda_opt.eps_placement, EPS_PLACEMENTS),
        ("lambda_rows", lambda_opt.rows, LAMBDA_ROWS),
        ("scope", scope, SCOPES),
        ("lookahead scope", lookahead.scope, SCOPES),
        ("lookahead eps_placement", lookahead.eps_placement, EPS_PLACEMENTS),
        ("lookahead_count", lookahead.count, LOOKAHEAD_COUNTS),
    ):
        if value not in allowed:
            raise ConfigError(f"unknown {what} {value!r}; expected one of {', '.join(allowed)}")


class Backend:
    """One λOpt run's numerical state and its two steps (SPEC §5).

    ``lambda_step(train_batch, valid_batch)`` performs SPEC §5 steps 1-5 (lookahead on a
    training batch B̄, validation loss at Θ̄, G_Λ, clipped Λ-optimizer step, projection) and
    returns L_val(Θ̄). ``theta_step(train_batch)`` performs the real update of Θ with the current
    Λ and returns L_fit. Batches are ``(users, pos, neg)`` int32 arrays sampled on the host.
    ``lookahead`` says how Θ̄ is built (SPEC §8 variants; default: SPEC §5, the real step's scope
    and ε placement).
    """

    def __init__(
        self,
        P,
        Q,
        lam_P,
        lam_Q,
        granularity,
        theta_opt: ThetaOptimizer,
        lambda_opt: LambdaOptimizer,
        scope="batch",
        learn_lambda=True,
        lookahead: Lookahead = None,
    ):
        self.granularity = get_granularity(granularity)
        self.theta_opt = theta_opt
        self.lambda_opt = lambda_opt
        self.scope = scope
        self.lookahead = lookahead or Lookahead(scope=scope, eps_placement=theta_opt.eps_placement)
        check_settings(theta_opt, lambda_opt, scope, self.lookahead)
        self.learn_lambda = learn_lambda and bool(learned_blocks(self.granularity, lam_P, lam_Q))
        self.dtype = np.dtype(P.dtype)
        self.t = 0  # Θ updates done
        self.lambda_t = 0  # Λ updates done
        # the optimizers' scalars in the tables' dtype (a float32 kernel stays in float32)
        f = self.dtype.type
        o, lo = theta_opt, lambda_opt
        self.code = OPTIMIZER_CODES[o.name]
        self._lr = f(o.lr)
        self._betas = (f(o.beta1), f(o.beta2), f(1.0 - o.beta1), f(1.0 - o.beta2))
        self._lambda_betas = (f(lo.beta1), f(lo.beta2), f(1.0 - lo.beta1), f(1.0 - lo.beta2))

    def _adam_scalars(self, opt, t, eps_placement):
        """``(α_t, ε_in, ε_out)`` of update index ``t`` of the Adam-type optimizer ``opt`` (Θ's
        or Λ's), in the tables' dtype (``math.optimizers.adam_eps_terms``)."""
        f = self.dtype.type
        eps_in, eps_out = adam_eps_terms(opt.eps, eps_placement, opt.beta2, t)
        return f(adam_step_size(opt.lr, opt.beta1, opt.beta2, t)), f(eps_in), f(eps_out)

    def _lookahead_scalars(self):
        """``(α, ε_in, ε_out)`` of the lookahead's Adam step (SPEC §8: its own count and ε)."""
        rule = self.lookahead
        t = rule.step_count(self.t)
        if t < 1:
            raise ConfigError(
                "lookahead_count 'current' uses t = real steps done, which is 0 "
                "before the first real step: set lambda_warmup_steps ≥ 1"
            )
        return self._adam_scalars(self.theta_opt, t, rule.eps_placement)

    def lambda_step(self, train_batch, valid_batch):
        raise NotImplementedError

    def theta_step(self, train_batch):
        raise NotImplementedError

    def parameters(self):
        """Host copies ``(P, Q, Λ^P, Λ^Q)``."""
        raise NotImplementedError

    def mean_lambda(self):
        """``(mean Λ^P, mean Λ^Q)`` for progress reports."""
        _, _, lam_P, lam_Q = self.parameters()
        return float(lam_P.mean()), float(lam_Q.mean())

    def all_finite(self):
        """True when Θ, its optimizer state and Λ hold no NaN/inf."""
        raise NotImplementedError

    def state_arrays(self):
        """The live arrays the next step depends on (Θ, Λ, every optimizer moment), by name;
        each backend with checkpoints names its own."""
        raise ConfigError(
            f"checkpoints are written on the cpu and reference backends, not {type(self).__name__}"
        )

    def checkpoint_state(self):
        """:meth:`state_arrays` as host copies, with the update counters (a checkpoint;
        :meth:`load_checkpoint_state` puts it back)."""
        return {
            **{k: np.array(a) for k, a in self.state_arrays().items()},
            "t": np.int64(self.t),
            "lambda_t": np.int64(self.lambda_t),
        }

    def load_checkpoint_state(self, state):
        """Copy a checkpoint into the live arrays, in place (the kernels hold them)."""
        for name, live in self.state_arrays().items():
            restore(live, state[name], name)
        self.t, self.lambda_t = int(state["t"]), int(state["lambda_t"])


def restore(target, source, name):
    """Copy a checkpointed array into the live one, in place, after checking its shape."""
    source = np.asarray(source)
    if source.shape != target.shape:
        raise ConfigError(
            f"the checkpoint's {name} has shape {source.shape}, the run's "
            f"{target.shape}: it is not this run's checkpoint"
        )
    target[...] = source
