"""Numba's on-disk cache of the CPU kernels, invalidated by the shared formulas too.

Numba keys a cached kernel on its own source file only, so a kernel compiled with an older
``kernels/elementwise.py`` inlined, or a compiled step (``step.py``) with an older kernel of
``optimizers.py`` linked in, would be loaded unchanged after that file changed. The locator
below stamps the kernels of this folder with a digest of every file they can call into (the
shared formulas, the optimizer codes, the step order and every module of this folder); it is put in front of
Numba's own locators, for this folder's files only, and defers to ``NUMBA_CACHE_DIR`` where
one is set.
"""

import hashlib
import os

from numba.core import caching, config

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = (
    os.path.join(os.path.dirname(HERE), "elementwise.py"),
    os.path.join(os.path.dirname(HERE), "__init__.py"),
    os.path.join(os.path.dirname(HERE), "step_order.py"),
    *sorted(os.path.join(HERE, n) for n in os.listdir(HERE) if n.endswith(".py")),
)


def _digest():
    h = hashlib.sha256()
    for path in SHARED:
        with open(path, "rb") as fh:
            h.update(fh.read())
    return h.hexdigest()


DIGEST = _digest()


def _locator(base):
    class KernelCacheLocator(base):
        """``base``'s locator, whose stamp also covers the shared formula files."""

        def get_source_stamp(self):
            return (super().get_source_stamp(), DIGEST)

        @classmethod
        def from_function(cls, py_func, py_file):
            if os.path.dirname(os.path.abspath(py_file)) != HERE:
                return None
            if (base is caching.UserProvidedCacheLocator) != bool(config.CACHE_DIR):
                return None
            return super().from_function(py_func, py_file)

    KernelCacheLocator.__name__ = f"Kernel{base.__name__}"
    return KernelCacheLocator


def install():
    """Put the locators in front of Numba's (once; a no-op where Numba's caching differs)."""
    classes = getattr(caching.CacheImpl, "_locator_classes", None)
    if classes is None or any(c.__name__.startswith("Kernel") for c in classes):
        return
    bases = [
        b
        for b in (
            caching.UserProvidedCacheLocator,
            caching.InTreeCacheLocator,
            caching.UserWideCacheLocator,
        )
        if b in classes
    ]
    classes[:0] = [_locator(b) for b in bases]


install()


def is_cold():
    """True when the on-disk cache holds no compiled kernel of this folder yet (the next run
    compiles them: about a minute)."""
    folder = (
        caching.UserProvidedCacheLocator(is_cold, __file__).get_cache_path()
        if config.CACHE_DIR
        else os.path.join(HERE, "__pycache__")
    )
    try:
        return not any(name.endswith(".nbi") for name in os.listdir(folder))
    except OSError:
        return True
