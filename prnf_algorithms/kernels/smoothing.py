"""The shrinkwrap smoothing's passes around its two real FFTs, parallel and fused.

A threshold update smooths ``|y|`` (the square root of the score), multiplies its half
spectrum by the separable Gaussian, and after the inverse transform clips ringing at 0,
copies the result into the score within the fixed support and measures the threshold's
reference there. Done as separate NumPy passes this was a dozen single-threaded sweeps of the
volume, twice what the two FFTs cost; here it is three parallel passes and a count.

Partial sums go to :data:`CHUNKS` fixed rows, whatever the thread count, so the reference
(and so the support) does not depend on how many threads ran. The arrays are flat, except
the half spectrum, viewed as ``(n0, P)``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import PARALLEL, SERIAL
from .layout import bounds

#: fixed number of partial results (not the thread count: see the module docstring)
CHUNKS = 64
#: columns of :func:`clip_into_score`'s partials: maximum, sum of squares, pixel count, on
#: the support within the fixed support, then the same on the fixed support
ON_SUPPORT, ON_ELIGIBLE = 0, 3


@njit(**SERIAL)
def _sqrt_chunk(score, out, zero):
    for i in range(score.size):
        out[i] = np.sqrt(max(score[i], zero))


@njit(**PARALLEL)
def sqrt_clipped(score, out, zero):
    """``out = sqrt(max(score, 0))`` (flat arrays; ``zero`` a 0 of their dtype)."""
    n = score.size
    for c in prange(CHUNKS):
        lo, hi = bounds(n, CHUNKS, c)
        _sqrt_chunk(score[lo:hi], out[lo:hi], zero)


@njit(**PARALLEL)
def multiply_separable(spectrum, first, rest):
    """``spectrum[i, j] *= first[i] * rest[j]``: the Gaussian's transform, the factor of
    axis 0 times the product of the other axes' factors (a plane, small)."""
    for i in prange(spectrum.shape[0]):
        f = first[i]
        row = spectrum[i]
        for j in range(row.size):
            row[j] *= f * rest[j]


@njit(**SERIAL)
def _clip_chunk(smoothed, score, support, part, zero):
    top_s = top_e = 0.0
    sq_s = sq_e = 0.0
    n_s = n_e = 0
    for i in range(score.size):
        v = max(smoothed[i], zero)         # ringing must not go negative
        if score[i] >= 0:                  # within the fixed support (-1 outside)
            score[i] = v
            d = v * 1.0                    # squares summed in double
            top_e = max(top_e, d)
            sq_e += d * d
            n_e += 1
            if support[i]:
                top_s = max(top_s, d)
                sq_s += d * d
                n_s += 1
    part[ON_SUPPORT], part[ON_SUPPORT + 1], part[ON_SUPPORT + 2] = top_s, sq_s, n_s
    part[ON_ELIGIBLE], part[ON_ELIGIBLE + 1], part[ON_ELIGIBLE + 2] = top_e, sq_e, n_e


@njit(**PARALLEL)
def clip_into_score(smoothed, score, support, parts, zero):
    """Copy ``smoothed``, clipped at 0, into ``score`` where ``score >= 0``, and per chunk
    record the maximum, sum of squares and count of the copied values on ``support``
    and on all of them (``parts``, ``(CHUNKS, 6)`` float64)."""
    n = score.size
    for c in prange(CHUNKS):
        lo, hi = bounds(n, CHUNKS, c)
        _clip_chunk(smoothed[lo:hi], score[lo:hi], support[lo:hi], parts[c], zero)


@njit(**SERIAL)
def _count_chunk(score, level):
    count = 0
    for i in range(score.size):
        count += score[i] >= level
    return count


@njit(**PARALLEL)
def count_at_least(score, level):
    """How many of ``score`` (flat) are at least ``level``."""
    n, total = score.size, 0
    for c in prange(CHUNKS):
        lo, hi = bounds(n, CHUNKS, c)
        total += _count_chunk(score[lo:hi], level)
    return total
