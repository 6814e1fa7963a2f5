from setuptools import setup

PACKAGES = ["lopt_np", "lopt_np.math", "lopt_np.kernels", "lopt_np.kernels.cpu",
            "lopt_np.kernels.cuda", "lopt_np.backends", "lopt_np.data"]

setup(
    name="lopt_np",
    version="0.2.0",
    description="λOpt (KDD'19): learned fine-grained L2 regularization for MF-BPR, "
                "hand-derived hypergradients in NumPy and Numba",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    python_requires=">=3.10",
    # the top-level folder cli/ is installed as lopt_np.cli (no top-level package named cli)
    packages=PACKAGES + ["lopt_np.cli"],
    package_dir={"lopt_np.cli": "cli"},
    install_requires=["numpy>=1.24", "numba>=0.59", "scipy>=1.10", "pandas>=2.0", "click>=8.1"],
    extras_require={
        # numba-cuda: the CUDA kernels' tests run in its simulator; nvidia-cuda-nvrtc lets the
        # PTX test compile every kernel with the real compiler (where NVVM is installed);
        # matplotlib: the tests of `lopt plot`; hypothesis: the loaders' property tests
        "test": ["pytest>=7", "numba-cuda>=0.20", "nvidia-cuda-nvrtc>=13,<14", "matplotlib>=3.7",
                 "hypothesis>=6"],
        "plot": ["matplotlib>=3.7"],
        "cuda": ["numba-cuda>=0.20"],
        "parquet": ["pyarrow>=14"],
        # peers timed by benchmarks/bench_epoch.py only; never imported by lopt_np
        "bench": ["torch==2.13.0", "implicit==0.7.3"],
    },
    entry_points={"console_scripts": ["lopt=lopt_np.cli.main:main"]},
)
