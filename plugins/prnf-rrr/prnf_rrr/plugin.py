"""Entry point module: registers RRR with PRNF."""
from prnf_core import hookimpl


@hookimpl
def prnf_register_algorithms():
    from .rrr import RRR
    return [RRR]
