"""What the compiled backends (``cpu``, ``cuda``) share: the learned Λ blocks with their
optimizer state and compact gradients, which table's gradient feeds which block, and SPEC §5
step 5 (clip, Λ-optimizer step, projection) over them. Each backend supplies its tables, an
allocator and its kernel module; the update runs the same kernels by the same names on both.
"""

import numpy as np

from ..math.lambda_update import clip_scale
from .base import Backend


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
            return self.table.slot, self.table.held, self.table.n_held
        return self.shared_slot, self.shared_slot, 1


class KernelBackend(Backend):
    """A backend whose tables ``tP``/``tQ`` (``T``, ``m``, ``v``, ``lam``, ``slot``, ``held``,
    ``n_held``, ``capacity``) live in its own memory and whose kernels come from
    ``lambda_kernels`` (``kernels.cpu.lambda_update`` or ``kernels.cuda.lambda_update``)."""

    lambda_kernels = None

    def _build_lambda_blocks(self, learned, zeros):
        """One :class:`LambdaBlock` per learned Λ array (in the backend's memory), and
        ``self.block_of``: table → the block its Λ gradient accumulates into."""
        self.blocks = []
        for lam in learned:
            owners = [t for t in (self.tP, self.tQ) if t.lam is lam]
            per_row = lam.shape[0] > 1
            self.blocks.append(LambdaBlock(lam, owners[0] if per_row else None, owners, zeros))
        self.block_of = {id(t): b for b in self.blocks for t in b.tables}

    def _update_lambda(self, norm):
        """SPEC §5 step 5 on every block: G scaled by ``clip_scale(norm)`` (``norm`` of all
        blocks' G together, None without a clip), one SGD/Adam/AMSGrad step on the rows
        ``lambda_opt.rows`` names, projection onto Λ ≥ 0."""
        f = self.dtype.type
        lo = self.lambda_opt
        k = self.lambda_kernels
        scale = f(1.0) if norm is None else f(clip_scale(norm, lo.clip))
        self.lambda_t += 1
        alpha, eps_in, eps_out = self._adam_scalars(lo, self.lambda_t, lo.eps_placement)
        adam = (
            alpha,
            *self._lambda_betas,
            eps_in,
            eps_out,
            lo.name == "amsgrad",
            lo.rows == "batch",
        )
        for b in self.blocks:
            slot, held, n = b.slot_held()
            if lo.name == "sgd":
                k.lambda_sgd_update(b.lam, held, n, b.G, scale, f(lo.lr))
            else:  # Adam or AMSGrad (base.check_settings)
                k.lambda_adam_update(b.lam, slot, b.G, b.m, b.v, b.vmax, scale, *adam)

    def _to_host(self, a):
        """A host copy of one of the backend's arrays."""
        return np.array(a)

    def parameters(self):
        return tuple(self._to_host(a) for a in (self.tP.T, self.tQ.T, self.tP.lam, self.tQ.lam))

    def all_finite(self):
        arrays = [
            self.tP.T,
            self.tQ.T,
            self.tP.m,
            self.tQ.m,
            self.tP.v,
            self.tQ.v,
            self.tP.lam,
            self.tQ.lam,
        ]
        return all(np.isfinite(self._to_host(a)).all() for a in arrays)
