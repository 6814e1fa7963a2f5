"""NeuMF (He et al. WWW'17; the paper's baseline, §5.1.3) trained with the BPR loss.

Score of user u and item i, a GMF tower and an MLP tower joined by one output layer:

    a_0 = [P^m_u ; Q^m_i],   z_l = a_{l−1} W_l + b_l,   a_l = relu(z_l)   (l = 1 … L)
    s_ui = h_g · (P^g_u ⊙ Q^g_i) + h_m · a_L

Backward pass for an upstream gradient ``g_b = ∂L/∂s_b`` of each scored pair b:

    ∂L/∂h_g = Σ_b g_b (P^g_u ⊙ Q^g_i),        ∂L/∂h_m = Σ_b g_b a_L
    ∂L/∂P^g_u += g_b h_g ⊙ Q^g_i,              ∂L/∂Q^g_i += g_b h_g ⊙ P^g_u
    e_L = g_b h_m;  ε_l = e_l ⊙ [z_l > 0];  ∂L/∂W_l = a_{l−1}^T ε_l;  ∂L/∂b_l = Σ_b ε_l;
    e_{l−1} = ε_l W_l^T;   e_0 = [∂L/∂P^m_u ; ∂L/∂Q^m_i]  (scatter-added over repeated rows)

BPR (Eq. 2, SPEC §2) on the margin x = s_ui − s_uj: ∂L/∂s_ui = δ/|B|, ∂L/∂s_uj = −δ/|B| with
δ = σ(x) − 1. Pre-training from MF-λFix sets P^g, Q^g to MF's P, Q and h_g = 1, so the GMF
tower starts as the MF score. Parameters are a dict of arrays (names in :data:`EMBEDDINGS`,
``h_g``, ``h_m``, ``W1``, ``b1``, …). Plain NumPy (the teaching layer).
"""

import numpy as np

from .bpr import sigmoid, softplus

EMBEDDINGS = {"P_g": "user", "Q_g": "item", "P_m": "user", "Q_m": "item"}


def n_layers(params):
    return sum(1 for k in params if k.startswith("W"))


def init_neumf(P, Q, mlp_dim, layers, rng, init_std=0.1, dtype=np.float32):
    """NeuMF pre-trained from MF (P, Q): GMF tower = MF, MLP embeddings ``mlp_dim`` wide and
    ``layers`` hidden widths (He-normal), output ``h_m`` small so the start is close to MF."""
    n_users, n_items = P.shape[0], Q.shape[0]
    params = {
        "P_g": P.astype(dtype, copy=True),
        "Q_g": Q.astype(dtype, copy=True),
        "P_m": rng.normal(0, init_std, (n_users, mlp_dim)).astype(dtype),
        "Q_m": rng.normal(0, init_std, (n_items, mlp_dim)).astype(dtype),
        "h_g": np.ones(P.shape[1], dtype),
    }
    width = 2 * mlp_dim
    for l, out in enumerate(layers, start=1):
        params[f"W{l}"] = rng.normal(0, np.sqrt(2.0 / width), (width, out)).astype(dtype)
        params[f"b{l}"] = np.zeros(out, dtype)
        width = out
    params["h_m"] = rng.normal(0, 0.01, width).astype(dtype)
    return params


def neumf_forward(params, users, items):
    """Scores ``s`` of the pairs (users[b], items[b]) and the cache the backward pass needs."""
    a = np.concatenate([params["P_m"][users], params["Q_m"][items]], axis=1)
    acts, pre = [a], []
    for l in range(1, n_layers(params) + 1):
        z = a @ params[f"W{l}"] + params[f"b{l}"]
        a = np.maximum(z, 0.0)
        pre.append(z)
        acts.append(a)
    gmf = params["P_g"][users] * params["Q_g"][items]
    s = gmf @ params["h_g"] + a @ params["h_m"]
    return s, {"gmf": gmf, "acts": acts, "pre": pre}


def neumf_backward(params, cache, users, items, g):
    """Gradients of ``Σ_b g_b s_b`` for every parameter (module docstring), as a dict."""
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    grads["h_g"] = cache["gmf"].T @ g
    grads["h_m"] = cache["acts"][-1].T @ g
    e_gmf = g[:, None] * params["h_g"][None, :]
    np.add.at(grads["P_g"], users, e_gmf * params["Q_g"][items])
    np.add.at(grads["Q_g"], items, e_gmf * params["P_g"][users])
    e = g[:, None] * params["h_m"][None, :]
    for l in range(n_layers(params), 0, -1):
        e = e * (cache["pre"][l - 1] > 0)
        grads[f"W{l}"] = cache["acts"][l - 1].T @ e
        grads[f"b{l}"] = e.sum(axis=0)
        e = e @ params[f"W{l}"].T
    d = params["P_m"].shape[1]
    np.add.at(grads["P_m"], users, e[:, :d])
    np.add.at(grads["Q_m"], items, e[:, d:])
    return grads


def neumf_bpr_margin(params, users, pos, neg):
    both = np.concatenate([pos, neg])
    s, _ = neumf_forward(params, np.concatenate([users, users]), both)
    return s[: len(users)] - s[len(users) :]


def neumf_bpr_loss(params, users, pos, neg):
    """``(1/|B|) Σ_b softplus(−(s_ui − s_uj))`` (Eq. 2 with NeuMF's score)."""
    return float(np.mean(softplus(-neumf_bpr_margin(params, users, pos, neg))))


def neumf_bpr_grad(params, users, pos, neg):
    """``(loss, grads)`` of :func:`neumf_bpr_loss`: one forward/backward over the 2|B| pairs."""
    n = len(users)
    u2, i2 = np.concatenate([users, users]), np.concatenate([pos, neg])
    s, cache = neumf_forward(params, u2, i2)
    x = s[:n] - s[n:]
    delta = (sigmoid(x) - 1.0) / n
    g = np.concatenate([delta, -delta]).astype(s.dtype)
    return float(np.mean(softplus(-x))), neumf_backward(params, cache, u2, i2, g)


def neumf_score_matrix(params, users):
    """Scores of ``users`` against every item, ``(len(users), n_items)`` float64 (evaluation).

    The first layer splits as a_0 W_1 = P^m_u W_1[:d] + Q^m_i W_1[d:], so it costs one product
    per user and per item; deeper layers run on the (users × items) grid."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    d = p["P_m"].shape[1]
    out = (p["P_g"][users] * p["h_g"]) @ p["Q_g"].T
    zu = p["P_m"][users] @ p["W1"][:d] + p["b1"]
    zi = p["Q_m"] @ p["W1"][d:]
    a = np.maximum(zu[:, None, :] + zi[None, :, :], 0.0)
    for l in range(2, n_layers(p) + 1):
        a = np.maximum(a @ p[f"W{l}"] + p[f"b{l}"], 0.0)
    return out + a @ p["h_m"]
