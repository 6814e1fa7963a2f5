"""lopt_np's own exception types. The CLI turns each into one ``Error: …`` line."""

import zipfile
import zlib


MAX_SHOWN = 40  # characters of a user-given value echoed in an error message


def shown(value):
    """``repr(value)`` capped at :data:`MAX_SHOWN` characters, for error messages (which never
    embed unbounded user data)."""
    text = repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


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


# what ``np.load`` of a damaged or truncated .npz raises (zlib.error: a garbled compressed member)
NPZ_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
