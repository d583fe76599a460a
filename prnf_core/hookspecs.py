"""Every extension point of PRNF, as pluggy hook specifications (project name ``prnf``).

A plugin is a module (or object) with functions marked ``@hookimpl`` and is found through
the ``prnf`` entry-point group::

    [project.entry-points.prnf]
    my_methods = "my_package.plugin"
"""
from __future__ import annotations

import pluggy

PROJECT = "prnf"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def prnf_register_algorithms() -> list[type]:
    """Return the algorithm node classes this plugin provides.

    Called once by :func:`prnf_core.plugins.get_registry` when the registry is built. Each
    class must subclass :class:`prnf_core.nodes.AlgorithmNode` and carry a unique class-level
    ``algorithm`` name (the name users write: ``phmodel.<algorithm>(...)`` and in schedules).
    """


@hookspec
def prnf_register_recipes() -> dict:
    """Return ``{name: recipe}``: phasing recipes this plugin provides.

    A recipe builds a whole phasing network from the data alone: ``recipe(config,
    positivity=False)`` takes an input node's config dict (``pattern_path``, ``mask_path``,
    ``center``, ``support_path``...) and whether the object is real and non-negative, and
    returns ``(input_nodes, output_node)``; ``iterations=N``, when the user gives it, sets
    the main algorithm's iterations; its docstring's first line is shown by
    ``prnf phase --help`` and ``prnf plugins``. ``prnf phase --recipe NAME`` runs it. Recipes
    also carry ``run_options`` (a dict of :meth:`Runner.run` keywords such as ``repeat``,
    ``keep_best`` and ``match``) as a function attribute when they have defaults.
    """


@hookspec
def prnf_register_support_rules() -> dict:
    """Return ``{name: class}``: support rules this plugin provides.

    A support rule decides each iteration how many pixels the support keeps and may rewrite
    the score image first (``prnf_algorithms.sdk.SupportRule``); nodes choose one with their
    ``support_rule="name"`` option. The built-ins are ``size`` and ``threshold``.
    """
