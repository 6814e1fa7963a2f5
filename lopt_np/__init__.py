"""lopt_np: λOpt (Chen et al., KDD'19) with hand-derived gradients, NumPy reference and Numba
kernels. See README.rst and SPEC.md."""

from .data.split import Split
from .errors import (
    BackendUnavailableError,
    ConfigError,
    DataError,
    LoptError,
    TrainingDivergedError,
    TrainingInterrupted,
)
from .evaluation import evaluate
from .model import Model, load
from .progress import Progress
from .trainer import LambdaOpt, TrainConfig

from ._version import __version__

__all__ = [
    "LambdaOpt",
    "Model",
    "TrainConfig",
    "Split",
    "Progress",
    "evaluate",
    "load",
    "LoptError",
    "ConfigError",
    "DataError",
    "TrainingDivergedError",
    "TrainingInterrupted",
    "BackendUnavailableError",
    "__version__",
]
