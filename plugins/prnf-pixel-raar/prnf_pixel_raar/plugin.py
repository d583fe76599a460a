"""Entry point module: registers PixelRAAR with PRNF."""
from prnf_core import hookimpl


@hookimpl
def prnf_register_algorithms():
    from .pixel_raar import PixelRAAR
    return [PixelRAAR]
