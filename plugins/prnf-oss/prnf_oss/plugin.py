"""Entry point module: registers OSS with PRNF."""
from prnf_core import hookimpl


@hookimpl
def prnf_register_algorithms():
    from .oss import OSS
    return [OSS]
