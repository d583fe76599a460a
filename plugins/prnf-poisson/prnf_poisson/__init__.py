"""HIO with a Poisson-likelihood modulus step, as a PRNF plugin written against the SDK alone."""
from .poisson import PoissonHIO

__all__ = ["PoissonHIO"]
