"""On a real GPU only (``gpu`` marker, excluded from the default run):

    NUMBA_ENABLE_CUDASIM=0 python -m pytest -m gpu

``--device cuda`` against ``--device cpu`` on the same generated data and seed: the same
host-sampled triplets, so the same model and metrics up to float32 rounding (the GPU's atomic
sums run in another order). In the simulator these are covered by test_kernels_cuda.py and
test_cli.py at small shapes.
"""

import numpy as np
import pytest

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def real_gpu():
    pytest.importorskip("numba_cuda", reason="numba-cuda is not installed")
    from numba import config, cuda

    if config.ENABLE_CUDASIM or not cuda.is_available():
        pytest.skip("needs a real CUDA GPU and NUMBA_ENABLE_CUDASIM=0")


def test_training_on_the_gpu_gives_the_cpu_model(real_gpu):
    from lopt_np import LambdaOpt
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions

    split = build_split(synthetic_interactions(n_users=2000, n_items=1500, seed=1), min_count=5)
    models = {
        d: LambdaOpt(
            device=d, dim=32, epochs=3, eval_every=0, granularity="DUI", lambda_clip=10.0
        ).fit(split)
        for d in ("cpu", "cuda")
    }
    for a, b in zip(*([m.P, m.Q, m.lambda_P, m.lambda_Q] for m in models.values())):
        np.testing.assert_allclose(b, a, rtol=1e-2, atol=1e-4)
    cpu = models["cpu"].evaluate(split, device="cpu")["metrics"]
    gpu = models["cuda"].evaluate(split, device="cuda")["metrics"]
    for name, value in cpu.items():
        assert gpu[name] == pytest.approx(value, abs=2e-3), name


def test_gpu_evaluation_equals_cpu_evaluation(real_gpu):
    from lopt_np.data.preprocess import build_split
    from lopt_np.data.synthetic import synthetic_interactions
    from lopt_np.evaluation import evaluate

    split = build_split(synthetic_interactions(n_users=3000, n_items=2000, seed=2), min_count=5)
    rng = np.random.default_rng(0)
    P = rng.normal(0, 1, (split.n_users, 64)).astype(np.float32)
    Q = rng.normal(0, 1, (split.n_items, 64)).astype(np.float32)
    a = evaluate(P, Q, split, "test", device="cpu")["metrics"]
    b = evaluate(P, Q, split, "test", device="cuda")["metrics"]
    for name in a:
        assert b[name] == pytest.approx(a[name], abs=1e-9), name
