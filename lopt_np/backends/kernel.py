"""What the compiled backends (``cpu``, ``cuda``) share, which is everything but memory: the
tables and learned Λ blocks (allocated by the backend's ``to_device``), which table's gradient
feeds which block, and the one driver of SPEC §5's steps. The driver calls the backend's kernel
modules by the same names on both (``kernels.cpu.step``/``kernels.cuda.step`` for steps 1-4 and
the real step, ``kernels.*.lambda_update`` for step 5); a backend adds allocation and a device
adapter (``_work``, ``_to_host``, ``mean_lambda``).
"""

import math

import numpy as np

from ..errors import ConfigError
from ..math.granularity import learned_blocks
from ..kernels.groups import DeviceTableArrays, LambdaGrads, LookaheadRule, StepScalars, TableArrays
from ..math.lambda_update import clip_scale, lambda_rule
from .base import Backend


class Table:
    """One embedding table with its optimizer state and the step buffers of its held rows
    (``arrays``: :class:`~lopt_np.kernels.groups.TableArrays`, or ``DeviceTableArrays`` with
    ``host_maps``), in the memory ``to_device`` puts arrays in."""

    def __init__(self, T, lam, capacity, to_device, host_maps=False):
        n, K = T.shape
        f = T.dtype
        self.to_device = to_device
        self.capacity = capacity
        self.n_held = 0
        fields = dict(
            T=to_device(T),
            m=to_device(np.zeros_like(T)),
            v=to_device(np.zeros_like(T)),
            lam=lam,
            identity=to_device(np.arange(n, dtype=np.int64)),  # slot map of the whole table
            slot=to_device(np.full(n, -1, np.int64)),  # slot map of the held rows
            held=to_device(np.zeros(capacity, np.int64)),
            buf=to_device(np.zeros((2, capacity, K), f)),  # [g or ḡ, G_Θ̄] on held rows
            count=to_device(np.zeros(capacity, np.int64)),  # occurrences in B or B̄
            scratch_count=to_device(np.zeros(capacity, np.int64)),  # occurrences in V
            Tbar=to_device(np.zeros((capacity, K), f)),
            dTbar_dlam=to_device(np.zeros((capacity, K), f)),
        )
        if host_maps:
            fields.update(
                host_slot=np.full(n, -1, np.int64), host_held=np.zeros(capacity, np.int64)
            )
            self.arrays = DeviceTableArrays(**fields)
        else:
            self.arrays = TableArrays(**fields)

    def assumed_arrays(self):
        """:attr:`arrays` with a second slot map, reverse map, gradient buffer and counts, for
        B̄'s rows while V's rows are still held (``shared_assumed_state``); allocated on first
        use."""
        if not hasattr(self, "_assumed_arrays"):
            n, K = self.arrays.T.shape
            f = self.arrays.T.dtype
            self._assumed_arrays = self.arrays._replace(
                slot=self.to_device(np.full(n, -1, np.int64)),
                held=self.to_device(np.zeros(self.capacity, np.int64)),
                buf=self.to_device(np.zeros((1, self.capacity, K), f)),
                count=self.to_device(np.zeros(self.capacity, np.int64)),
            )
        return self._assumed_arrays


class LambdaBlock:
    """One learned Λ array, its optimizer state (m, v, v̂) and its compact gradient G.

    A per-row Λ's G is indexed like its table's held rows (``G[s]`` belongs to row
    ``table.held[s]``; SPEC §5.4); a Λ shared by all rows has one row and ``slot = held = [0]``.
    """

    def __init__(self, lam, table, owners, zeros):
        self.lam = lam
        self.table = table  # the table whose held rows index G (per-row Λ), or None
        self.tables = owners  # every table this Λ regularizes (both when tied)
        rows = table.capacity if table is not None else 1
        self.G = zeros((rows, lam.shape[1]), lam.dtype)
        self.m, self.v, self.vmax = (zeros(lam.shape, lam.dtype) for _ in range(3))
        self.shared_slot = zeros((1,), np.int64)

    def slot_held(self):
        """``(slot, held, n_held)`` of G's rows."""
        if self.table is not None:
            return self.table.arrays.slot, self.table.arrays.held, self.table.n_held
        return self.shared_slot, self.shared_slot, 1


class KernelBackend(Backend):
    """A backend whose tables ``tP``/``tQ`` (:class:`Table`) and Λ blocks live in its own
    memory and whose kernels come from ``step_kernels`` (``kernels.cpu.step`` or
    ``kernels.cuda.step``) and ``lambda_kernels`` (``kernels.cpu.lambda_update`` or
    ``kernels.cuda.lambda_update``). A subclass calls :meth:`_allocate` and supplies
    :meth:`_work` (its step scratch)."""

    step_kernels = None
    lambda_kernels = None

    def _allocate(self, P, Q, lam_P, lam_Q, rows, to_device, host_maps=False):
        """Tables (capacity: ``rows`` held rows in P, twice that in Q), Λ (tied: one array) and
        the learned Λ blocks, all put where ``to_device`` puts arrays."""
        if self.lookahead.shared_state and not hasattr(
            self.step_kernels, "absorb_assumed_gradient"
        ):
            raise ConfigError(f"shared_assumed_state is not implemented on {type(self).__name__}")
        f = self.dtype
        host_lam_P = np.ascontiguousarray(lam_P, dtype=f)
        tied = self.granularity.tied
        host_lam_Q = host_lam_P if tied else np.ascontiguousarray(lam_Q, dtype=f)
        self.lam_P = to_device(host_lam_P)
        self.lam_Q = self.lam_P if tied else to_device(host_lam_Q)
        self.tP = Table(
            np.ascontiguousarray(P, dtype=f),
            self.lam_P,
            min(P.shape[0], rows),
            to_device,
            host_maps,
        )
        self.tQ = Table(
            np.ascontiguousarray(Q, dtype=f),
            self.lam_Q,
            min(Q.shape[0], 2 * rows),
            to_device,
            host_maps,
        )
        device_of = {id(host_lam_P): self.lam_P, id(host_lam_Q): self.lam_Q}
        learned = learned_blocks(self.granularity, host_lam_P, host_lam_Q)
        zeros = lambda shape, dtype: to_device(np.zeros(shape, dtype))  # noqa: E731
        self._build_lambda_blocks(
            [device_of[id(h)] for h in learned] if self.learn_lambda else [], zeros
        )
        no_G = zeros((1, 1), f)  # stands for the G of a table whose Λ is not learned
        G_P, G_Q = (
            self.block_of[id(t)].G if id(t) in self.block_of else no_G for t in (self.tP, self.tQ)
        )
        self.lambda_grads = LambdaGrads(
            G_P,
            G_Q,
            G_P is not no_G,
            G_Q is not no_G,
            G_P is G_Q,
            math.isfinite(self.lambda_opt.clip),
        )
        self._layouts = tuple(
            (lam.shape[0] > 1, lam.shape[1] > 1) for lam in (self.lam_P, self.lam_Q)
        )
        rule = self.lookahead
        self._rule = LookaheadRule(rule.scope == "full", rule.assumed_penalty, self.code)

    def _build_lambda_blocks(self, learned, zeros):
        """One :class:`LambdaBlock` per learned Λ array (in the backend's memory), and
        ``self.block_of``: table → the block its Λ gradient accumulates into."""
        self.blocks = []
        for lam in learned:
            owners = [t for t in (self.tP, self.tQ) if t.arrays.lam is lam]
            per_row = lam.shape[0] > 1
            self.blocks.append(LambdaBlock(lam, owners[0] if per_row else None, owners, zeros))
        self.block_of = {id(t): b for b in self.blocks for t in b.tables}

    def _work(self):
        """The step scratch ``work`` of the backend's step kernels."""
        raise NotImplementedError

    def _step_scalars(self, alpha, eps_in, eps_out):
        """The :class:`~lopt_np.kernels.groups.StepScalars` of one Θ step (real or assumed)."""
        return StepScalars(alpha, self._lr, *self._betas, eps_in, eps_out)

    # SPEC §5 steps 1-5 -------------------------------------------------------------------
    def lambda_step(self, train_batch, valid_batch):
        k, tP, tQ = self.step_kernels, self.tP, self.tQ
        step = self._step_scalars(*self._lookahead_scalars())
        # 1-4. ḡ on B̄, the assumed step Θ̄ and ∂Θ̄/∂Λ on V's rows, L_val(Θ̄), G_Θ̄, G_Λ
        val_loss, sq_norm, tP.n_held, tQ.n_held = k.lookahead_step(
            tP.arrays,
            tQ.arrays,
            train_batch,
            valid_batch,
            self.lambda_grads,
            *self._layouts,
            self._rule,
            step,
            self._work(),
        )
        if self.lookahead.shared_state:  # ḡ at the Λ of the assumed step, before step 5
            k.absorb_assumed_gradient(
                tP.assumed_arrays(),
                tQ.assumed_arrays(),
                train_batch,
                *self._layouts,
                self.lookahead.assumed_penalty,
                step,
                self._work(),
            )
            self.t += 1
        # 5. clip, Λ-optimizer step, projection (on V's rows, still held)
        self._update_lambda(math.sqrt(sq_norm) if self.lambda_grads.norm else None)
        for t in (tP, tQ):
            k.release_rows(t.arrays.slot, t.arrays.held, t.n_held)
            t.n_held = 0
        return float(val_loss)

    # the real step ------------------------------------------------------------------------
    def theta_step(self, train_batch):
        self.t += 1
        o = self.theta_opt
        step = self._step_scalars(*self._adam_scalars(o, self.t, o.eps_placement))
        fit_loss = self.step_kernels.theta_step[self.code](
            self.tP.arrays,
            self.tQ.arrays,
            train_batch,
            *self._layouts,
            self.scope == "full",
            step,
            self._work(),
        )
        return float(fit_loss)

    def _update_lambda(self, norm):
        """SPEC §5 step 5 on every block: G scaled by ``clip_scale(norm)`` (``norm`` of all
        blocks' G together, None without a clip), one SGD/Adam/AMSGrad step on the rows
        ``lambda_opt.rows`` names, projection onto Λ ≥ 0."""
        f = self.dtype.type
        lo = self.lambda_opt
        rule = lambda_rule(lo.name)
        k = self.lambda_kernels
        scale = f(1.0) if norm is None else f(clip_scale(norm, lo.clip))
        self.lambda_t += 1
        alpha, eps_in, eps_out = self._adam_scalars(lo, self.lambda_t, lo.eps_placement)
        adam = (
            alpha,
            *self._lambda_betas,
            eps_in,
            eps_out,
            rule.amsgrad,
            lo.rows == "batch",
        )
        for b in self.blocks:
            slot, held, n = b.slot_held()
            if not rule.moments:
                k.lambda_sgd_update(b.lam, held, n, b.G, scale, f(lo.lr))
            else:
                k.lambda_adam_update(b.lam, slot, held, n, b.G, b.m, b.v, b.vmax, scale, *adam)

    def _to_host(self, a):
        """A host copy of one of the backend's arrays."""
        return np.array(a)

    def parameters(self):
        return tuple(
            self._to_host(a) for a in (self.tP.arrays.T, self.tQ.arrays.T, self.lam_P, self.lam_Q)
        )

    def all_finite(self):
        arrays = [getattr(t.arrays, name) for name in ("T", "m", "v") for t in (self.tP, self.tQ)]
        return all(np.isfinite(self._to_host(a)).all() for a in arrays + [self.lam_P, self.lam_Q])
