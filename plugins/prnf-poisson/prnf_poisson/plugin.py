"""Entry point module: registers PoissonHIO with PRNF."""
from prnf_core import hookimpl


@hookimpl
def prnf_register_algorithms():
    from .poisson import PoissonHIO
    return [PoissonHIO]
