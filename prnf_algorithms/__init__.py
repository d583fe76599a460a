"""Built-in PRNF algorithms (ERA, HIO, DM, RAAR, HPR); plugin authors use :mod:`.sdk`."""
from . import _threads  # noqa: F401  (must run before numba or pyfftw is imported)
from .algorithms import DM, ERA, HIO, HPR, RAAR
from .engine import IterativeProjection, ProjectionAlgorithm

__all__ = ["ERA", "HIO", "DM", "RAAR", "HPR", "ProjectionAlgorithm", "IterativeProjection"]
