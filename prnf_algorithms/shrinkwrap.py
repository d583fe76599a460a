"""Shrinkwrap by threshold (Marchesini et al., PRB 68, 140101 (2003); ALGORITHMS.md section 2).

The support becomes the pixels where the Gaussian-smoothed ``|y|`` is at least ``threshold``
times its maximum inside the current support, within the fixed support. ``sigma`` decays
linearly over a node's iterations. The update runs every ``every`` iterations (as PyNX and
Marchesini do; in between the support is kept): the smoothing is a product with the
Gaussian's transform in Fourier space (two real FFTW transforms, whatever sigma), so an
update costs about one iteration (``benchmarks/bench_shrinkwrap.py``).

Guards: a support below :data:`MIN_FRACTION` of the eligible pixels (collapse) or above
:data:`MAX_FRACTION` (explosion) is clipped to that bound (the threshold adapts) and the node
says so once, never silently. A guard at a fraction of the array fires only after a sparse
object has collapsed (on the ESRF logo: 4,231 -> 28 pixels before it did), so a node may also
set ``support_floor``: the support keeps at least that fraction of the one it entered with.
"""
from __future__ import annotations

import functools
import logging

import numpy as np

from . import fft
from .kernels import smoothing

log = logging.getLogger("prnf.shrinkwrap")

MIN_FRACTION, MIN_PIXELS = 1e-4, 4
#: An object phased from a pattern sampled at least twice the Nyquist rate per axis fills at
#: most 1/2^d of the array; a quarter of the array is already a loose support in 2D.
MAX_FRACTION = 0.25
#: what a threshold can be a fraction of (:meth:`ThresholdRule._reference`)
REFERENCES = ("max", "rms")
_warned = set()


def gaussian_factors(shape, sigma, dtype):
    """The half-spectrum (rfftn layout) transform of a periodic Gaussian of width ``sigma``
    pixels, divided by the array size (the inverse FFT is unnormalised), as one factor per
    axis shaped to broadcast: the Gaussian is separable. A whole transfer volume per sigma
    (sigma changes at every support update) cost a quarter volume each, kept in a cache of
    8: two volumes at 256^3."""
    factors = []
    for k, n in enumerate(shape):
        freq = np.fft.rfftfreq(n) if k == len(shape) - 1 else np.fft.fftfreq(n)
        view = [1] * len(shape)
        view[k] = -1
        factor = np.exp(-2.0 * (np.pi * sigma * freq) ** 2) / (np.prod(shape) if k == 0 else 1)
        factors.append(factor.astype(dtype).reshape(view))
    return factors


def gaussian_transfer(shape, sigma, dtype):
    """The whole transfer volume (:func:`gaussian_factors` multiplied out; for tests)."""
    return functools.reduce(np.multiply, gaussian_factors(shape, sigma, dtype))


def _smoothed(score, sigma, threads):
    """``sqrt(max(score, 0))`` convolved with the Gaussian, not yet clipped at 0, in the real
    pair's buffer (flat views of it through the parallel passes of ``kernels.smoothing``)."""
    pair = fft.get_real_pair(score.shape, score.dtype, threads)
    zero = score.dtype.type(0)
    smoothing.sqrt_clipped(score.reshape(-1), pair.real.reshape(-1), zero)
    if sigma > 0:
        pair.forward()
        first, *others = gaussian_factors(score.shape, float(sigma), score.dtype)
        plane = functools.reduce(np.multiply, others, np.ones((1,) * score.ndim, score.dtype))
        spectrum = pair.spectrum.reshape(pair.spectrum.shape[0], -1)
        smoothing.multiply_separable(spectrum, first.reshape(-1),
                                     np.ascontiguousarray(plane.reshape(-1)))
        pair.inverse()
    return pair.real


def smooth_modulus(score, sigma, threads=1):
    """``sqrt(max(score, 0))`` convolved with a periodic Gaussian of width ``sigma`` pixels
    (``scipy.ndimage.gaussian_filter(..., mode='wrap')`` up to its truncation), clipped at 0:
    two real FFTW transforms whatever ``sigma``. Returns a buffer reused by the next call."""
    smoothed = _smoothed(score, sigma, threads)
    np.maximum(smoothed, 0, out=smoothed)              # ringing must not go negative
    return smoothed


def smooth_score(score, sigma, threads=1, support=None):
    """Replace ``score`` (``|y|^2``, -1 outside the fixed support) in place by the smoothed
    ``|y|`` (:func:`smooth_modulus`) where it is not -1. Returns the maximum, root mean square
    and count of the new scores on ``support`` (within the fixed support), then on the whole
    fixed support: what a threshold is a fraction of."""
    flat = score.reshape(-1)
    smoothed = _smoothed(score, sigma, threads)
    inside = (np.ones(flat.size, bool) if support is None
              else np.ascontiguousarray(support).reshape(-1))
    parts = np.zeros((smoothing.CHUNKS, 6))
    smoothing.clip_into_score(smoothed.reshape(-1), flat, inside, parts, score.dtype.type(0))
    stats = []
    for col in (smoothing.ON_SUPPORT, smoothing.ON_ELIGIBLE):
        count = parts[:, col + 2].sum()
        stats.append((parts[:, col].max(), np.sqrt(parts[:, col + 1].sum() / max(count, 1)),
                      int(count)))
    return stats


class ThresholdRule:
    """Settings and guards of threshold shrinkwrap for one node's run."""

    def __init__(self, name, threshold, sigma, sigma_end, every, n_eligible, workers=1, key=None,
                 floor=None, reference="max"):
        self.reference = reference
        self.name, self.threshold, self.every, self.workers = name, threshold, every, workers
        self.sigma, self.sigma_end = sigma, sigma if sigma_end is None else sigma_end
        self.low = self.array_low = max(MIN_PIXELS, int(MIN_FRACTION * n_eligible))
        self.high = max(self.low, int(MAX_FRACTION * n_eligible))
        self.key = key if key is not None else name
        self.floor = floor
        self.exact_level = None     # see rescore

    def begin(self, incoming):
        """The floor relative to the ``incoming`` support's pixel count (``support_floor``)."""
        if self.floor is not None:
            self.low = min(max(self.array_low, int(self.floor * incoming)), self.high)

    def updates(self, iteration):
        """The support is first updated after ``every`` iterations on the incoming one (a
        loose start's first modulus projection is noise), then every ``every``."""
        return iteration > 0 and iteration % self.every == 0

    def sigma_at(self, iteration, iterations):
        return self.sigma + (self.sigma_end - self.sigma) * iteration / max(iterations - 1, 1)

    def rescore(self, score, support, sigma):
        """Turn ``score`` (``|y|^2``, float32, -1 outside the fixed support) into the smoothed
        ``|y|`` in place and return how many pixels the threshold keeps (guarded); unless the
        guard changed that number, ``exact_level`` is then the level they are at least."""
        on_support, on_eligible = smooth_score(score, sigma, self.workers, support)
        reference = self._reference(*(on_support if on_support[2] else on_eligible))
        self.exact_level = None
        if reference <= 0:
            return self._guard(0)
        level = float(self.threshold * reference)    # compared in double, as NumPy did
        count = int(smoothing.count_at_least(score.reshape(-1), level))
        kept = self._guard(count)
        if kept == count:           # the support is exactly the scores at least ``level``
            self.exact_level = level
        return kept

    def _reference(self, top, rms, count):
        """What the threshold is a fraction of: the smoothed modulus' maximum on the support,
        or its root mean square there (``rms``, PyNX's default: a few bright pixels do not
        set it, so a sparse object's dimmer parts stay in)."""
        return float(rms if self.reference == "rms" else top)

    def _guard(self, count):
        bounded = min(max(count, self.low), self.high)
        kind = "collapse" if count < self.low else "explode"
        if bounded != count and (self.key, kind) not in _warned:
            _warned.add((self.key, kind))       # once per node and process, not per repeat
            log.warning("%s: threshold %g would %s the support to %d pixels; kept %d (%s), the "
                        "threshold retuned to keep them; try another threshold or sigma",
                        self.name, self.threshold, kind, count, bounded, self._bound_name(kind))
        return bounded

    def _bound_name(self, kind):
        if kind == "explode":
            return f"the guard at {MAX_FRACTION:g} of the eligible pixels"
        if self.low > self.array_low:
            return f"support_floor {self.floor:g} of the support the node started with"
        return f"the guard at {MIN_FRACTION:g} of the eligible pixels"
