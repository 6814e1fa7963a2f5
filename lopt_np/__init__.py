"""lopt_np: λOpt (Chen et al., KDD'19) with hand-derived gradients, NumPy reference and Numba
kernels. See README.rst and SPEC.md."""
from .data.split import Split
from .errors import (BackendUnavailableError, ConfigError, DataError, LoptError,
                     TrainingDivergedError)
from .evaluation import evaluate
from .trainer import LambdaOpt, Model, TrainConfig

__version__ = "0.1.0"

__all__ = ["LambdaOpt", "Model", "TrainConfig", "Split", "evaluate", "LoptError", "ConfigError",
           "DataError", "TrainingDivergedError", "BackendUnavailableError", "__version__"]
