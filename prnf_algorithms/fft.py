"""FFTW plans through pyfftw: made once per (shape, dtype, threads), reused, wisdom on disk.

Forward is unnormalised and the inverse is *not* scaled by 1/N here: the algorithms fold
that scale into the update kernel, saving a pass over the array.
"""
from __future__ import annotations

import base64
import json
import logging
import os

from . import _threads  # noqa: F401  (thread environment before pyfftw loads its OpenMP)
import pyfftw

from prnf_core.fileutil import atomic_write, cache_dir

log = logging.getLogger(__name__)
_plans = {}
_wisdom_loaded = False


def _wisdom_file():
    return os.path.join(cache_dir(), "fftw_wisdom.json")


def planner_effort():
    """FFTW planner effort: ``PRNF_FFTW_EFFORT`` (default FFTW_MEASURE)."""
    return os.environ.get("PRNF_FFTW_EFFORT", "FFTW_MEASURE")


def load_wisdom():
    global _wisdom_loaded
    if _wisdom_loaded:
        return
    _wisdom_loaded = True
    try:
        with open(_wisdom_file()) as f:
            pyfftw.import_wisdom(tuple(base64.b64decode(w) for w in json.load(f)))
    except (OSError, ValueError, TypeError) as exc:
        log.debug("no FFTW wisdom loaded: %s", exc)


def save_wisdom():
    """Keep the planner's wisdom so a later process plans in milliseconds (JSON, no pickle)."""
    try:
        payload = [base64.b64encode(w).decode() for w in pyfftw.export_wisdom()]
        atomic_write(_wisdom_file(), json.dumps(payload).encode())
    except OSError as exc:
        log.debug("FFTW wisdom not saved: %s", exc)


class FFTPair:
    """In-place forward and inverse FFTW plans sharing one aligned buffer ``self.buf``."""

    def __init__(self, shape, dtype, threads):
        self.threads = threads
        self.buf = pyfftw.empty_aligned(shape, dtype=dtype)
        axes = tuple(range(len(shape)))
        flags = (planner_effort(), "FFTW_DESTROY_INPUT")
        self.forward = pyfftw.FFTW(self.buf, self.buf, axes=axes, direction="FFTW_FORWARD",
                                   flags=flags, threads=threads)
        self.inverse = pyfftw.FFTW(self.buf, self.buf, axes=axes, direction="FFTW_BACKWARD",
                                   flags=flags, threads=threads, normalise_idft=False)
        self.flat = self.buf.reshape(-1)

    def fft(self):
        self.forward.execute()

    def ifft_unscaled(self):
        self.inverse.execute()


def get_pair(shape, dtype, threads, slot=0):
    """The cached :class:`FFTPair` for this shape, dtype and thread count (planned once);
    ``slot`` > 0 gives further pairs with buffers of their own (DM with beta != 1 needs two)."""
    key = (tuple(shape), str(dtype), int(threads), int(slot))
    if key not in _plans:
        load_wisdom()
        _plans[key] = FFTPair(shape, dtype, threads)
        save_wisdom()
    return _plans[key]
