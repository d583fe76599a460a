"""One place for the Numba flags every kernel uses."""
import os

#: ``cache``: compiled code kept on disk so a second process starts fast; ``fastmath``: lets
#: sums vectorise (no NaN/inf reach kernels); ``error_model="numpy"``: no Python-style
#: zero-division checks, which otherwise block vectorisation (we guard divisions ourselves).
SERIAL = {"cache": True, "fastmath": True, "error_model": "numpy", "nogil": True}
#: Drivers split the pixels into one chunk per thread.
PARALLEL = {**SERIAL, "parallel": True}
if os.environ.get("PRNF_NO_JIT_CACHE"):
    SERIAL["cache"] = PARALLEL["cache"] = False
