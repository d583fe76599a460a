"""The built-in algorithms' plugin module, loaded through the ``prnf`` entry point."""
from prnf_core import hookimpl


@hookimpl
def prnf_register_algorithms():
    from .algorithms import BUILTIN
    return list(BUILTIN)


@hookimpl
def prnf_register_recipes():
    from .recipes import RECIPES
    return dict(RECIPES)


@hookimpl
def prnf_register_support_rules():
    from .support_rules import BUILTIN
    return dict(BUILTIN)
