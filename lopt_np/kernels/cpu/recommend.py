"""Top-n of many rows (``math.recommend``), Numba CPU: scores by BLAS in float64, one block of
rows at a time, then a parallel heap selection per row (no sort of the candidates)."""

import numpy as np
from numba import prange

from ._jit import pjit, select_top


@pjit
def select_top_block(scores, rows, excluded_indptr, excluded, candidates, top_items, top_scores):
    """Row b of ``scores`` belongs to row ``rows[b]``; its top n (n = top_items.shape[1]) of
    ``candidates`` not in ``excluded[excluded_indptr[r]:excluded_indptr[r + 1]]``."""
    for b in prange(scores.shape[0]):
        r = rows[b]
        select_top(
            scores[b],
            candidates,
            excluded,
            excluded_indptr[r],
            excluded_indptr[r + 1],
            top_scores[b],
            top_items[b],
        )


def top_n_rows(
    left, right, rows, excluded_indptr, excluded, candidates, top_items, top_scores, block_size=2048
):
    """Fill ``top_items``/``top_scores`` (len(rows) × n) with the top n of each row
    ``left[rows[b]]`` among the ``right`` rows ``candidates`` (ascending), scored
    ``left_r · right_c`` in float64, less each row's excluded items (CSR, sorted per row)."""
    right_t = np.ascontiguousarray(np.asarray(right, np.float64)[candidates].T)
    for start in range(0, len(rows), block_size):
        block = rows[start : start + block_size]
        scores = np.asarray(left[block], np.float64) @ right_t
        select_top_block(
            scores,
            block,
            excluded_indptr,
            excluded,
            candidates,
            top_items[start : start + block_size],
            top_scores[start : start + block_size],
        )
