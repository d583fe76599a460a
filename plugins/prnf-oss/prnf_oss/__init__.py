"""OSS, oversampling smoothness, as a PRNF plugin."""
from .oss import OSS

__all__ = ["OSS"]
