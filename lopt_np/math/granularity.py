"""Which indices Λ carries for each granularity (SPEC §3 table).

Λ^T for table T ∈ {P, Q} is a 2-D array of shape ``(n_T or 1, K or 1)`` broadcast to T's shape.
A *tied* granularity (``global``, ``D``) uses one array for both tables. A table whose Λ is not
learned (Q under ``U``, P under ``I``) keeps the scalar ``lambda_init`` for the whole run.
"""

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError


@dataclass(frozen=True)
class TableLayout:
    per_row: bool  # Λ varies with the user (for P) or the item (for Q)
    per_dim: bool  # Λ varies with the latent dimension k
    learned: bool  # Λ is updated by λOpt (else fixed at lambda_init)

    def shape(self, n_rows, dim):
        return (n_rows if self.per_row else 1, dim if self.per_dim else 1)


@dataclass(frozen=True)
class Granularity:
    name: str
    P: TableLayout
    Q: TableLayout
    tied: bool


def _g(name, p, q, tied=False):
    return Granularity(name, TableLayout(*p), TableLayout(*q), tied)


GRANULARITIES = {
    g.name: g
    for g in (
        _g("global", (False, False, True), (False, False, True), tied=True),
        _g("D", (False, True, True), (False, True, True), tied=True),
        _g("U", (True, False, True), (False, False, False)),
        _g("I", (False, False, False), (True, False, True)),
        _g("UI", (True, False, True), (True, False, True)),
        _g("DU", (True, True, True), (False, True, True)),
        _g("DI", (False, True, True), (True, True, True)),
        _g("DUI", (True, True, True), (True, True, True)),
    )
}


def get_granularity(name):
    """Look a granularity up by name (case-insensitive for the letter names)."""
    if isinstance(name, Granularity):
        return name
    key = name if name == "global" else str(name).upper()
    if key not in GRANULARITIES:
        raise ConfigError(
            f"unknown granularity {name!r}; expected one of {', '.join(GRANULARITIES)}"
        )
    return GRANULARITIES[key]


def init_lambda(granularity, n_users, n_items, dim, value, dtype=np.float64):
    """Λ^P, Λ^Q filled with ``value``; for tied granularities the same array object twice."""
    g = get_granularity(granularity)
    lam_P = np.full(g.P.shape(n_users, dim), value, dtype=dtype)
    lam_Q = lam_P if g.tied else np.full(g.Q.shape(n_items, dim), value, dtype=dtype)
    return lam_P, lam_Q


def learned_blocks(granularity, lam_P, lam_Q):
    """The distinct learned Λ arrays, in a fixed order (P's first): λOpt's parameters."""
    g = get_granularity(granularity)
    blocks = []
    if g.P.learned:
        blocks.append(lam_P)
    if g.Q.learned and not g.tied:
        blocks.append(lam_Q)
    return blocks


def replace_blocks(granularity, lam_P, lam_Q, blocks):
    """Inverse of :func:`learned_blocks`: ``(Λ^P, Λ^Q)`` with the learned arrays replaced."""
    g = get_granularity(granularity)
    blocks = list(blocks)
    if g.P.learned:
        lam_P = blocks.pop(0)
        if g.tied:
            lam_Q = lam_P
    if g.Q.learned and not g.tied:
        lam_Q = blocks.pop(0)
    return lam_P, lam_Q
