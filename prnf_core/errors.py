"""The library's own error types: every failure a user can cause ends in one of these."""


class PRNFError(Exception):
    """Base class of every error PRNF raises on purpose."""


class ConfigError(PRNFError, ValueError):
    """A parameter, config key or input value is out of its accepted range."""


class DataFileError(PRNFError, OSError):
    """A pattern, mask or model file is missing, unreadable or of the wrong format."""


class GraphError(PRNFError, ValueError):
    """A phasing network is not a valid graph (cycle, dangling node, bad output...)."""


class ModelFileError(PRNFError, ValueError):
    """A model file is malformed, from a newer format, or names unknown algorithms."""


class PluginError(PRNFError, RuntimeError):
    """A plugin is broken, missing, or clashes with another plugin."""


class NodeError(PRNFError, RuntimeError):
    """A node failed while running; the message names the node and its parameters."""


class RankError(PRNFError, RuntimeError):
    """One or more MPI ranks failed; the message names the ranks and their errors."""


class ResourceError(PRNFError, MemoryError):
    """A run cannot fit in the memory available; refused before the allocation."""


def printable(text):
    """``text`` safe to print on a terminal or in a log: a name read from a model file may
    hold ANSI escapes or line breaks (they cleared the screen and forged log lines), which
    are shown escaped; plain names are unchanged."""
    text = str(text)
    return text if text.isprintable() else repr(text)[1:-1]
