"""The trained model in use: the top-n kernels (CPU and CUDA, against ``math.recommend``),
``Model.recommend``/``similar_*``/``score`` against brute force, save/load, damaged folders,
and the final fit on every interaction."""

import dataclasses
import json
import os

import numpy as np
import pytest

from lopt_np.errors import ConfigError, DataError
from lopt_np.math.recommend import top_n, unit_rows
from lopt_np.model import Model, load
from lopt_np.trainer import LambdaOpt


def kernel_module(device, monkeypatch):
    if device == "cpu":
        from lopt_np.kernels.cpu import recommend

        return recommend
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    from numba import cuda

    if not cuda.is_available():
        pytest.skip("no CUDA GPU and the simulator is off (NUMBA_ENABLE_CUDASIM=0)")
    from lopt_np.kernels.cuda import _jit, recommend

    monkeypatch.setattr(_jit, "THREADS_PER_BLOCK", 8)  # several blocks per grid
    return recommend


def csr(lists):
    indptr = np.zeros(len(lists) + 1, np.int64)
    indptr[1:] = np.cumsum([len(x) for x in lists])
    items = np.concatenate([np.sort(x) for x in lists]).astype(np.int64) if lists else None
    return indptr, items


def top_case(rng, n_rows=37, n_items=60, dim=3):
    """Small integer factors, so that scores tie often (exactly: integer dot products) and
    ties straddle the cut at n; rows with many excluded items, one with fewer admissible
    candidates than n."""
    L = rng.integers(-2, 3, size=(n_rows, dim)).astype(np.float32)
    R = rng.integers(-2, 3, size=(n_items, dim)).astype(np.float32)
    excluded = [rng.choice(n_items, rng.integers(0, 25), replace=False) for _ in range(n_rows)]
    excluded[4] = np.arange(n_items - 3)
    return L, R, excluded


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("restrict", [False, True], ids=["all-items", "candidates"])
def test_top_n_kernel_matches_reference(device, restrict, monkeypatch):
    """Exact lists (ties broken by the lower item index, padding (-1, -inf)) for every row,
    in blocks smaller than the row count."""
    module = kernel_module(device, monkeypatch)
    rng = np.random.default_rng(1)
    L, R, excluded = top_case(rng)
    n_items = len(R)
    candidates = (
        np.sort(rng.choice(n_items, 40, replace=False)) if restrict else np.arange(n_items)
    ).astype(np.int64)
    rows = np.array([4, 0, 5, 9, 36, 2, 2] + list(range(10, 30)), np.int64)
    n = 8
    indptr, items = csr(excluded)
    top = np.empty((len(rows), n), np.int64)
    scores = np.empty((len(rows), n))
    module.top_n_rows(L, R, rows, indptr, items, candidates, top, scores, block_size=5)
    S = L.astype(np.float64) @ R.astype(np.float64).T
    not_candidate = np.setdiff1d(np.arange(n_items), candidates)
    for b, r in enumerate(rows):
        want_items, want_scores = top_n(S[r], n, np.union1d(excluded[r], not_candidate))
        np.testing.assert_array_equal(top[b], want_items, err_msg=f"row {r}")
        np.testing.assert_allclose(scores[b], want_scores, rtol=1e-12)
    if not restrict:  # row 4 has 3 admissible items: padded
        assert (top[0, 3:] == -1).all() and np.isneginf(scores[0, 3:]).all()


def test_reference_top_n_orders_ties_by_index_and_pads():
    items, scores = top_n(np.array([1.0, 3.0, 3.0, 2.0]), 6, excluded=[0])
    np.testing.assert_array_equal(items, [1, 2, 3, -1, -1, -1])
    np.testing.assert_array_equal(scores[:3], [3.0, 3.0, 2.0])
    assert np.isneginf(scores[3:]).all()


@pytest.fixture(scope="module")
def trained(small_split):
    est = LambdaOpt(epochs=3, dim=8, batch_size=256, patience=0)
    return est, est.fit(small_split), small_split


def test_recommend_is_the_brute_force_top_n_of_unseen_items(trained):
    _, model, split = trained
    users = split.user_ids[[0, 5, 17]]
    ids, scores = model.recommend(users, n=10)
    assert ids.shape == scores.shape == (3, 10)
    indptr, seen = split.csr()  # every interaction of every part
    S = model.P.astype(np.float64) @ model.Q.astype(np.float64).T
    for row, u in zip(range(3), (0, 5, 17)):
        user_seen = seen[indptr[u] : indptr[u + 1]]
        want, want_scores = top_n(S[u], 10, user_seen)
        np.testing.assert_array_equal(ids[row], split.item_ids[want])
        np.testing.assert_allclose(scores[row], want_scores, rtol=1e-12)
        assert not set(model.item_index(ids[row])) & set(user_seen)
        assert np.all(np.diff(scores[row]) <= 0)
    one_ids, one_scores = model.recommend(users[1], n=10)
    np.testing.assert_array_equal(one_ids, ids[1])
    np.testing.assert_array_equal(one_scores, scores[1])


def test_recommend_options(trained):
    _, model, split = trained
    u = split.user_ids[3]
    everything, _ = model.recommend(u, n=model.n_items, filter_seen=False)
    assert sorted(everything) == sorted(split.item_ids)  # all items, no padding
    allowed = split.item_ids[[1, 4, 9, 30]]
    ids, scores = model.recommend(u, n=10, items=allowed)
    kept = [i for i in ids if i != ""]
    assert set(kept) <= set(allowed) and len(ids) == 4  # n capped by the candidates
    indptr, seen = split.csr()
    n_unseen = 4 - len(np.intersect1d(model.item_index(allowed), seen[indptr[3] : indptr[4]]))
    assert len(kept) == n_unseen and np.isneginf(scores[n_unseen:]).all()
    # the same user named by a value of another type (ids compare as strings)
    np.testing.assert_array_equal(
        model.recommend(np.str_(u), n=3)[0], model.recommend(str(u), n=3)[0]
    )
    with pytest.raises(DataError, match="unknown user id 'nobody'"):
        model.recommend("nobody")
    with pytest.raises(DataError, match="unknown item id"):
        model.recommend(u, items=["not-an-item"])
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="n must be a positive integer"):
            model.recommend(u, n=bad)
    with pytest.raises(ConfigError, match="device"):
        model.recommend(u, device="tpu")


def test_similar_items_users_and_score(trained):
    _, model, split = trained
    q = split.item_ids[[2, 11]]
    ids, sims = model.similar_items(q, n=5)
    C = unit_rows(model.Q) @ unit_rows(model.Q).T
    for row, i in enumerate(model.item_index(q)):
        want, want_sims = top_n(C[i], 5, [i])
        np.testing.assert_array_equal(ids[row], split.item_ids[want])
        np.testing.assert_allclose(sims[row], want_sims, rtol=1e-12)
        assert split.item_ids[i] not in ids[row]
    uid, usims = model.similar_users(split.user_ids[0], n=4)
    Cu = unit_rows(model.P) @ unit_rows(model.P).T
    want, _ = top_n(Cu[0], 4, [0])
    np.testing.assert_array_equal(uid, split.user_ids[want])
    assert np.all(usims <= 1 + 1e-12)
    u, i = split.user_ids[[1, 2, 2]], split.item_ids[[0, 5, 7]]
    expected = [
        float(model.P[a].astype(np.float64) @ model.Q[b].astype(np.float64))
        for a, b in zip(model.user_index(u), model.item_index(i))
    ]
    np.testing.assert_allclose(model.score(u, i), expected, rtol=1e-12)
    with pytest.raises(ConfigError, match="as many users as items"):
        model.score(u, i[:2])


def test_save_load_round_trip(trained, tmp_path):
    _, model, split = trained
    model.save(tmp_path / "m")
    assert sorted(os.listdir(tmp_path / "m")) == ["model.json", "model.npz"]
    back = load(tmp_path / "m")
    for name in (
        "P",
        "Q",
        "lambda_P",
        "lambda_Q",
        "user_ids",
        "item_ids",
        "seen_indptr",
        "seen_items",
    ):
        np.testing.assert_array_equal(getattr(back, name), getattr(model, name), err_msg=name)
    assert back.config == json.loads(json.dumps(model.config))
    assert back.best_epoch == model.best_epoch and len(back.history) == len(model.history)
    u = split.user_ids[:4]
    np.testing.assert_array_equal(back.recommend(u)[0], model.recommend(u)[0])


def test_integer_ids_keep_their_type(tmp_path):
    rng = np.random.default_rng(0)
    P, Q = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    model = Model(
        P,
        Q,
        np.zeros((1, 1)),
        np.zeros((1, 1)),
        {},
        [],
        {},
        1,
        np.array([10, 20, 30]),
        np.array([7, 8, 9, 100, 5]),
        np.array([0, 1, 1, 2]),
        np.array([4, 0]),
    )
    model.save(tmp_path)
    back = Model.load(tmp_path)
    assert back.user_ids.dtype.kind == "i" and back.item_ids.dtype.kind == "i"
    ids, _ = back.recommend(10, n=5)
    assert ids.dtype.kind == "i" and 5 not in ids and ids[-1] == -1  # padded: 4 unseen
    np.testing.assert_array_equal(back.recommend("10", n=5)[0], ids)


def _damage(folder, how):
    npz, meta = folder / "model.npz", folder / "model.json"
    if how == "truncated npz":
        npz.write_bytes(npz.read_bytes()[:200])
    elif how == "garbled npz":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = b"\0" * 64
        npz.write_bytes(bytes(data))
    elif how == "newer format":
        m = json.loads(meta.read_text())
        m["format_version"] = 99
        meta.write_text(json.dumps(m))
    elif how == "no model.json":
        meta.unlink()
    elif how == "not json":
        meta.write_text("{")
    else:
        with np.load(npz) as z:
            arrays = {k: z[k] for k in z.files}
        if how == "nan embeddings":
            arrays["user_embeddings"][0, 0] = np.nan
        elif how == "item index out of range":
            arrays["seen_items"][0] = 10**6
        elif how == "unsorted seen items":
            arrays["seen_items"][:2] = arrays["seen_items"][:2][::-1]
        elif how == "ids of another model":
            arrays["user_ids"] = arrays["user_ids"][:-1]
        elif how == "missing array":
            del arrays["seen_indptr"]
        np.savez(npz, **arrays)


@pytest.mark.parametrize(
    "how",
    [
        "truncated npz",
        "garbled npz",
        "newer format",
        "no model.json",
        "not json",
        "nan embeddings",
        "item index out of range",
        "unsorted seen items",
        "ids of another model",
        "missing array",
    ],
)
def test_a_damaged_model_folder_is_one_clear_error(trained, tmp_path, how):
    trained[1].save(tmp_path)
    _damage(tmp_path, how)
    with pytest.raises(DataError) as err:
        Model.load(tmp_path)
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)
    if how == "newer format":
        assert "version 99" in str(err.value)
    if how == "no model.json":
        assert "before 0.2" in str(err.value)


def test_final_fit_trains_on_everything_with_lambda_fixed(trained):
    est, model, split = trained
    n_all = len(split.train) + len(split.valid) + len(split.test) + len(split.selection)
    steps = -(-n_all // est.config.batch_size)
    assert model.lambda_P.any() and model.lambda_Q.any()
    for warm_start, final_lambda in ((True, "learned"), (False, "learned"), (True, "zero")):
        final = est.fit_final(
            model, split, epochs=2, warm_start=warm_start, final_lambda=final_lambda
        )
        assert len(final.history) == 2 == final.best_epoch
        assert final.config["learn_lambda"] is False and final.config["selection_frac"] == 0.0
        assert final.config["final_lambda"] == final_lambda
        scale = 1.0 if final_lambda == "learned" else 0.0
        np.testing.assert_array_equal(final.lambda_P, scale * model.lambda_P)
        np.testing.assert_array_equal(final.lambda_Q, scale * model.lambda_Q)
        np.testing.assert_array_equal(final.seen_items, model.seen_items)
        assert final.history[-1]["step"] == 2 * steps  # every interaction trained
        assert not np.allclose(final.P, model.P)
    # where it starts: with a negligible learning rate, warm stays at the kept model's P,
    # fresh at the seed's initial draw
    still = LambdaOpt()
    still.config = dataclasses.replace(est.config, lr=1e-12)
    warm = still.fit_final(model, split, epochs=1)
    np.testing.assert_allclose(warm.P, model.P, atol=1e-6)
    fresh = still.fit_final(model, split, epochs=1, warm_start=False)
    init = np.random.default_rng(est.config.seed).normal(0, est.config.init_std, model.P.shape)
    np.testing.assert_allclose(fresh.P, init, atol=1e-6)
    with pytest.raises(ConfigError, match="positive number of epochs"):
        est.fit_final(model, split, epochs=0)
    with pytest.raises(ConfigError, match="final_lambda"):
        est.fit_final(model, split, final_lambda="half")


def test_final_epochs_default_and_validation(trained):
    est, model, split = trained
    final = est.fit_final(model, split)
    assert len(final.history) == est.config.final_epochs == 20
    assert not final.lambda_P.any() and est.config.final_lambda == "zero"
    with pytest.raises(ConfigError, match="final_epochs"):
        LambdaOpt(final_epochs=0)
    with pytest.raises(ConfigError, match="final_lambda"):
        LambdaOpt(final_lambda="none")


def test_model_on_cuda_gives_the_cpu_lists(trained, monkeypatch):
    kernel_module("cuda", monkeypatch)  # skips where neither a GPU nor the simulator
    _, model, split = trained
    users, items = split.user_ids[:6], split.item_ids[:3]
    for method, query in (
        ("recommend", users),
        ("similar_items", items),
        ("similar_users", users[:2]),
    ):
        cpu_ids, cpu_scores = getattr(model, method)(query, 7)
        gpu_ids, gpu_scores = getattr(model, method)(query, 7, device="cuda")
        np.testing.assert_array_equal(gpu_ids, cpu_ids, err_msg=method)
        np.testing.assert_allclose(gpu_scores, cpu_scores, rtol=1e-12, err_msg=method)
