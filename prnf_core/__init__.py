"""PRNF core: phasing networks, their runner, model files, MPI merging and the plugin registry."""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("prnf")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

from . import phexec, phmodel
from .errors import (ConfigError, DataFileError, GraphError, ModelFileError, NodeError,
                     PluginError, PRNFError, RankError)
from .hookspecs import hookimpl
from .nodes import AlgorithmNode, check_range, pInput, pMerge, pOutput
from .phexec import Runner
from .plugins import get_plugin_manager, get_registry, reset_registry
from .stream import RunContext, Stream

__all__ = [
    "__version__", "phexec", "phmodel", "Runner", "hookimpl", "AlgorithmNode", "check_range",
    "pInput", "pMerge", "pOutput", "Stream", "RunContext", "get_plugin_manager", "get_registry",
    "reset_registry", "PRNFError", "ConfigError", "DataFileError", "GraphError", "ModelFileError",
    "NodeError", "PluginError", "RankError",
]
