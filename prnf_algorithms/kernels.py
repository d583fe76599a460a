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
# The hot loops read only contiguous arrays: a shell lookup ``bg[bins[i]]`` inside them stops
# vectorisation (gathers are slow on many CPUs), so the background lives per pixel in ``bpix``,
# refreshed by a separate cheap pass (:func:`expand_shells`).

@njit(**SERIAL)
def _modulus_plain_chunk(F, amp, measured):
    err = 0.0
    for i in range(F.size):
        f = F[i]
        model = np.sqrt(f.real * f.real + f.imag * f.imag)
        a = amp[i]
        g = np.float32(measured[i])
        err += g * (model - a) * (model - a)
        # |F| = 0 on a measured pixel: amplitude with zero phase
        F[i] = f * (g * a / model + (1 - g)) if model > 0 else g * a + (1 - g) * f
    return err


@njit(**SERIAL)
def _modulus_background_chunk(F, amp, measured, bpix, ratio):
    err = 0.0
    for i in range(F.size):
        f = F[i]
        b = bpix[i]
        model = np.sqrt(f.real * f.real + f.imag * f.imag + b * b)
        a = amp[i]
        g = np.float32(measured[i])
        err += g * (model - a) * (model - a)
        m = a / model if model > 0 else np.float32(0)
        ratio[i] = g * m
        F[i] = f * (g * m + (1 - g)) if model > 0 else g * a + (1 - g) * f
    return err


@njit(**PARALLEL)
def modulus_project(F, amp, measured, bpix, ratio, err_part):
    """Modulus projection with background, in place on ``F`` (FFT layout, flat).

    On measured pixels, with ``b = bpix`` and ``M = sqrt(|F|^2 + b^2)``: ``F <- (A / M) F``
    (``A`` with zero phase where ``M = 0``); unmeasured pixels float. Per chunk ``c``:
    ``err_part[c] = sum (M - A)^2`` over measured pixels. With background (``bpix.size > 0``)
    also ``ratio = A / M`` on measured pixels (0 elsewhere), for :func:`shell_sums`.
    """
    n, nchunks = F.size, err_part.size
    fit_bg = bpix.size > 0
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        if fit_bg:
            err_part[c] = _modulus_background_chunk(F[lo:hi], amp[lo:hi], measured[lo:hi],
                                                    bpix[lo:hi], ratio[lo:hi])
        else:
            err_part[c] = _modulus_plain_chunk(F[lo:hi], amp[lo:hi], measured[lo:hi])


@njit(**SERIAL)
def _shell_sums_chunk(bins, ratio, sums):
    # Four interleaved accumulators: neighbouring pixels usually share a shell, and a single
    # accumulator would chain every add on the previous one through memory.
    n = bins.size
    m = n - n % 4
    for i in range(0, m, 4):
        sums[0, bins[i]] += ratio[i]
        sums[1, bins[i + 1]] += ratio[i + 1]
        sums[2, bins[i + 2]] += ratio[i + 2]
        sums[3, bins[i + 3]] += ratio[i + 3]
    for i in range(m, n):
        sums[0, bins[i]] += ratio[i]


@njit(**PARALLEL)
def shell_sums(bins, ratio, sums_part):
    """Per chunk ``c``, the sums of ratio over each shell k, spread over the four rows
    ``sums_part[4c:4c+4, k]``. Since the background is constant on a shell, the projected
    background ``(A/M) b`` averaged over a shell's measured pixels is ``b_k * sums[k] / count_k``."""
    n, nchunks = bins.size, sums_part.shape[0] // 4
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        sums_part[4 * c:4 * c + 4, :] = 0.0
        _shell_sums_chunk(bins[lo:hi], ratio[lo:hi], sums_part[4 * c:4 * c + 4])


@njit(**SERIAL)
def refit_background(shell_part, shell_counts, bg):
    """``bg[k] <- bg[k] * (sum over the rows of shell_part[:, k]) / count_k`` in place: the shell
    mean of the projected background ``(A/M) b`` (0 on shells without measured pixels)."""
    for k in range(bg.size):
        total = 0.0
        for c in range(shell_part.shape[0]):
            total += shell_part[c, k]
        bg[k] = bg[k] * total / max(shell_counts[k], 1)


@njit(**PARALLEL)
def expand_shells(bins, per_shell, out):
    """``out[i] = per_shell[bins[i]]``: a radial profile spread over the pixels."""
    for i in prange(bins.size):
        out[i] = per_shell[bins[i]]


# --------------------------------------------------------------------- shrinkwrap score
@njit(**SERIAL)
def _score_chunk(y, scale, eligible, score, floor, offset, cand_index, cand_key):
    keys = score.view(np.int32)
    for i in range(y.size):
        v = y[i] * scale
        score[i] = v.real * v.real + v.imag * v.imag if eligible[i] else -1.0
    # Branch-free compaction: every pixel is written at the running count, which only moves
    # past candidates; the last slot of the buffers absorbs the overflow.
    count = 0
    cap = cand_index.size - 1
    for i in range(y.size):
        k = keys[i]
        j = min(count, cap)
        cand_index[j] = offset + i
        cand_key[j] = k
        count += k >= floor
    return count


@njit(**PARALLEL)
def shrinkwrap_score(y, scale, eligible, score, floor, cand_index, cand_key, cand_count):
    """Score ``|scale * y|^2`` where ``eligible`` (inside the fixed support), else -1.

    Also collects, per chunk ``c``, the candidates whose key (the score's int32 bit pattern,
    which orders like the non-negative float32 score) is ``>= floor``: their indices
    (ascending) and keys in ``cand_index[c]``, ``cand_key[c]``, and their number in
    ``cand_count[c]``. The last column is scratch: a count above ``row length - 1`` means
    the row overflowed and is incomplete.
    """
    n, nchunks = y.size, cand_count.size
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        cand_count[c] = _score_chunk(y[lo:hi], scale, eligible[lo:hi], score[lo:hi], floor, lo,
                                     cand_index[c], cand_key[c])


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
def exact_threshold(index, key, needed):
    """Among candidates (ascending ``index``), the ``needed`` largest keys, ties to the lowest
    indices: returns (threshold key, index of the last tie taken); (-1, -1) for no candidates."""
    if key.size == 0:
        return -1, -1
    if needed >= key.size:
        return key.min(), index[key.size - 1]
    kth = np.partition(key, key.size - needed)[key.size - needed]
    want = needed
    for v in key:
        want -= v > kth
    for j in range(key.size):
        if key[j] == kth:
            want -= 1
            if want == 0:
                return kth, index[j]
    return kth, index[key.size - 1]   # not reached: the kth key is among the candidates


@njit(**SERIAL)
def candidates_threshold(cand_index, cand_key, counts, needed, index, key):
    """:func:`exact_threshold` over the rows of per-chunk candidates (``counts[c]`` in row
    ``c``), joined in chunk order (so ascending index) into the scratch ``index``/``key``."""
    j = 0
    for c in range(counts.size):
        for k in range(counts[c]):
            index[j] = cand_index[c, k]
            key[j] = cand_key[c, k]
            j += 1
    return exact_threshold(index[:j], key[:j], needed)


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
@njit(**SERIAL)
def _update_chunk(x, y, keys, threshold, last_tie, scale, a_in, b_in, a_out, b_out, hpr_gamma,
                  constraint, feedback, pre_out, support, est, sums):
    # Written branch-free (flags as 0/1 factors) so that the loop vectorises.
    diff = 0.0
    norm = 0.0
    both = 0
    keep_imag = constraint == 0
    clip = constraint == 2
    hpr = hpr_gamma >= 0
    h2 = (1.0 + hpr_gamma) ** 2
    fb = feedback and clip
    one = scale / scale
    zero = one - one
    for i in range(x.size):
        k = keys[i]
        s = (k > threshold) | ((k == threshold) & (i <= last_tie))
        both += s & support[i]
        support[i] = s
        yv = y[i]
        yr = yv.real * scale
        yim = yv.imag * scale
        xv = x[i]
        xr = xv.real
        xim = xv.imag
        sf = one * s
        er = sf * (max(yr, zero) if clip else yr)          # P_S: real / positive parts
        ei = sf * keep_imag * yim
        inside = s & ~(fb & (yr < 0)) & (~hpr | (h2 * (yr * yr + yim * yim) >= xr * xr + xim * xim))
        fi = one * inside
        nr = fi * (a_in * xr + b_in * er) + (one - fi) * (a_out * xr + b_out * yr)
        ni = fi * (a_in * xim + b_in * ei) + (one - fi) * (a_out * xim + b_out * yim)
        x[i] = nr + 1j * ni
        pf = sf + (one - sf) * pre_out
        y[i] = pf * nr + 1j * (pf * ni)
        ov = est[i]
        dr = er - ov.real
        di = ei - ov.imag
        diff += dr * dr + di * di
        norm += ov.real * ov.real + ov.imag * ov.imag
        est[i] = er + 1j * ei
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
    support constraint ``P`` (``constraint``: 0 none, 1 real part, 2 real part clipped at 0),
    others ``a_out x + b_out y``. A support pixel
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
