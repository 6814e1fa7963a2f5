"""Top-n of many rows (``math.recommend``), Numba CUDA; mirrors ``kernels.cpu.recommend``:
float64 scores of a block of rows (``evaluation._score_block``, one thread per row × candidate),
then one thread per row runs the shared heap selection."""

import numpy as np
from numba import cuda

from ._jit import kernel, launch, select_top
from .evaluation import _score_block


@kernel
def select_top_block(scores, rows, excluded_indptr, excluded, candidates, top_items, top_scores):
    """Row b of ``scores`` belongs to row ``rows[b]``; its top n of ``candidates`` not excluded
    (as the CPU's ``select_top_block``)."""
    b = cuda.grid(1)
    if b < rows.shape[0]:
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
    left, right, rows, excluded_indptr, excluded, candidates, top_items, top_scores, block_size=4096
):
    """As the CPU's ``top_n_rows``: fills the host arrays ``top_items``/``top_scores``."""
    d = cuda.to_device
    left_d = d(np.ascontiguousarray(left))
    right_t = d(np.ascontiguousarray(np.asarray(right, np.float64)[candidates].T))
    indptr_d, excluded_d, cand_d = d(excluded_indptr), d(excluded), d(candidates)
    rows_d = d(np.asarray(rows, np.int64))
    n_rows = min(block_size, max(1, len(rows)))
    scores = cuda.device_array((n_rows, len(candidates)), np.float64)
    items_d = cuda.device_array((n_rows, top_items.shape[1]), np.int64)
    top_d = cuda.device_array((n_rows, top_items.shape[1]), np.float64)
    for start in range(0, len(rows), block_size):
        block = rows_d[start : start + block_size]
        n_b = block.shape[0]
        _score_block[launch(n_b * len(candidates))](left_d, right_t, block, scores)
        select_top_block[launch(n_b)](
            scores[:n_b], block, indptr_d, excluded_d, cand_d, items_d[:n_b], top_d[:n_b]
        )
        top_items[start : start + n_b] = items_d[:n_b].copy_to_host()
        top_scores[start : start + n_b] = top_d[:n_b].copy_to_host()
