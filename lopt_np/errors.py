"""lopt_np's own exception types. The CLI turns each into one ``Error: …`` line."""


class LoptError(Exception):
    """Base class of every error lopt_np raises on purpose."""


class ConfigError(LoptError, ValueError):
    """An invalid option or hyperparameter value."""


class DataError(LoptError):
    """Input data that cannot be read or used (missing file, columns, values, empty result)."""


class TrainingDivergedError(LoptError, FloatingPointError):
    """NaN or inf appeared in the parameters, the optimizer state or Λ."""


class BackendUnavailableError(LoptError):
    """The requested compute backend (e.g. CUDA) cannot run here."""


class TrainingInterrupted(LoptError):
    """A signal (SIGINT, SIGTERM) stopped training before it had anything to keep."""
