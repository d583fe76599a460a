"""PRNF core: phasing networks, their runner, model files, MPI merging and the plugin registry.

Names are imported on first use (PEP 562), so that ``from prnf_core import hookimpl`` in a
plugin's entry-point module costs pluggy alone, not numpy, scipy and h5py.
"""
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version as _version

from .errors import (ConfigError, DataFileError, GraphError, ModelFileError, NodeError,
                     PluginError, PRNFError, RankError, ResourceError)
from .hookspecs import hookimpl

try:
    __version__ = _version("prnf")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

_LAZY = {
    "phexec": (".phexec", None), "phmodel": (".phmodel", None), "Runner": (".phexec", "Runner"),
    "AlgorithmNode": (".nodes", "AlgorithmNode"), "check_range": (".nodes", "check_range"),
    "pInput": (".nodes", "pInput"), "pMerge": (".nodes", "pMerge"),
    "pOutput": (".nodes", "pOutput"), "Param": (".params", "Param"),
    "Stream": (".stream", "Stream"), "RunContext": (".stream", "RunContext"),
    "get_plugin_manager": (".plugins", "get_plugin_manager"),
    "get_registry": (".plugins", "get_registry"), "reset_registry": (".plugins", "reset_registry"),
}

__all__ = [
    "__version__", "hookimpl", "PRNFError", "ConfigError", "DataFileError", "GraphError",
    "ModelFileError", "NodeError", "PluginError", "RankError", "ResourceError", *_LAZY,
]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'prnf_core' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = import_module(module, __name__)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)
