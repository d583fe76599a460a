"""Network building blocks (spipy's ``phmodel``).

``pInput``, ``pOutput`` and ``pMerge`` live in the core; every algorithm (``ERA``, ``HIO``,
``DM``, ``RAAR``, ``HPR`` and any plugin's) is looked up in the plugin registry on access::

    from prnf_core import phmodel
    era = phmodel.ERA(100, support_size=85).after(inp)
"""
from __future__ import annotations

from .nodes import pInput, pMerge, pOutput
from .plugins import get_registry

__all__ = ["pInput", "pOutput", "pMerge"]


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    from .errors import PluginError
    try:
        return get_registry().get(name).cls
    except PluginError as exc:
        raise AttributeError(str(exc)) from None


def __dir__():
    return sorted(set(globals()) | set(get_registry().names()))
