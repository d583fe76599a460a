"""Declared parameters: one :class:`Param` per algorithm parameter.

The declaration is the single place that says what a parameter is: it binds the node's
arguments (positional order included), checks them with errors naming the bad value and the
accepted range, decides what a model file stores, and describes the parameter in ``repr``,
``prnf plugins`` and the project ini keys.
"""
from __future__ import annotations

import dataclasses
import inspect
import numbers

import numpy as np

from .errors import ConfigError

REQUIRED = inspect.Parameter.empty
KINDS = ("float", "int", "bool", "text", "array")


@dataclasses.dataclass(frozen=True)
class Param:
    """One parameter of an algorithm.

    ``kind``: "float", "int", "bool", "text" or "array" (an array, stored in model files);
    ``low``/``high`` bound numbers (``low_open``/``high_open`` exclude the ends);
    ``optional``: None is also accepted; ``keyword``: only by name, never by position (after
    the positional ones and ``name``); ``doc``: one line for ``prnf plugins``.
    """

    name: str
    default: object = REQUIRED
    kind: str = "float"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    keyword: bool = False
    doc: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Param {self.name!r}: kind {self.kind!r} is not one of {KINDS}")

    @property
    def required(self):
        return self.default is REQUIRED

    def check(self, value, owner=""):
        """The value as stored (ints stay ints, numpy scalars become Python ones); a
        ConfigError names the parameter, the value and what is accepted."""
        if value is None and (self.optional or self.default is None):
            return None
        checker = getattr(self, f"_check_{self.kind}")
        ok, value = checker(value)
        if ok and self.kind in ("float", "int"):
            ok = self._in_range(value)
        elif ok and self.kind == "array" and (self.low is not None or self.high is not None):
            ok = bool(np.all(np.isfinite(value))) and self._in_range(value.min()) \
                and self._in_range(value.max())
        if not ok:
            where = f"{owner}: " if owner else ""
            shown = f"array of shape {value.shape}" if isinstance(value, np.ndarray) else repr(value)
            raise ConfigError(f"{where}{self.name}={shown}: give {self.accepted()}")
        return value

    def accepted(self):
        """What the parameter accepts, in words: 'a number in (0, 1]', 'True or False'."""
        if self.kind == "bool":
            text = "True or False"
        elif self.kind in ("text", "array"):
            text = "text" if self.kind == "text" else "an array"
            if self.kind == "array" and self.low is not None and self.high is not None:
                text += f" of values in [{self.low}, {self.high}]"
        else:
            word = "an integer" if self.kind == "int" else "a number"
            if self.low is not None and self.high is not None:
                text = (f"{word} in {'(' if self.low_open else '['}{self.low}, {self.high}"
                        f"{')' if self.high_open else ']'}")
            elif self.low is not None:
                text = f"{word} {'>' if self.low_open else '>='} {self.low}"
            else:
                text = word
        return text + (" or None" if self.optional or self.default is None else "")

    def describe(self):
        """``name: accepted, default d; doc`` for listings."""
        default = "required" if self.required else f"default {self.default!r}"
        return f"{self.name}: {self.accepted()}, {default}" + (f"; {self.doc}" if self.doc else "")

    def _in_range(self, v):
        if self.low is not None and not (v > self.low if self.low_open else v >= self.low):
            return False
        return self.high is None or (v < self.high if self.high_open else v <= self.high)

    @staticmethod
    def _check_float(v):
        ok = isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_))
        return (ok and bool(np.isfinite(v))), (v.item() if isinstance(v, np.generic) else v)

    @staticmethod
    def _check_int(v):
        ok = isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
        return ok, (int(v) if ok else v)

    @staticmethod
    def _check_bool(v):       # 'no' is truthy: a text would silently switch a flag on
        return isinstance(v, (bool, np.bool_)), (bool(v) if isinstance(v, np.bool_) else v)

    @staticmethod
    def _check_text(v):
        return isinstance(v, str), v

    @staticmethod
    def _check_array(v):
        try:
            array = np.asarray(v)
        except Exception:
            return False, v
        return array.dtype.kind in "biuf" and array.ndim > 0, array


def bind(owner, declared, args, kwargs):
    """Match ``args``/``kwargs`` to the ``declared`` parameters (positional ones in order,
    then ``name``); returns ``(values, name, stored)``: every value, the node's name and the
    values a model file keeps (required and positional ones, others when not default)."""
    positional = [p for p in declared if not p.keyword]
    kwargs = dict(kwargs)
    name = kwargs.pop("name", None)
    if len(args) > len(positional) + 1:
        raise ConfigError(f"{owner} takes at most {len(positional) + 1} positional arguments "
                          f"({', '.join(p.name for p in positional)}, name); got {len(args)}")
    if len(args) == len(positional) + 1:
        if name is not None:
            raise ConfigError(f"{owner}: name given twice")
        name = args[-1]
        args = args[:-1]
    given = dict(zip((p.name for p in positional), args))
    for key in kwargs:
        if key in given:
            raise ConfigError(f"{owner}: {key} given twice (by position and by name)")
    known = {p.name for p in declared}
    unknown = sorted(set(kwargs) - known)
    if unknown:
        raise ConfigError(f"{owner} has no parameter {', '.join(unknown)}; its parameters: "
                          f"{', '.join(p.name for p in declared)}")
    given.update(kwargs)
    values, stored = {}, {}
    for p in declared:
        if p.name not in given:
            if p.required:
                raise ConfigError(f"{owner} needs {p.name} ({p.accepted()})")
            values[p.name] = p.default
            if not p.keyword:
                stored[p.name] = p.default
            continue
        values[p.name] = p.check(given[p.name], owner)
        if not p.keyword or _differs(values[p.name], p.default):
            stored[p.name] = values[p.name]
    if name is not None and not isinstance(name, str):
        raise ConfigError(f"{owner}: name={name!r}: give text")
    return values, name, stored


def _differs(value, default):
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return True
    return value != default or type(value) is not type(default)


def signature(declared):
    """An :class:`inspect.Signature` of the declared parameters (for help and listings)."""
    P = inspect.Parameter
    positional = [P(p.name, P.POSITIONAL_OR_KEYWORD, default=p.default)
                  for p in declared if not p.keyword]
    keyword = [P(p.name, P.KEYWORD_ONLY, default=p.default) for p in declared if p.keyword]
    # required positionals come first in every declaration; 'name' closes the positional list
    return inspect.Signature([*positional, P("name", P.POSITIONAL_OR_KEYWORD, default=None),
                              *keyword])
