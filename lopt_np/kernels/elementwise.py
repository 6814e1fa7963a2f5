"""Scalar formulas shared by the CPU and CUDA kernels, written once in plain Python.

The hot ones take every constant as an argument in the kernel's dtype (a Python float literal
would widen a float32 kernel to float64 and halve its speed); ``sigmoid``/``softplus``/
``bpr_delta`` run once per triplet and compute in float64.

``kernels/cpu`` compiles them with ``numba.njit`` and ``kernels/cuda`` with
``numba.cuda.jit(device=True)``; each is the scalar form of a function in ``lopt_np.math``
(named in its docstring) and is tested through the kernels that use it.
"""

import math


def sigmoid(x):
    """Stable σ(x) (``math.bpr.sigmoid``)."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def softplus(x):
    """Stable ln(1 + eˣ) (``math.bpr.softplus``)."""
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


def bpr_delta(x):
    """δ = σ(x) − 1 = −σ(−x), the derivative of softplus(−x) (``math.bpr.bpr_delta``, SPEC §2),
    stable for any x.

    (Self-contained: the functions here are compiled one by one and cannot call each other.)
    """
    if x >= 0:
        e = math.exp(-x)
        return -e / (1.0 + e)
    return -1.0 / (1.0 + math.exp(x))


def bpr_margin(P, pu, Q, qi, qj):
    """x_uij = p_u·(q_i − q_j) for rows pu, qi, qj (``math.bpr.bpr_margin``), in P's dtype."""
    x = P.dtype.type(0.0)
    for k in range(P.shape[1]):
        x += P[pu, k] * (Q[qi, k] - Q[qj, k])
    return x


def triplet_touches(dstP, dstQ, u, i, j):
    """True when triplet (u, i, j) touches a row of the gradient maps (an entry ≥ 0): only
    then does its margin reach a gradient scattered through them. The lookahead's B̄ pass
    scatters onto V's rows only, which half of B̄'s triplets miss at ML-10M shape."""
    return dstP[u] >= 0 or dstQ[i] >= 0 or dstQ[j] >= 0


def sorted_contains(values, lo, hi, x):
    """True when ``x`` is among ``values[lo:hi]`` (sorted ascending, distinct): a binary search
    over one user's item list of a CSR array (negative sampling, the evaluation's negatives).
    Its steps depend only on hi − lo and each picks the half by a select, not a branch (a
    mispredicted branch per step made it the sampler's main cost)."""
    n = hi - lo
    if n <= 0:
        return False
    base = lo
    while n > 1:
        half = n // 2
        base = base + half if values[base + half] <= x else base
        n -= half
    return values[base] == x


def select_top(scores, candidates, excluded, e0, e1, top_scores, top_items):
    """The top n of one row (``math.recommend.top_n``; n = len(top_items)): ``scores[c]`` is
    the score of item ``candidates[c]`` (ascending), ``excluded[e0:e1]`` the row's excluded
    items (ascending). Writes the best n admissible items, score descending then item
    ascending, into ``top_items``/``top_scores``, padded with (-1, -inf).

    A heap of the n best so far whose root is the worst of them, filled at the start with
    (-inf, -1) placeholders that every finite score beats; a candidate that beats the root
    replaces it. The loop then runs on n more times, each moving the root (the worst left) to
    the end of the shrinking heap: a heap sort that leaves the list best first. Both phases
    share one sift-down. Memory O(n), time O(|C| + k log n) for k candidates that beat the
    root (about n ln(|C|/n) on random order)."""
    n = top_items.shape[0]
    for k in range(n):
        top_scores[k] = -math.inf
        top_items[k] = -1
    n_cand = candidates.shape[0]
    for step in range(n_cand + n):
        if step < n_cand:  # phase 1: offer one candidate
            item = candidates[step]
            s = scores[step]
            if not (s > top_scores[0] or (s == top_scores[0] and item < top_items[0])):
                continue
            lo = e0  # excluded? (binary search; only
            hi = e1  # for the few that beat the root)
            while lo < hi:
                mid = (lo + hi) // 2
                if excluded[mid] < item:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < e1 and excluded[lo] == item:
                continue
            top_scores[0] = s
            top_items[0] = item
            size = n
        else:  # phase 2: the worst to the end
            size = n - 1 - (step - n_cand)
            s = top_scores[0]
            item = top_items[0]
            top_scores[0] = top_scores[size]
            top_items[0] = top_items[size]
            top_scores[size] = s
            top_items[size] = item
        pos = 0  # sift the root down within size
        while True:
            child = 2 * pos + 1
            if child >= size:
                break
            c2 = child + 1
            if c2 < size and (
                top_scores[child] > top_scores[c2]
                or (top_scores[child] == top_scores[c2] and top_items[child] < top_items[c2])
            ):
                child = c2  # the worse of the two children
            if top_scores[child] > top_scores[pos] or (
                top_scores[child] == top_scores[pos] and top_items[child] < top_items[pos]
            ):
                break  # both children rank before it
            s = top_scores[pos]
            item = top_items[pos]
            top_scores[pos] = top_scores[child]
            top_items[pos] = top_items[child]
            top_scores[child] = s
            top_items[child] = item
            pos = child


def lambda_entry(lam, r, k, per_row, per_dim):
    """Λ_{r,k} broadcast from a Λ of shape ``(n or 1, K or 1)`` (``math.penalty``, SPEC §3):
    ``per_row``/``per_dim`` say which axes Λ carries (compile-time constants in the CPU kernels,
    one variant per layout; read from Λ's shape on CUDA)."""
    if per_row:  # four plain indexings: ``r if per_row else 0`` would unify a uint64 row
        return lam[r, k] if per_dim else lam[r, 0]  # index with 0 into a float64
    return lam[0, k] if per_dim else lam[0, 0]


def row_weight(T, count, s, inv_batch, full_scope):
    """w_r of the penalty (``math.penalty.row_weights``, SPEC §3) in T's dtype: 1 for the
    ``full`` scope; c_r/|B| for ``batch`` on a held row (slot s ≥ 0, ``count[s]`` = c_r), 0 on a
    row the batch does not touch."""
    if full_scope:
        return T.dtype.type(1.0)
    if s < 0:
        return T.dtype.type(0.0)
    return T.dtype.type(count[s]) * inv_batch


def penalty_grad(w, lam, theta):
    """2 w Λ θ (``math.penalty.penalty_grad``, SPEC §3), written (w + w)·Λ·θ: no float64
    literal, so a float32 kernel stays in float32."""
    return (w + w) * lam * theta


def penalty_grad_lambda(w, theta):
    """∂d/∂Λ = 2 w θ (``math.penalty.penalty_grad_lambda``, SPEC §5 step 4)."""
    return (w + w) * theta


def sgd_update(theta, d, lr):
    """Θ − η d (``math.optimizers.sgd_step``, Eq. 10)."""
    return theta - lr * d


def adam_moments(m, v, d, beta1, beta2, c1, c2):
    """(m', v') = (β1 m + (1−β1) d, β2 v + (1−β2) d²) (``math.optimizers.adam_moments``, Eq.
    13-14, SPEC §4), with
    c1 = 1 − β1 and c2 = 1 − β2 given in the kernel's dtype."""
    return beta1 * m + c1 * d, beta2 * v + c2 * d * d


def adam_update(theta, m_new, v_denominator, alpha, eps_in, eps_out):
    """Θ − α_t m'/(√(v'+ε_in) + ε_out) (Eq. 12; ``math.optimizers.adam_step``; ``v_denominator``
    is v', or max(v̂, v') for AMSGrad). ε inside the root: (ε_in, ε_out) = (ε, 0); outside:
    (0, ε√(1−β2^t)) (``math.optimizers.adam_eps_terms``)."""
    return theta - alpha * m_new / (math.sqrt(v_denominator + eps_in) + eps_out)


def adam_jacobian(m_new, v_new, d, alpha, c1, c2, eps_in, eps_out):
    """∂Θ'/∂d of Adam (``math.optimizers.adam_step_jacobian``, SPEC §5 step 4), c1 = 1 − β1,
    c2 = 1 − β2: −α [c1/D − c2 m' d/(√(v'+ε_in) D²)], D = √(v'+ε_in) + ε_out."""
    r = math.sqrt(v_new + eps_in)
    D = r + eps_out
    v_path = c2 * m_new * d / (r * D * D) if r > 0 else r
    return -alpha * (c1 / D - v_path)


def make_lambda_adam_entry(adam_moments, adam_update):
    """``lambda_adam_entry(lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in,
    eps_out, amsgrad)``: in place, element (r, k), Λ ← max(Adam/AMSGrad(Λ, g), 0) with its
    moments (``math.lambda_update.lambda_step``; AMSGrad: the running maximum of the raw v'
    takes v''s place, ``math.optimizers.amsgrad_step``). Built from each layer's compiled
    ``adam_moments`` and ``adam_update``, so the formulas stay written once above."""

    def lambda_adam_entry(
        lam, m, v, vmax, r, k, g, alpha, beta1, beta2, c1, c2, eps_in, eps_out, amsgrad
    ):
        m2, v2 = adam_moments(m[r, k], v[r, k], g, beta1, beta2, c1, c2)
        m[r, k] = m2
        v[r, k] = v2
        if amsgrad:
            v2 = max(vmax[r, k], v2)
            vmax[r, k] = v2
        lam[r, k] = max(adam_update(lam[r, k], m2, v2, alpha, eps_in, eps_out), lam.dtype.type(0.0))

    return lambda_adam_entry
