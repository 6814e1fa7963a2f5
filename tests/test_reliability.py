"""Nothing silently wrong: tied and non-finite scores (SPEC §7), divergence, output folders
that are never lost or wrongly deleted, interruptions."""
import numpy as np
import pytest

from lopt_np.errors import DataError
from lopt_np.evaluation import evaluate


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_a_collapsed_model_scores_like_a_random_ranking(small_split, device, monkeypatch):
    """Every score tied: the expected rank under a random tie-break, so HR@K ≈ K / (number of
    candidates), AUC exactly ½ — never the perfect metrics a strictly-higher count gives."""
    if device == "cuda":
        pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
        from numba import cuda
        if not cuda.is_available():
            pytest.skip("no CUDA GPU and the simulator is off")
        from lopt_np.kernels.cuda import _jit
        monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 64)
    split = small_split
    P = np.ones((split.n_users, 4), np.float32)
    Q = np.ones((split.n_items, 4), np.float32)
    result = evaluate(P, Q, split, "test", ks=(5, 50), device=device)["metrics"]
    assert result["auc"] == pytest.approx(0.5, abs=1e-12)
    indptr, seen = split.csr()
    n_neg = split.n_items - np.diff(indptr)
    users = np.unique(split.test[:, 0])
    rank = 1 + 0.5 * n_neg[users]              # every target's rank: 1 + ½ (negatives)
    assert result["hr@50"] == pytest.approx(np.mean(rank <= 50), abs=1e-12)
    assert result["hr@5"] == 0.0 < result["hr@50"] or result["hr@50"] == 0.0
    assert result["ndcg@50"] == pytest.approx(np.mean(np.where(rank <= 50,
                                                               1 / np.log2(rank + 1), 0)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_embeddings_are_an_error_not_a_metric(small_split, bad):
    P = np.ones((small_split.n_users, 4))
    Q = np.random.default_rng(0).normal(size=(small_split.n_items, 4))
    Q[3, 1] = bad
    with pytest.raises(DataError, match="NaN or inf"):
        evaluate(P, Q, small_split)
