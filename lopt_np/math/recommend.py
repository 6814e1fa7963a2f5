"""Top-n recommendation and similarity (SPEC §7's scores, used for serving), plain NumPy.

A row r of a left factor matrix L is scored against the candidate rows c of a right factor
matrix R by ``s(r, c) = L_r · R_c`` (for MF: user embeddings P against item embeddings Q, the
model's score p_u·q_i). The top n of a row are its n best candidates that are not excluded
(the user's own interactions, or the item itself for similar items), ordered by score
descending and, among equal scores, by candidate index ascending. A row with fewer than n
admissible candidates is padded with candidate -1 and score -inf.

Similar items and users use cosine similarity: the same scores on unit-length rows.
"""

import numpy as np


def unit_rows(X):
    """Each row of ``X`` divided by its L2 norm (zero rows stay zero), in float64: cosine
    similarity is then the dot product."""
    X = np.asarray(X, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", X, X))
    return X / np.where(norm > 0, norm, 1.0)[:, None]


def top_n(scores, n, excluded=None):
    """``(items, scores)`` of one row: the indices of the n best entries of the 1-D ``scores``
    that are not in ``excluded`` (score descending, index ascending on ties), padded with
    (-1, -inf) to length n."""
    scores = np.asarray(scores, dtype=np.float64)
    admissible = np.ones(len(scores), bool)
    if excluded is not None:
        admissible[np.asarray(excluded, np.int64)] = False
    idx = np.flatnonzero(admissible)
    order = idx[np.lexsort((idx, -scores[idx]))][:n]
    items = np.full(n, -1, np.int64)
    top = np.full(n, -np.inf)
    items[: len(order)] = order
    top[: len(order)] = scores[order]
    return items, top
