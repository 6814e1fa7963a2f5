"""The authors' recorded traces (shared/reference-trace) replayed through the trainer's driver
and backends, batch for batch, under the ``authors`` preset; and every SPEC §8 option, flipped
alone, breaking the replay. Tolerances from the trace README: 1e-11 absolute under Adam (the
step amplifies rounding by lr/ε where |∇| ≈ ε), 1e-13 under SGD; float64."""

import functools

import pytest

from helpers import reference_trace
from lopt_np.replay import load_trace, replay, trace_config

pytestmark = pytest.mark.realdata

TOLERANCE = {"dui_adam": 1e-11, "d_adam": 1e-11, "dui_sgd": 1e-13}


@functools.lru_cache(maxsize=None)
def _trace(name):
    return load_trace(reference_trace(name))


def assert_matches(dev, tol):
    assert dev["draws"] == 0, dev
    for key in ("theta", "lambda", "train_loss", "valid_loss", "fingerprint"):
        assert dev[key] <= tol, (key, dev)


@pytest.mark.parametrize("name", list(TOLERANCE))
@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_authors_preset_replays_every_step(name, device):
    trace = _trace(name)
    dev = replay(trace, trace_config(trace, device=device))
    assert dev["steps"] == len(trace["step_idx"])
    assert_matches(dev, TOLERANCE[name])


@pytest.mark.parametrize("name", ["dui_adam", "dui_sgd"])
def test_theta_clip_100_never_fires_in_the_traces(name):
    """The authors clip the Θ gradient at 100 (reference backend only): same replay."""
    trace = _trace(name)
    assert_matches(
        replay(trace, trace_config(trace, device="reference", theta_clip=100.0)), TOLERANCE[name]
    )


@pytest.mark.parametrize(
    "name,steps",
    [
        ("d_adam", 2),
        pytest.param("dui_adam", 3, marks=pytest.mark.slow),
        pytest.param("dui_sgd", 3, marks=pytest.mark.slow),
    ],
)
def test_cuda_backend_replays_the_first_steps(name, steps):
    """The CUDA kernels (Numba's simulator in the default run) under the authors' preset: the
    first real step and λ step(s). The simulator runs one Python thread per table element."""
    pytest.importorskip("numba.cuda")
    trace = _trace(name)
    assert_matches(replay(trace, trace_config(trace, device="cuda"), steps=steps), TOLERANCE[name])


# Each SPEC §8 difference flipped back to SPEC §5's choice, alone. The smallest deviation an
# option may cause within 50 steps is far above the replay tolerance; options that do not
# apply to the trace's optimizer (ε placements under SGD) are listed where they do.
FLIPS = [
    ("dui_adam", {"eps_placement": "inside"}),
    ("dui_adam", {"lambda_eps_placement": "inside"}),
    ("dui_sgd", {"lambda_eps_placement": "inside"}),
    ("dui_adam", {"lookahead_scope": "same"}),
    ("dui_sgd", {"lookahead_scope": "same"}),
    ("d_adam", {"lookahead_scope": "same"}),
    ("dui_adam", {"lookahead_eps_placement": "same"}),
    ("d_adam", {"lookahead_count": "next"}),
    ("dui_adam", {"lookahead_count": "next"}),
    ("dui_adam", {"assumed_penalty": False}),
    ("dui_sgd", {"assumed_penalty": False}),
]


@pytest.mark.parametrize("name,flip", FLIPS, ids=[f"{n}-{next(iter(f))}" for n, f in FLIPS])
def test_each_semantic_difference_breaks_the_replay(name, flip):
    trace = _trace(name)
    dev = replay(trace, trace_config(trace, device="reference", **flip), steps=50)
    assert max(dev["theta"], dev["lambda"], dev["valid_loss"]) > 1e-7, dev


def test_a_lambda_step_at_step_0_breaks_the_draws():
    """SPEC §5 takes a λ step before the first real step; the authors' code does not."""
    trace = _trace("d_adam")
    cfg = trace_config(trace, device="reference", lambda_warmup_steps=0, lookahead_count="next")
    assert replay(trace, cfg, steps=3)["draws"] >= 1


def test_one_stream_of_batches_draws_lookahead_then_real_batch(small_split):
    """``lookahead_batches="stream"``: B̄ and B are consecutive batches of one stream (the trace's
    draw order), so per λOpt step the stream advances by two batches."""
    from lopt_np.sampling import BatchStream, TripletSampler

    sampler = TripletSampler(small_split, 0)
    whole = sampler.train_triplets(1)
    stream = BatchStream(sampler)
    a, b = stream.next(64), stream.next(64)
    assert (a.users == whole.users[:64]).all() and (b.pos == whole.pos[64:128]).all()
    n = len(whole.users)
    stream.next(n)  # the rest of the pass, short
    c = stream.next(64)  # the next pass: its own permutation
    nxt = sampler.train_triplets(2)
    assert (c.users == nxt.users[:64]).all()
