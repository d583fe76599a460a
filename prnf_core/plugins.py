"""The plugin manager and the algorithm registry the core owns.

Algorithms come only from plugins: modules registered in the ``prnf`` entry-point group
(the built-in ``prnf_algorithms`` included) that implement ``prnf_register_algorithms``.
Set ``PRNF_DISABLE_PLUGIN_AUTOLOAD=1`` to load no entry points (tests then register their own).
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import inspect
import logging
import os

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
        return str(inspect.signature(self.cls.__init__)).replace("(self, ", "(")


def get_plugin_manager(autoload=None):
    """Build a fresh plugin manager with the ``prnf`` hook specs and the installed plugins.

    Plugins whose import fails are logged and skipped: the rest of PRNF keeps working.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    pm.broken = {}
    if autoload is None:
        autoload = not os.environ.get(DISABLE_ENV)
    if autoload:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            _load_entry_point(pm, ep)
    return pm


def _load_entry_point(pm, ep):
    dist = (ep.dist.name, ep.dist.version) if ep.dist is not None else ("unknown", "")
    if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
        return
    try:
        plugin = ep.load()
    except Exception as exc:  # a broken third-party package must not break PRNF
        pm.broken[ep.name] = (dist[0], exc)
        log.warning("plugin '%s' from %s failed to import and is skipped: %s", ep.name, dist[0], exc)
        return
    pm.register(plugin, name=ep.name)
    pm.distributions = getattr(pm, "distributions", {})
    pm.distributions[ep.name] = dist


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
    """Algorithm name -> :class:`Algorithm` and recipe name -> :class:`Recipe`, validated
    when built."""

    def __init__(self, pm):
        from .nodes import AlgorithmNode
        self.algorithms, self.recipes = {}, {}
        dists = getattr(pm, "distributions", {})
        for impl in pm.hook.prnf_register_algorithms.get_hookimpls():
            dist, version = dists.get(impl.plugin_name, (impl.plugin_name, ""))
            for cls in impl.function() or []:
                self._add(cls, dist, version, AlgorithmNode)
        for impl in pm.hook.prnf_register_recipes.get_hookimpls():
            dist = dists.get(impl.plugin_name, (impl.plugin_name, ""))[0]
            for name, build in (impl.function() or {}).items():
                self._add_recipe(name, build, dist)
        self.broken = dict(getattr(pm, "broken", {}))

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


@functools.lru_cache(maxsize=1)
def get_registry():
    """The process-wide registry of installed algorithms (built on first use)."""
    return Registry(get_plugin_manager())


def reset_registry():
    """Forget the cached registry (after installing plugins, or in tests)."""
    get_registry.cache_clear()
