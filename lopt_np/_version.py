"""The version of lopt_np, in one place (the package and its metadata read it)."""

__version__ = "0.3.0"
