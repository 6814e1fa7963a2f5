"""Reference layer: plain NumPy, one function per SPEC formula, readable as the paper.

Every fast kernel in ``lopt_np.kernels`` is tested against these functions, and these functions
are tested against central finite differences (SPEC §6).
"""
