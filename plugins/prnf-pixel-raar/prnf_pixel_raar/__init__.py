"""RAAR with a relaxation per pixel, as a PRNF plugin written against the SDK alone."""
from .pixel_raar import PixelRAAR

__all__ = ["PixelRAAR"]
