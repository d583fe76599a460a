"""The plugin API: every name a third-party algorithm needs, and only those (``__all__``).

Three levels, from fastest to freest:

1. **Pointwise rules fused by the engine.** Write the math of one pixel as small
   ``@njit(inline="always")`` functions (the update, the modulus ratio, the support score;
   see :mod:`prnf_algorithms.rules` for their signatures), collect them in a :class:`Rules`
   at module level, name the constants they read (``Rules(..., constants=("weight_term",
   ...))``: the rules read ``c.weight_term``) and return them per iteration, by name, from
   :meth:`ProjectionAlgorithm.coefficients` (a tuple in their order works too, and is what
   rules without names read as ``c[i]``). The engine compiles its passes with them
   (cached beside your module) and runs them at built-in speed. The built-ins are rules
   too: ``rules.linear``, also named ``rules.hio``, ``rules.raar``...
2. **Whole-array steps.** :meth:`ProjectionAlgorithm.prepare_update` and
   :meth:`ProjectionAlgorithm.after_update` get an :class:`IterationView`: ``x``, the scaled
   ``y = P_M z``, the bool supports, the counters, ``modulus()``. :func:`fft_pair` gives FFTW
   plans for extra transforms.
3. **Full control.** Subclass :class:`AlgorithmNode` and write ``iterate(stream, ctx)``;
   :mod:`prnf_core.testing` builds streams from arrays and runs one node in tests.

Parameters are declared, once each, with :class:`Param`; support rules subclass
:class:`SupportRule` and are registered with the ``prnf_register_support_rules`` hook.
"""
from prnf_core import AlgorithmNode, ConfigError, Param, hookimpl

from . import rules
from .engine import IterationView, ProjectionAlgorithm
from .fft import get_pair as _get_pair
from .rules import Rules, amplitude_ratio, intensity_score, linear_update
from .shrinkwrap import smooth_modulus
from .support_rules import BySize, ByThreshold, SupportRule


def fft_pair(shape, dtype, threads=1):
    """A cached in-place FFTW pair of ``shape`` and complex ``dtype``: write ``pair.buf``, call
    ``pair.fft()`` / ``pair.ifft_unscaled()`` (unnormalised both ways: divide by the size)."""
    return _get_pair(tuple(shape), dtype, threads)


__all__ = [
    "AlgorithmNode", "BySize", "ByThreshold", "ConfigError", "IterationView", "Param",
    "ProjectionAlgorithm", "Rules", "SupportRule", "amplitude_ratio", "fft_pair", "hookimpl",
    "intensity_score", "linear_update", "rules", "smooth_modulus",
]
