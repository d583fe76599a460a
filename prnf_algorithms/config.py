"""One place for the Numba flags every kernel uses."""
import os

#: ``parallel``: kernels spread chunks over threads; ``cache``: compiled code kept on disk so a
#: second process starts fast; ``fastmath``: lets sums vectorise (no NaN/inf reach kernels).
JIT = {"parallel": True, "cache": True, "fastmath": True, "nogil": True}
if os.environ.get("PRNF_NO_JIT_CACHE"):
    JIT["cache"] = False
