"""The plugin manager and the algorithm registry the core owns.

Algorithms come only from plugins: modules registered in the ``prnf`` entry-point group
(the built-in ``prnf_algorithms`` included) that implement ``prnf_register_algorithms``.
Set ``PRNF_DISABLE_PLUGIN_AUTOLOAD=1`` to load no entry points (tests then register their own).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
import inspect
import logging
import os
import signal
import threading
import time

import pluggy

from . import hookspecs
from .errors import PluginError

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "prnf"
DISABLE_ENV = "PRNF_DISABLE_PLUGIN_AUTOLOAD"


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A registered algorithm: its class and the distribution that provides it."""

    name: str
    cls: type
    distribution: str
    version: str

    def signature(self):
        return str(inspect.signature(self.cls))

    def parameters(self):
        """The declared parameters (``prnf_core.Param``), common ones first."""
        declared = getattr(self.cls, "declared", None)
        return declared() if declared else ()


def get_plugin_manager(autoload=None):
    """A fresh :class:`PluginSet`: the ``prnf`` hook specs and the installed plugins (what was
    loaded, from where, and what failed); ``.pm`` is pluggy's manager."""
    return PluginSet(autoload)


class PluginSet:
    """The installed plugins: pluggy's manager with every ``prnf`` entry point registered,
    the distribution of each and the ones whose import failed (logged and skipped: the rest
    of PRNF keeps working). A hook implementation whose name matches no hook (a misspelt
    ``prnf_register_algorithm``, say) is an error, not silently ignored."""

    def __init__(self, autoload=None):
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.broken, self.distributions = {}, {}
        if autoload is None:
            autoload = not os.environ.get(DISABLE_ENV)
        if autoload:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                self._load(ep)
        self.check()

    def _load(self, ep):
        dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else ("unknown", "")
        if self.pm.get_plugin(ep.name) is not None or self.pm.is_blocked(ep.name):
            return
        try:
            with _import_deadline(ep.name):
                plugin = ep.load()
        # a broken third-party package must not break PRNF: one raising, calling sys.exit
        # (every command once exited 3 without a word) or blocking at import is skipped
        except (Exception, SystemExit) as exc:
            self.broken[ep.name] = (dist[0], _failure("failed to import", exc))
            log.warning("plugin '%s' from %s failed to import and is skipped: %s", ep.name,
                        dist[0], _describe(exc))
            return
        self.pm.register(plugin, name=ep.name)
        self.distributions[ep.name] = dist

    def register(self, plugin, name, distribution=None):
        """Register a plugin object by hand (tests, notebooks)."""
        self.pm.register(plugin, name=name)
        self.distributions[name] = (distribution or name, "")
        self.check()

    def check(self):
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            names = ", ".join(sorted(hookspecs_names()))
            raise PluginError(f"{exc}; PRNF's hooks are: {names}") from None


#: Seconds a plugin's import may take before it counts as blocked (PRNF_PLUGIN_IMPORT_TIMEOUT)
IMPORT_TIMEOUT = 60.0


class ImportTimeout(Exception):
    """A plugin's import did not finish in time (it waits for input, a lock, the network)."""


@contextlib.contextmanager
def _import_deadline(name):
    """Interrupt an import that takes longer than the timeout (SIGALRM: the main thread of
    a POSIX process only; elsewhere the import runs unguarded). A timer the program set
    itself is restored."""
    seconds = _timeout()
    usable = (hasattr(signal, "setitimer") and seconds > 0
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return
    def expired(signum, frame):
        raise ImportTimeout(f"its import did not finish within {seconds:g} s (blocked?); "
                            "set PRNF_PLUGIN_IMPORT_TIMEOUT to wait longer")
    previous = signal.signal(signal.SIGALRM, expired)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:          # the program's own alarm, less the time the import took
            signal.setitimer(signal.ITIMER_REAL, max(outer - (time.monotonic() - start), 1e-3))


def _timeout():
    text = os.environ.get("PRNF_PLUGIN_IMPORT_TIMEOUT")
    try:
        return float(text) if text else IMPORT_TIMEOUT
    except ValueError:
        log.warning("PRNF_PLUGIN_IMPORT_TIMEOUT=%r is not a number of seconds; using %g",
                    text, IMPORT_TIMEOUT)
        return IMPORT_TIMEOUT


def _describe(exc):
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r})"
    return f"{type(exc).__name__}: {exc}"


def _failure(what, exc):
    """What ``prnf plugins`` lists for a broken plugin."""
    return PluginError(f"{what}: {_describe(exc)}")


def hookspecs_names():
    return [n for n in dir(hookspecs) if n.startswith("prnf_")]


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A registered recipe: a function building a network from the data alone."""

    name: str
    build: object
    distribution: str

    @property
    def summary(self):
        return (inspect.getdoc(self.build) or "").split("\n")[0]

    @property
    def run_options(self):
        return dict(getattr(self.build, "run_options", {}))


class Registry:
    """Algorithm name -> :class:`Algorithm`, recipe name -> :class:`Recipe` and support rule
    name -> class, validated when built from a :class:`PluginSet`."""

    def __init__(self, plugins):
        from .nodes import AlgorithmNode
        if isinstance(plugins, pluggy.PluginManager):       # a manager built by hand
            pm, dists, self.broken = plugins, {}, {}
        else:
            pm, dists, self.broken = plugins.pm, plugins.distributions, dict(plugins.broken)
        self.algorithms, self.recipes, self.support_rules = {}, {}, {}
        for impl, dist, version in _impls(pm.hook.prnf_register_algorithms, dists):
            for cls in self._returned(impl, dist, list, "a list of algorithm classes"):
                self._add(cls, dist, version, AlgorithmNode)
        for impl, dist, _ in _impls(pm.hook.prnf_register_recipes, dists):
            for name, build in self._returned(impl, dist, dict, "{name: recipe function}").items():
                self._add_recipe(name, build, dist)
        for impl, dist, _ in _impls(pm.hook.prnf_register_support_rules, dists):
            for name, cls in self._returned(impl, dist, dict, "{name: SupportRule class}").items():
                self._add_named(self.support_rules, "support rule", name, cls, dist)

    def _returned(self, impl, dist, kind, what):
        """What a hook returned; a hook that raises (or calls sys.exit) marks its plugin
        broken and gives nothing: it once was a raw traceback in every command."""
        try:
            value = impl.function()
        except (Exception, SystemExit) as exc:
            hook = impl.function.__name__
            self.broken[impl.plugin_name] = (dist, _failure(f"its hook {hook}() raised", exc))
            log.warning("plugin '%s' from %s is skipped: its hook %s() raised %s",
                        impl.plugin_name, dist, hook, _describe(exc))
            return kind()
        return _checked(value, impl, dist, kind, what)

    def _add_named(self, table, kind, name, value, dist):
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"plugin {dist} registered {kind} {name!r}; give a name that is "
                              "a Python identifier")
        if name in table:
            raise PluginError(f"{kind} '{name}' is registered twice: by {table[name][1]} and "
                              f"by {dist}; uninstall one")
        table[name] = (value, dist)

    def support_rule(self, name):
        """The support rule class called ``name``; a clear error lists the installed ones."""
        return _lookup(self.support_rules, name, "support rule")[0]

    def _add_recipe(self, name, build, dist):
        if not callable(build) or not isinstance(name, str) or not name:
            raise PluginError(f"plugin {dist} registered recipe {name!r} = {build!r}; give "
                              "{name: function(config) -> (inputs, output)}")
        if name in self.recipes:
            raise PluginError(f"recipe '{name}' is registered twice: by "
                              f"{self.recipes[name].distribution} and by {dist}; uninstall one")
        self.recipes[name] = Recipe(name, build, dist)

    def recipe(self, name):
        """The :class:`Recipe` called ``name``; a clear error lists the installed ones."""
        return _lookup(self.recipes, name, "recipe")

    def _add(self, cls, dist, version, base):
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"plugin {dist} registered {cls!r}, which is not a subclass of "
                              "prnf_core.AlgorithmNode")
        name = getattr(cls, "algorithm", None)
        if not isinstance(name, str) or not name.isidentifier():
            raise PluginError(f"plugin {dist} registered {cls.__name__} without a valid class "
                              "attribute 'algorithm' (the name users write, e.g. 'OSS')")
        if name in self.algorithms:
            other = self.algorithms[name].distribution
            raise PluginError(f"algorithm '{name}' is registered twice: by {other} and by {dist}; "
                              "uninstall one of them")
        self.algorithms[name] = Algorithm(name, cls, dist, version)

    def names(self):
        return sorted(self.algorithms)

    def get(self, name):
        """The :class:`Algorithm` called ``name``; a clear error lists the installed ones."""
        return _lookup(self.algorithms, name, "algorithm")

    def find(self, cls):
        for algo in self.algorithms.values():
            if algo.cls is cls:
                return algo
        return None


def _lookup(table, name, kind):
    try:
        return table[name]
    except KeyError:
        raise PluginError(f"unknown {kind} '{name}'; installed: "
                          f"{', '.join(sorted(table)) or 'none'} (see `prnf plugins`)") from None


def _impls(hook, dists):
    for impl in hook.get_hookimpls():
        dist, version = dists.get(impl.plugin_name, (impl.plugin_name, ""))
        yield impl, dist, version


def _checked(value, impl, dist, kind, what):
    """What a hook implementation returned, checked to be ``kind`` (a class returned where a
    list was due is the common slip)."""
    if value is None:
        return kind()
    if isinstance(value, (list, tuple)) and kind is list:
        return list(value)
    if not isinstance(value, kind):
        raise PluginError(f"plugin {dist}: {impl.function.__name__}() returned {value!r}; "
                          f"return {what}" + (f", e.g. [{value.__name__}]"
                                              if isinstance(value, type) and kind is list else ""))
    return value


@functools.lru_cache(maxsize=1)
def get_registry():
    """The process-wide registry of installed algorithms (built on first use)."""
    return Registry(PluginSet())


def reset_registry():
    """Forget the cached registry (after installing plugins, or in tests)."""
    get_registry.cache_clear()
