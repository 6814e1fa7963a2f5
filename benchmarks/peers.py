"""Peer implementations timed by ``bench_epoch.py`` (optional; never imported by lopt_np).

- PyTorch CPU MF-BPR, the same model and update as lopt_np's fixed-λ run: dense embeddings,
  batch-scope L2 penalty ``λ/|B| Σ_b (‖p_u‖² + ‖q_i‖² + ‖q_j‖²)`` (= SPEC §3 with w_r = c_r/|B|),
  ``torch.optim.Adam`` (default or ``fused=True``), on the very triplets lopt_np samples.
- ``implicit``'s CPU BPR (Hogwild SGD over one sample per training positive per epoch).

Install with ``pip install -e .[bench]``; a missing peer is reported and skipped.
"""

import time

import numpy as np


def torch_available():
    try:
        import torch  # noqa: F401

        return True
    except ImportError:
        return False


def implicit_available():
    try:
        import implicit  # noqa: F401

        return True
    except ImportError:
        return False


def torch_epoch_seconds(
    n_users, n_items, triplets, dim, batch_size, lr, lam, threads, fused, seed=0
):
    """Seconds for one epoch of PyTorch MF-BPR over ``triplets`` (users, pos, neg)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    P = torch.nn.Parameter(torch.randn(n_users, dim) * 0.1)
    Q = torch.nn.Parameter(torch.randn(n_items, dim) * 0.1)
    opt = torch.optim.Adam([P, Q], lr=lr, fused=fused) if fused else torch.optim.Adam([P, Q], lr=lr)
    u, i, j = (torch.from_numpy(np.asarray(a, np.int64)) for a in triplets)
    n = len(u)
    t0 = time.perf_counter()
    for lo in range(0, n, batch_size):
        ub, ib, jb = u[lo : lo + batch_size], i[lo : lo + batch_size], j[lo : lo + batch_size]
        pu, qi, qj = P[ub], Q[ib], Q[jb]
        x = (pu * (qi - qj)).sum(1)
        loss = torch.nn.functional.softplus(-x).mean()
        loss = loss + lam / len(ub) * (pu.pow(2).sum() + qi.pow(2).sum() + qj.pow(2).sum())
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def implicit_epoch_seconds(user_items, dim, lr, lam, threads, seed=0):
    """Seconds for one epoch (``iterations=1``) of ``implicit``'s CPU BPR."""
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    model = BayesianPersonalizedRanking(
        factors=dim,
        learning_rate=lr,
        regularization=lam,
        iterations=1,
        num_threads=threads,
        random_state=seed,
    )
    t0 = time.perf_counter()
    model.fit(user_items, show_progress=False)
    return time.perf_counter() - t0
