"""Numba kernels of one phasing iteration, on flat (1D) views of the arrays.

Each kernel is a serial ``_..._chunk`` function holding the math, run by a ``parallel=True``
driver over one contiguous slice per chunk (``nchunks`` = threads). Per-chunk partial sums go
to preallocated arrays, so results do not depend on thread timing. Chunks are passed as
slices starting at 0: loops over ``range(lo, hi)`` with run-time bounds do not vectorise.
Plain NumPy twins of every kernel live in ``tests/naive.py``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .config import PARALLEL, SERIAL


@njit(inline="always")
def _bounds(n, nchunks, c):
    return (n * c) // nchunks, (n * (c + 1)) // nchunks


# --------------------------------------------------------------------- modulus projection
@njit(**SERIAL)
def _modulus_chunk(F, amp, measured, bins, bg, fit_bg, bg_sums):
    err = 0.0
    for i in range(F.size):
        if measured[i]:
            f = F[i]
            b = bg[bins[i]]
            model = np.sqrt(f.real * f.real + f.imag * f.imag + b * b)
            a = amp[i]
            err += (model - a) * (model - a)
            if model > 0:
                m = a / model
                F[i] = f * m
                if fit_bg:
                    bg_sums[bins[i]] += m * b
            else:
                F[i] = a
    return err


@njit(**PARALLEL)
def modulus_project(F, amp, measured, bins, bg, fit_bg, bg_part, err_part):
    """Modulus projection with background, in place on ``F`` (FFT layout, flat).

    On measured pixels, with ``b = bg[bins]`` and ``M = sqrt(|F|^2 + b^2)``:
    ``F <- (A / M) F`` (``A`` with zero phase where ``M = 0``); unmeasured pixels float.
    Per chunk ``c``: ``err_part[c] = sum (M - A)^2`` and, if ``fit_bg``,
    ``bg_part[c, k] = sum over shell k of (A / M) b`` (the projected background).
    """
    n, nchunks = F.size, err_part.size
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        bg_part[c, :] = 0.0
        err_part[c] = _modulus_chunk(F[lo:hi], amp[lo:hi], measured[lo:hi], bins[lo:hi], bg,
                                     fit_bg, bg_part[c])


# --------------------------------------------------------------------- shrinkwrap score
@njit(**SERIAL)
def _score_chunk(y, scale, eligible, score, hist):
    for i in range(y.size):
        if eligible[i]:
            v = y[i] * scale
            score[i] = v.real * v.real + v.imag * v.imag
        else:
            score[i] = -1.0
    keys = score.view(np.int32)
    for i in range(y.size):
        if keys[i] >= 0:
            hist[keys[i] >> 16] += 1


@njit(**PARALLEL)
def shrinkwrap_score(y, scale, eligible, score, hist_part):
    """Score ``|scale * y|^2`` where ``eligible`` (inside the fixed support), else -1, and per
    chunk the histogram of the top 16 bits of the scores' int32 bit patterns (which order
    like the non-negative float32 scores)."""
    n, nchunks = y.size, hist_part.shape[0]
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        hist_part[c, :] = 0
        _score_chunk(y[lo:hi], scale, eligible[lo:hi], score[lo:hi], hist_part[c])


@njit(**SERIAL)
def _histogram_chunk(keys, hist):
    for i in range(keys.size):
        if keys[i] >= 0:
            hist[keys[i] >> 16] += 1


@njit(**PARALLEL)
def key_histogram(keys, hist_part):
    """Per chunk, counts of the top 16 bits of non-negative int32 ``keys`` (negatives skipped)."""
    n, nchunks = keys.size, hist_part.shape[0]
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        hist_part[c, :] = 0
        _histogram_chunk(keys[lo:hi], hist_part[c])


@njit(**SERIAL)
def top_bin(hist_part, count):
    """Scan the summed histograms from the top: (bin holding the ``count``-th largest key,
    how many are still needed from it); (-1, 0) when at most ``count`` keys are eligible."""
    above = 0
    for b in range(hist_part.shape[1] - 1, -1, -1):
        here = 0
        for c in range(hist_part.shape[0]):
            here += hist_part[c, b]
        if above + here >= count:
            return b, count - above
        above += here
    return -1, 0


@njit(**SERIAL)
def _gather_chunk(keys, top, offset, out_index, out_key, start):
    j = start
    for i in range(keys.size):
        k = keys[i]
        if k >= 0 and (k >> 16) == top:
            out_index[j] = offset + i
            out_key[j] = k
            j += 1


@njit(**PARALLEL)
def gather_bin(keys, top, offsets, out_index, out_key):
    """Indices (ascending) and keys of every pixel whose key has top 16 bits ``top``;
    chunk ``c`` writes from ``offsets[c]`` (its share of the bin, counted by the histogram)."""
    n, nchunks = keys.size, offsets.size
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        _gather_chunk(keys[lo:hi], top, lo, out_index, out_key, offsets[c])


# --------------------------------------------------------------------- update
@njit(inline="always")
def _constrain(y, constraint):
    """P_S inside the support: 0 complex, 1 real part, 2 real part clipped at 0."""
    if constraint == 0:
        return y
    r = y.real if (constraint == 1 or y.real > 0) else 0.0
    return r + 0.0 * y


@njit(**SERIAL)
def _update_chunk(x, y, keys, threshold, last_tie, scale, a_in, b_in, a_out, b_out, hpr_gamma,
                  constraint, feedback, pre_out, support, est, sums):
    diff = 0.0
    norm = 0.0
    both = 0
    for i in range(x.size):
        k = keys[i]
        s = k > threshold or (k == threshold and i <= last_tie)
        if s and support[i]:
            both += 1
        support[i] = s
        yi = y[i] * scale
        xi = x[i]
        e = _constrain(yi, constraint) if s else 0.0 * yi
        inside = s and not (feedback and constraint == 2 and yi.real < 0)
        if inside and hpr_gamma >= 0:
            inside = (1.0 + hpr_gamma) * abs(yi) >= abs(xi)
        xn = a_in * xi + b_in * e if inside else a_out * xi + b_out * yi
        x[i] = xn
        y[i] = xn if s else pre_out * xn
        old = est[i]
        d = e - old
        diff += d.real * d.real + d.imag * d.imag
        norm += old.real * old.real + old.imag * old.imag
        est[i] = e
    sums[0] = diff
    sums[1] = norm
    sums[2] = both


@njit(**PARALLEL)
def update(x, y, keys, threshold, last_tie, scale, coef, hpr_gamma, constraint, feedback,
           pre_out, support, est, sums_part):
    """One fused update with the new support, in place on ``x``, ``y``, ``support``, ``est``.

    The new support is ``key > threshold or (key == threshold and index <= last_tie)`` (the
    shrinkwrap selection). With ``y = scale * y_unscaled`` (the modulus projection) and
    ``coef = (a_in, b_in, a_out, b_out)``: support pixels get ``a_in x + b_in P(y)`` with the
    support constraint ``P`` (:func:`_constrain`), others ``a_out x + b_out y``. A support pixel
    takes the outside rule where positivity (``constraint == 2``) fails if ``feedback`` is set
    (Fienup's HIO with positivity), and, if ``hpr_gamma >= 0`` (HPR), where
    ``(1 + gamma)|y| < |x|``.
    Writes the estimate ``est = P(y)`` on the support (0 off it), the next FFT input
    ``y <- x`` on the support and ``pre_out * x`` off it, and per chunk
    ``sums_part[c] = (sum |est_new - est_old|^2, sum |est_old|^2, |S_old and S_new|)``.
    """
    n, nchunks = x.size, sums_part.shape[0]
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        _update_chunk(x[lo:hi], y[lo:hi], keys[lo:hi], threshold, last_tie - lo, scale,
                      coef[0], coef[1], coef[2], coef[3], hpr_gamma, constraint, feedback,
                      pre_out, support[lo:hi], est[lo:hi], sums_part[c])
