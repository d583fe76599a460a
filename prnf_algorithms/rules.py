"""Pointwise rules: the math of one pixel, which the engine runs inside its parallel passes.

An algorithm's :class:`Rules` holds up to three small ``@njit(inline="always")`` functions,
all in the working precision (float32 or float64), each given the node's coefficients ``c``
of the iteration (:meth:`ProjectionAlgorithm.coefficients`):

``update(xr, xi, er, ei, yr, yi, inside, outside, c, m) -> (new_r, new_i)``
    The new iterate at a pixel from the iterate ``x``, ``y = P_M z`` and ``e = P_S y`` (``y``
    with the support constraint on the new support, 0 off it). ``inside`` is 1 and
    ``outside`` 0 where the pixel takes the support rule, the other way round elsewhere;
    ``m`` is the node's pixel map at the pixel (0 without one).
``modulus(a, model, c) -> ratio``
    The factor applied to ``F`` on a measured pixel, from the measured amplitude ``a`` and
    the model amplitude ``model = sqrt(|F|^2 + b^2) > 0`` (background ``b``); ``a / model``
    is the projection onto the measured amplitudes.
``score(yr, yi, c) -> value``
    The shrinkwrap score of ``y`` at a pixel (non-negative; larger is kept first).

A Python number written in a rule is float64 and would turn float32 arithmetic into float64
(and slow it down): constants come in through ``c``. Name them once, beside the rules:
``Rules(..., constants=("weight_term", "half_step"))``; the rules then read
``c.weight_term``, ``coefficients(view)`` returns ``{"weight_term": ..., ...}`` and the
engine packs the values, in the working precision, into a named tuple in the declared order
(Numba compiles ``c.weight_term`` to the same code as ``c[4]``). With the built-ins' linear
update the names start with its four, :data:`LINEAR` (declared for you). Rules that declare
no names read ``c[i]`` of the tuple ``coefficients(view)`` returns, as before; a tuple in the
declared order is taken by named rules too.

:func:`fuse` compiles the engine's pass templates (``kernels``) with a rule set into cached
parallel kernels. The kernels' source is generated into the namespace of the module that
defines the rules and compiled as if it were in that module's file, so Numba's disk cache
keeps them beside the plugin: a plugin's second process starts from the cache. Their names
carry a digest of the templates and the rules, so that a change to either compiles afresh.
"""
from __future__ import annotations

import collections
import hashlib
import inspect
import os
import sys
from collections.abc import Mapping

from numba import njit

from prnf_core import ConfigError

from . import kernels
from .config import PARALLEL


#: The linear update's coefficients, in the order it reads them (``c[0]`` to ``c[3]``): ``x <-
#: a_in x + b_in e`` on the support, ``a_out x + b_out y`` off it.
LINEAR = ("a_in", "b_in", "a_out", "b_out")


@njit(inline="always")
def linear_update(xr, xi, er, ei, yr, yi, inside, outside, c, m):
    """``c[0] x + c[1] e`` on the support, ``c[2] x + c[3] y`` off it (every built-in)."""
    return (inside * (c[0] * xr + c[1] * er) + outside * (c[2] * xr + c[3] * yr),
            inside * (c[0] * xi + c[1] * ei) + outside * (c[2] * xi + c[3] * yi))


def linear_keeps_e(c):
    """Whether :func:`linear_update` gives ``e`` on the support for coefficients ``c``."""
    return c[0] == 0 and c[1] == 1


@njit(inline="always")
def amplitude_ratio(a, model, c):
    """The projection onto the measured amplitudes: ``F <- (a / model) F``."""
    return a / model


@njit(inline="always")
def intensity_score(yr, yi, c):
    """``|y|^2``: the support keeps the brightest pixels of ``y``."""
    return yr * yr + yi * yi


_PASSES = {
    "modulus": ("modulus_pass", "modulus", "execute, plans, buf, amp, measured, bins, bg, "
                "scratch, err_part, shell_part"),
    "score": ("score_pass", "score", "execute, plan, y, scale, eligible, floor, cand_index, "
              "cand_key, cand_count, image"),
    "score_image": ("score_image", "score", "y, scale, eligible, score, nchunks"),
    "update": ("update_pass", "update", "execute, plan, x, y, scale, hpr_gamma, constraint, "
               "feedback, pre_out, state, est, held, lean, pmap, sums_part"),
}


class Rules:
    """An algorithm's pointwise rules (see the module docstring); the ones not given are the
    built-ins. ``keeps_e(c)`` says, for coefficients ``c``, whether ``update`` gives ``e``
    where ``inside`` (the engine then skips storing the estimate); leave it None when unsure.
    ``pixel_map``: whether ``update`` reads ``m`` (the node's :meth:`pixel_map`).
    ``constants``: the names of the coefficients the rules read as ``c.name`` (after the
    linear update's :data:`LINEAR`, added in front when ``update`` is the built-in); None:
    the rules read ``c[i]`` of a plain tuple. :attr:`constants` holds every name in order.
    Build one at module level, as the plugin's kernels are compiled in its module."""

    def __init__(self, name, update=None, modulus=None, score=None, keeps_e=None,
                 pixel_map=False, constants=None):
        if not name.isidentifier():
            raise ValueError(f"Rules name {name!r}: give a Python identifier")
        self.name = name
        self.update = update or linear_update
        self.modulus = modulus or amplitude_ratio
        self.score = score or intensity_score
        self.keeps_e = keeps_e or (linear_keeps_e if update is None else (lambda c: False))
        self.pixel_map = bool(pixel_map)
        self._kernels = None
        #: the names of the coefficients in the order the kernels take them (None: unnamed)
        self.constants = LINEAR if update is None else None
        #: the named tuple the kernels get, or None for a plain tuple (no names declared)
        self.named = None
        if constants is not None:
            self.constants = self._names(constants, update is None)
            self.named = self._named_tuple()

    def _names(self, constants, linear):
        names = (constants.replace(",", " ").split() if isinstance(constants, str)
                 else list(constants))
        if linear and tuple(names[:len(LINEAR)]) != LINEAR:
            names = list(LINEAR) + names            # the linear update reads these first
        for name in names:
            if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
                raise ValueError(f"Rules {self.name!r}: constant {name!r} is not a name (give "
                                 "Python identifiers not starting with '_')")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"Rules {self.name!r}: constants named twice: {', '.join(repeated)}"
                             + (f" ({', '.join(LINEAR)} come first: the linear update reads "
                                "them)" if set(repeated) & set(LINEAR) else ""))
        return tuple(names)

    def _named_tuple(self):
        """The named tuple class of the constants, set in the rules' module under its own
        name: Numba's disk cache finds a compiled kernel by its argument types, and keeps a
        named tuple's class by module and name (a class it cannot find again would compile
        afresh in every process)."""
        module = _home(self).__module__
        typename = f"_{self.name}_constants"
        cls = collections.namedtuple(typename, self.constants, module=module)
        home = sys.modules.get(module)
        if home is not None:
            setattr(home, typename, cls)
        return cls

    def pack(self, coefficients, dtype):
        """``coefficients`` (what :meth:`ProjectionAlgorithm.coefficients` returns: a mapping
        of the declared names, or a sequence in their order) as the kernels take them: each
        a ``dtype`` scalar, in a named tuple when names were declared, else a tuple."""
        if isinstance(coefficients, Mapping):
            if self.constants is None:
                raise ConfigError(f"Rules {self.name!r} declare no constants: return a tuple "
                                  "from coefficients(view), or declare Rules(..., "
                                  f"constants=({', '.join(map(repr, coefficients))}))")
            missing = [n for n in self.constants if n not in coefficients]
            unknown = [n for n in coefficients if n not in self.constants]
            if missing or unknown:
                raise ConfigError(f"Rules {self.name!r}: coefficients(view) "
                                  + "; ".join(([f"lacks {', '.join(missing)}"] if missing else [])
                                              + ([f"gives unknown {', '.join(map(str, unknown))}"]
                                                 if unknown else []))
                                  + f" (the constants: {', '.join(self.constants)})")
            coefficients = [coefficients[n] for n in self.constants]
        values = tuple(dtype(c) for c in coefficients)
        if self.named is None:
            return values
        if len(values) != len(self.constants):
            raise ConfigError(f"Rules {self.name!r}: coefficients(view) gave {len(values)} "
                              f"values for the {len(self.constants)} constants "
                              f"{', '.join(self.constants)}")
        return self.named._make(values)

    def __repr__(self):
        return f"Rules({self.name!r})"

    @property
    def kernels(self):
        """The fused kernels, ``{"modulus", "score", "score_image", "update"}``, compiled (or
        loaded from the cache) on first use."""
        if self._kernels is None:
            self._kernels = fuse(self)
        return self._kernels


def _home(rules):
    """The module that defines the rules: the first rule function that is not a built-in."""
    for fn in (rules.update, rules.modulus, rules.score):
        if fn.py_func.__module__ != __name__:
            return fn.py_func
    return linear_update.py_func


def _digest(rules):
    folder = os.path.dirname(kernels.__file__)
    h = hashlib.sha1()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".py"):
            with open(os.path.join(folder, name), "rb") as f:
                h.update(f.read())
    for fn in (rules.update, rules.modulus, rules.score):
        h.update(f"{fn.py_func.__module__}.{fn.py_func.__qualname__}".encode())
    if rules.named is not None:
        h.update(" ".join(rules.constants).encode())
    return h.hexdigest()[:10]


def fuse(rules):
    """Compile the pass templates with ``rules`` into parallel kernels, cached on disk."""
    home = _home(rules)
    namespace = {"__name__": home.__module__, "_kernels": kernels, "_update": rules.update,
                 "_modulus": rules.modulus, "_score": rules.score}
    tag = f"_prnf_{rules.name}_{_digest(rules)}"
    compiled = {}
    for key, (template, rule, args) in _PASSES.items():
        source = (f"def {tag}_{key}(coef, {args}):\n"
                  f"    return _kernels.{template}(_{rule}, coef, {args})\n")
        exec(compile(source, inspect.getfile(home), "exec"), namespace)   # noqa: S102
        compiled[key] = njit(**PARALLEL)(namespace[f"{tag}_{key}"])
    return compiled


#: Every built-in algorithm (ERA, HIO, DM, RAAR, HPR): the linear update with its own
#: coefficients, the amplitude projection and the intensity score.
linear = Rules("linear")
era = hio = dm = raar = hpr = linear
