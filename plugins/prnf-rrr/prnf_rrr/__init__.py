"""RRR, relaxed reflect-reflect, as a PRNF plugin."""
from .rrr import RRR

__all__ = ["RRR"]
