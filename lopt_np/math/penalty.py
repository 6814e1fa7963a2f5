"""Fine-grained L2 penalty and its gradient (paper Eq. 15-18; SPEC §3).

Λ^T for a table T (n_T × K) is stored as a 2-D array of shape (1 or n_T, 1 or K) and broadcast
to T's shape; the granularity (``lopt_np.math.granularity``) decides which axes it carries.
Both scopes go through one code path with a per-row weight ``w_r``:
``full`` → w_r = 1, ``batch`` → w_r = c_r/|B| (c_r = occurrences of row r in the batch).
"""

import numpy as np

SCOPES = ("full", "batch")


def row_weights(n_rows, rows_in_batch, batch_size, scope):
    """Per-row weight w_r of SPEC §3 for one table (``rows_in_batch``: every occurrence)."""
    if scope == "full":
        return np.ones(n_rows)
    if scope == "batch":
        return np.bincount(rows_in_batch, minlength=n_rows) / float(batch_size)
    raise ValueError(f"unknown penalty scope {scope!r}; expected one of {SCOPES}")


def batch_row_weights(users, pos, neg, n_users, n_items, scope):
    """``(w^P, w^Q)`` for a batch of triplets: users weight P's rows, both i and j weight Q's."""
    n = len(users)
    wP = row_weights(n_users, users, n, scope)
    wQ = row_weights(n_items, np.concatenate([pos, neg]), n, scope)
    return wP, wQ


def penalty(w, lam, T):
    """``Ω_T = Σ_{r,k} w_r Λ^T_{r,k} T_{r,k}²`` (Eq. 15/17; SPEC §3, either scope via w)."""
    return float(np.sum(w[:, None] * lam * T * T))


def penalty_grad(w, lam, T):
    """``∂Ω/∂T_{r,k} = 2 w_r Λ^T_{r,k} T_{r,k}`` (Eq. 16/18; SPEC §3); the kernels' twin
    ``kernels.elementwise.penalty_grad(w, lam, theta)`` takes the same order."""
    return 2.0 * w[:, None] * lam * T


def penalty_grad_lambda(w, T):
    """``∂(∂Ω/∂T_{r,k})/∂Λ^T_{r,k} = 2 w_r T_{r,k}`` elementwise (SPEC §5 step 4, ∂d/∂Λ)."""
    return 2.0 * w[:, None] * T
