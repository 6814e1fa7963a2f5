"""The ``lopt`` command-line app, installed as the package ``lopt_np.cli``."""
