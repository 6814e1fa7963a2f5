"""The trainer on generated data: λOpt learns, Λ stays feasible, runs are reproducible."""

import numpy as np
import pytest

from lopt_np import LambdaOpt
from lopt_np.errors import ConfigError, TrainingDivergedError

FAST = dict(dim=16, batch_size=256, epochs=4, eval_every=0, lr=0.01)


def test_lambda_opt_lowers_validation_loss_and_keeps_lambda_feasible(small_split):
    m = LambdaOpt(granularity="DUI", lambda_lr=0.05, **FAST).fit(small_split)
    vl = [h["lookahead_valid_loss"] for h in m.history]
    assert vl[-1] < vl[0] - 0.02  # from ln 2 ≈ 0.693 (untrained) downwards
    assert (m.lambda_P >= 0).all() and (m.lambda_Q >= 0).all()
    assert m.lambda_P.shape == (small_split.n_users, 16)
    assert m.lambda_Q.shape == (small_split.n_items, 16)


@pytest.mark.parametrize("granularity", ["DUI", "U"])
def test_learned_lambda_differs_across_users(small_split, granularity):
    m = LambdaOpt(granularity=granularity, lambda_lr=0.05, **FAST).fit(small_split)
    per_user = m.lambda_P.mean(axis=1)
    assert per_user.max() > 0 and np.std(per_user) > 0.05 * per_user.max()


@pytest.mark.parametrize(
    "optimizer, granularity", [("adam", "DUI"), ("lazy_adam", "DUI"), ("sgd", "D"), ("adam", "UI")]
)
def test_same_seed_same_result_and_any_thread_count(small_split, optimizer, granularity):
    kw = dict(FAST, optimizer=optimizer, granularity=granularity, lambda_lr=0.05)
    a = LambdaOpt(seed=5, threads=1, **kw).fit(small_split)
    b = LambdaOpt(seed=5, threads=2, **kw).fit(small_split)
    c = LambdaOpt(seed=6, threads=1, **kw).fit(small_split)
    np.testing.assert_array_equal(a.P, b.P)
    np.testing.assert_array_equal(a.Q, b.Q)
    np.testing.assert_array_equal(a.lambda_P, b.lambda_P)
    np.testing.assert_array_equal(a.lambda_Q, b.lambda_Q)
    assert not np.array_equal(a.P, c.P)


def test_progress_can_stop_training(small_split):
    from lopt_np.trainer import Progress

    class StopAfterTwo(Progress):
        def __init__(self):
            self.seen = []

        def epoch_parameters(self, P, Q, lam_P, lam_Q):
            self.seen.append(P.shape)

        def stop(self):
            return len(self.seen) >= 2

    p = StopAfterTwo()
    m = LambdaOpt(**FAST).fit(small_split, p)
    assert len(m.history) == 2 and p.seen == [(small_split.n_users, 16)] * 2


def test_fixed_lambda_is_not_learned(small_split):
    m = LambdaOpt(learn_lambda=False, lambda_init=0.3, granularity="global", **FAST).fit(
        small_split
    )
    assert np.all(m.lambda_P == np.float32(0.3))
    assert m.history[-1]["lookahead_valid_loss"] is None


def test_strong_fixed_lambda_shrinks_embeddings(small_split):
    weak = LambdaOpt(learn_lambda=False, lambda_init=0.0, **FAST).fit(small_split)
    strong = LambdaOpt(learn_lambda=False, lambda_init=5.0, **FAST).fit(small_split)
    assert np.linalg.norm(strong.P) < 0.5 * np.linalg.norm(weak.P)


def test_divergence_stops_with_the_step_named(small_split):
    with pytest.raises(TrainingDivergedError, match=r"step \d+ \(epoch 1\)"):
        LambdaOpt(optimizer="sgd", lr=1e6, **{k: v for k, v in FAST.items() if k != "lr"}).fit(
            small_split
        )


def test_reference_backend_runs_the_same_trainer(small_split):
    kw = dict(FAST, epochs=1, dtype="float64", dim=4)
    a = LambdaOpt(device="reference", **kw).fit(small_split)
    b = LambdaOpt(device="cpu", **kw).fit(small_split)
    np.testing.assert_allclose(b.P, a.P, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.lambda_P, a.lambda_P, rtol=1e-9, atol=1e-12)


def test_early_stopping_keeps_the_best_epoch(small_split):
    m = LambdaOpt(
        dim=16, batch_size=256, epochs=6, lr=0.05, patience=1, early_stopping="ndcg@50"
    ).fit(small_split)
    scores = [h["valid"]["ndcg@50"] for h in m.history]
    assert m.best_epoch == 1 + int(np.argmax(scores))
    assert m.evaluate(small_split, "valid")["metrics"]["ndcg@50"] == pytest.approx(max(scores))


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(lr=-1.0), "lr must be a positive number"),
        (dict(granularity="XYZ"), "unknown granularity"),
        (dict(optimizer="rmsprop"), "unknown optimizer"),
        (dict(scope="rows"), "unknown scope"),
        (dict(optimizer="lazy_adam", scope="full"), "needs the 'batch' penalty scope"),
        (dict(lambda_optimizer="lion"), "unknown lambda_optimizer"),
        (dict(dim=0), "dim must be a positive integer"),
        (dict(early_stopping="mrr"), "early_stopping must be"),
        (dict(learning_rate=0.1), "unknown parameter"),
    ],
)
def test_invalid_configuration_is_rejected(params, message):
    with pytest.raises(ConfigError, match=message):
        LambdaOpt(**params)


def test_k_larger_than_catalogue_is_rejected(small_split):
    with pytest.raises(ConfigError, match="larger than the catalogue"):
        LambdaOpt(ks=(10_000,), **FAST).fit(small_split)


def test_threads_zero_means_every_core_or_one_for_a_small_model(small_split):
    """``threads=0``: one thread below SERIAL_BELOW model entries, else every core, whatever
    an earlier fit in the process set; a given count wins (capped at the cores)."""
    import numba

    from lopt_np.trainer import SERIAL_BELOW, thread_count

    cores = numba.config.NUMBA_NUM_THREADS
    assert thread_count(0, 678, 774, 128) == 1  # (678 + 774) × 128 < SERIAL_BELOW
    assert thread_count(0, 6040, 3706, 128) == cores
    assert thread_count(0, 1024, 1024, 128) == cores  # exactly SERIAL_BELOW entries
    assert (1024 + 1024) * 128 == SERIAL_BELOW
    assert thread_count(1, 6040, 3706, 128) == 1
    assert thread_count(10_000, 10, 10, 8) == cores
    LambdaOpt(epochs=1, dim=8, eval_every=0, threads=1).fit(small_split)
    assert numba.get_num_threads() == 1
    n = small_split.n_users + small_split.n_items
    big = -(-SERIAL_BELOW // n)  # the smallest K that makes the model count as large
    LambdaOpt(epochs=1, dim=big, eval_every=0, learn_lambda=False, patience=0).fit(small_split)
    assert numba.get_num_threads() == cores
    LambdaOpt(epochs=1, dim=8, eval_every=0, learn_lambda=False, patience=0).fit(small_split)
    assert numba.get_num_threads() == 1


def test_mean_lambda_is_taken_at_most_every_second_and_at_each_epoch_end():
    """The progress reports' mean Λ (a pass over all of Λ) is recomputed when the epoch ends or
    ``every`` seconds after the last time while Λ is learned, and only once when Λ is fixed."""
    from types import SimpleNamespace

    from lopt_np.trainer import LambdaMeans

    clock = [0.0]
    calls = []

    def backend(learn):
        return SimpleNamespace(
            learn_lambda=learn, mean_lambda=lambda: calls.append(1) or len(calls)
        )

    means = LambdaMeans(backend(True), every=1.0, clock=lambda: clock[0])
    assert means(final=False) == 1  # the first report
    clock[0] = 0.5
    assert means(final=False) == 1  # 0.5 s later: the value taken at 0.0
    assert means(final=True) == 2  # an epoch's last step
    clock[0] = 1.4
    assert means(final=False) == 2  # 0.9 s after the last
    clock[0] = 1.5
    assert means(final=False) == 3  # 1.0 s after it
    calls.clear()
    fixed = LambdaMeans(backend(False), every=1.0, clock=lambda: clock[0])
    clock[0] = 100.0
    assert [fixed(final=f) for f in (False, True, False, True)] == [1, 1, 1, 1]


def test_each_epochs_last_progress_report_has_the_mean_of_its_lambda(small_split):
    from lopt_np.trainer import Progress

    class Reports(Progress):
        def __init__(self):
            self.last, self.ends = None, []

        def step(self, n_done, train_loss, valid_loss, mean_lambda):
            self.last = mean_lambda

        def epoch_parameters(self, P, Q, lam_P, lam_Q):
            self.ends.append((self.last, (float(lam_P.mean()), float(lam_Q.mean()))))

    r = Reports()
    LambdaOpt(granularity="DUI", lambda_lr=0.05, **FAST).fit(small_split, r)
    assert len(r.ends) == FAST["epochs"]
    for reported, actual in r.ends:
        assert reported == pytest.approx(actual, rel=1e-6)
    assert r.ends[0][1] != r.ends[-1][1]  # Λ moved: a stale report would fail above


@pytest.mark.parametrize(
    "params",
    [
        dict(learn_lambda=False, lambda_init=0.05),
        dict(granularity="DUI", lambda_lr=0.05),
        dict(granularity="D", lambda_lr=0.05, lambda_optimizer="sgd"),
    ],
)
def test_deferred_rows_give_the_dense_pass_bit_for_bit(small_split, params, monkeypatch):
    """Dense Adam on the CPU defers the rows a step does not touch (``kernels.step_order``):
    Θ, Λ and the losses of every epoch equal those of a pass over every row each step, in every
    bit; and rows did wait (the test would pass trivially otherwise)."""
    import lopt_np.backends.cpu as cpu

    kw = dict(FAST, optimizer="adam", **params)
    seen = []
    run_deferred = cpu.CpuBackend.theta_step

    def watched(self, batch):
        out = run_deferred(self, batch)
        seen.append(self.defers_rows and int((self._last[0] < self.t).sum()))
        return out

    monkeypatch.setattr(cpu.CpuBackend, "theta_step", watched)
    monkeypatch.setattr(cpu, "DEFER_ROWS", True)
    a = LambdaOpt(seed=3, **kw).fit(small_split)
    assert max(seen) > 0  # rows waited behind the step count
    monkeypatch.setattr(cpu, "DEFER_ROWS", False)
    b = LambdaOpt(seed=3, **kw).fit(small_split)
    for name in ("P", "Q", "lambda_P", "lambda_Q"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]


def test_rows_are_deferred_where_a_step_reads_few_of_them():
    """By default (``DEFER_ROWS = "auto"``) dense Adam defers rows only where the tables hold at
    least ``DEFER_ROWS_PER_BATCH_ROW`` rows per batch triplet, and never for lazy Adam, SGD, the
    full scope or a shared assumed state."""
    import lopt_np.backends.cpu as cpu
    from lopt_np.math.granularity import init_lambda
    from lopt_np.math.hypergradient import Lookahead, ThetaOptimizer
    from lopt_np.math.lambda_update import LambdaOptimizer

    def defers(n_users, batch, optimizer="adam", scope="batch", shared=False):
        P = np.zeros((n_users, 4), np.float32)
        Q = np.zeros((50, 4), np.float32)
        lP, lQ = init_lambda("DUI", n_users, 50, 4, 0.1, np.float32)
        look = Lookahead(scope=scope, eps_placement="outside", shared_state=shared)
        return cpu.CpuBackend(
            P,
            Q,
            lP,
            lQ,
            "DUI",
            ThetaOptimizer(optimizer, 0.01),
            LambdaOptimizer("amsgrad", 0.1),
            scope=scope,
            lookahead=look,
            max_batch=batch,
            max_valid_batch=batch,
        ).defers_rows

    k = cpu.DEFER_ROWS_PER_BATCH_ROW
    assert defers(k * 10 - 50, 10)
    assert not defers(k * 10 - 51, 10)
    assert not defers(k * 100, 10, optimizer="lazy_adam")
    assert not defers(k * 100, 10, optimizer="sgd")
    assert not defers(k * 100, 10, scope="full")
    assert not defers(k * 100, 10, shared=True)
