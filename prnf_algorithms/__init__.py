"""Built-in PRNF algorithms (ERA, HIO, DM, RAAR, HPR) and helpers for plugin authors.

Plugin authors subclass :class:`IterativeProjection` and define ``rule`` (see
``engine.py``) to get the fused Numba kernels and FFTW plans for free.
"""
from . import _threads  # noqa: F401  (must run before numba or pyfftw is imported)
from .algorithms import DM, ERA, HIO, HPR, RAAR
from .engine import IterativeProjection

__all__ = ["ERA", "HIO", "DM", "RAAR", "HPR", "IterativeProjection"]
