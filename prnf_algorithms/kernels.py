"""Numba kernels of one phasing iteration.

The iteration's arrays are viewed as ``(n0, R)``: slabs ``a[i]`` and columns along axis 0,
the two halves of the FFT (see ``fft.SplitPlans``). Each kernel is a serial function holding
the math, run by a ``parallel=True`` driver over one contiguous range of slabs or column
blocks per chunk (``nchunks`` = threads). Per-chunk partial sums go to preallocated arrays,
so results do not depend on thread timing. The math gets slices starting at 0: loops over
``range(lo, hi)`` with run-time bounds do not vectorise.
Plain NumPy twins of every kernel live in ``tests/naive.py``.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from .config import PARALLEL, SERIAL


#: rows of partial shell sums per chunk (see :func:`_modulus_background`)
SHELL_ROWS = 8


@njit(inline="always")
def _bounds(n, nchunks, c):
    return (n * c) // nchunks, (n * (c + 1)) // nchunks


# --------------------------------------------------------------------- transforms
# The n-d FFT runs in two halves (fft.SplitPlans): slabs ``buf[i]`` and blocks of columns along
# axis 0. Every pass below transforms a slab or block and works on it while it is in cache, so
# the iteration reads and writes the big arrays about as often as the bare FFT pair does.

@njit(inline="always")
def _run(execute, plan, address):
    if plan != 0:
        execute(plan, address, address)


@njit(**PARALLEL)
def slabs_fft(execute, plan, buf, nchunks):
    """Transform every slab ``buf[i]`` (2-D view ``(n0, R)``) with ``plan`` in place."""
    base, step = buf.ctypes.data, buf.shape[1] * buf.itemsize
    for c in prange(nchunks):
        lo, hi = _bounds(buf.shape[0], nchunks, c)
        for s in range(lo, hi):
            _run(execute, plan, base + s * step)


# --------------------------------------------------------------------- modulus projection
@njit(**SERIAL)
def _modulus_segment(F, amp, measured, bpix, ratio):
    # Written branch-free on the real view, accumulating in the working precision (a block
    # holds at most 32768 pixels; the driver sums blocks in float64), so that square root
    # and division vectorise: they bound this loop.
    v = F.view(amp.dtype)
    zero = amp[0] - amp[0]
    tiny = np.finfo(amp.dtype).tiny
    err = zero
    for i in range(amp.size):
        fr = v[2 * i]
        fi = v[2 * i + 1]
        b = bpix[i]
        model = np.sqrt(fr * fr + fi * fi + b * b)
        a = amp[i]
        g = zero + measured[i]
        d = model - a
        err += g * d * d
        m = g * (a / max(model, tiny))
        ratio[i] = m
        k = m + (1 - g)
        v[2 * i] = fr * k + g * a * (model <= 0)    # |F| = 0 measured: A with zero phase
        v[2 * i + 1] = fi * k
    return err


@njit(**SERIAL)
def _modulus_background(F, amp, measured, bins, bg, bpix, ratio, sums):
    n = F.size
    for i in range(n):
        bpix[i] = bg[bins[i]]
    err = _modulus_segment(F, amp, measured, bpix, ratio)
    # SHELL_ROWS rows used in turn: neighbouring pixels usually share a shell, and a single
    # row would chain every add on the previous one through memory
    for i in range(n):
        sums[i % SHELL_ROWS, bins[i]] += ratio[i]
    return err


@njit(**PARALLEL)
def columns_modulus(execute, plans, buf, amp, measured, bins, bg, scratch, err_part, shell_part):
    """Forward column FFT, modulus projection, inverse column FFT, block by block in place.

    ``buf`` is the 2-D view ``(n0, R)`` after its slab FFTs, so after the column FFT it holds
    ``F``; the per-pixel arrays are flat in block order (``fft.SplitPlans.blocked``). On
    measured pixels, with the shell background ``b = bg[bins]`` and ``M = sqrt(|F|^2 + b^2)``:
    ``F <- (A / M) F`` (``A`` with zero phase where ``M = 0``); unmeasured pixels float. Per
    chunk ``c``: ``err_part[c] = sum (M - A)^2`` over measured pixels and, with background
    (``bg.size > 0``), the sums of ``A / M`` per shell over measured pixels spread over the
    ``SHELL_ROWS`` rows of ``shell_part`` from row ``SHELL_ROWS * c`` (for
    :func:`refit_background`). ``plans`` and ``scratch`` (one block per chunk) come from
    :class:`fft.SplitPlans`.
    """
    if 2 * amp.itemsize != buf.itemsize or scratch.itemsize != buf.itemsize:
        raise ValueError("columns_modulus: amp must be the real type of buf and scratch")
    n0, rest = buf.shape
    nchunks = err_part.size
    width = scratch.shape[1] // n0
    nblocks = -(-rest // width)
    fit_bg = bg.size > 0
    for c in prange(nchunks):
        lo, hi = _bounds(nblocks, nchunks, c)
        address = scratch[c].ctypes.data
        sums = shell_part[SHELL_ROWS * c:SHELL_ROWS * (c + 1)]
        sums[:, :] = 0.0
        bpix = np.zeros(scratch.shape[1], amp.dtype)      # zeros: no background
        ratio = np.empty(scratch.shape[1], amp.dtype)
        err = 0.0
        for b in range(lo, hi):
            j0 = b * width
            w = min(width, rest - j0)
            n = n0 * w
            block = scratch[c, :n]
            for i in range(n0):
                block[i * w:(i + 1) * w] = buf[i, j0:j0 + w]
            narrow = 2 if w < width else 0
            _run(execute, plans[2 + narrow], address)
            pixels = slice(n0 * j0, n0 * j0 + n)
            if fit_bg:
                err += _modulus_background(block, amp[pixels], measured[pixels], bins[pixels], bg,
                                           bpix[:n], ratio[:n], sums)
            else:
                err += _modulus_segment(block, amp[pixels], measured[pixels], bpix[:n], ratio[:n])
            _run(execute, plans[3 + narrow], address)
            for i in range(n0):
                buf[i, j0:j0 + w] = block[i * w:(i + 1) * w]
        err_part[c] = err


@njit(**SERIAL)
def refit_background(shell_part, shell_counts, bg):
    """``bg[k] <- bg[k] * (sum over the rows of shell_part[:, k]) / count_k`` in place: the shell
    mean of the projected background ``(A/M) b`` (0 on shells without measured pixels)."""
    for k in range(bg.size):
        total = 0.0
        for c in range(shell_part.shape[0]):
            total += shell_part[c, k]
        bg[k] = bg[k] * total / max(shell_counts[k], 1)


# --------------------------------------------------------------------- shrinkwrap score
@njit(**SERIAL)
def _score_block(v, scale, eligible, score):
    """Scores a block (``v``: real and imaginary parts in turn); returns its largest key.
    Two loops: a float max reduction in the first would stop it vectorising, an integer one
    does not."""
    outside = np.float32(-1.0)
    for i in range(score.size):
        re = v[2 * i] * scale
        im = v[2 * i + 1] * scale
        s = np.float32(re * re + im * im)
        score[i] = s if eligible[i] else outside
    keys = score.view(np.int32)
    top = np.int32(-1)
    for i in range(keys.size):
        top = max(top, keys[i])
    return top


@njit(**SERIAL)
def _compact(keys, floor, offset, cand_index, cand_key, count):
    # Branch-free: every pixel is written at the running count, which only moves past
    # candidates; the last slot of the buffers absorbs the overflow.
    cap = cand_index.size - 1
    for i in range(keys.size):
        k = keys[i]
        j = min(count, cap)
        cand_index[j] = offset + i
        cand_key[j] = k
        count += k >= floor
    return count


_SCORE_BLOCK = 256


@njit(**SERIAL)
def _score_chunk(v, scale, eligible, score, floor, offset, cand_index, cand_key, count):
    keys = score.view(np.int32)
    for b0 in range(0, score.size, _SCORE_BLOCK):
        b1 = min(b0 + _SCORE_BLOCK, score.size)
        # candidates are few and clustered: most blocks have none, and skip the compaction
        if _score_block(v[2 * b0:2 * b1], scale, eligible[b0:b1], score[b0:b1]) >= floor:
            count = _compact(keys[b0:b1], floor, offset + b0, cand_index, cand_key, count)
    return count


@njit(**PARALLEL)
def score_slabs(execute, plan, v, scale, eligible, score, floor, cand_index, cand_key, cand_count):
    """Run ``plan`` on each slab of ``y`` (0: no transform), then score it: ``|scale * y|^2``
    where ``eligible`` (inside the fixed support), else -1. ``y`` comes as its real view ``v``
    (``(n0, 2R)``, real and imaginary parts in turn); the other arrays are ``(n0, R)``.

    Also collects, per chunk ``c``, the candidates whose key (the score's int32 bit pattern,
    which orders like the non-negative float32 score) is ``>= floor``: their flat indices
    (ascending) and keys in ``cand_index[c]``, ``cand_key[c]``, and their number in
    ``cand_count[c]``. The last column is scratch: a count above ``row length - 1`` means
    the row overflowed and is incomplete.
    """
    n0, rest = score.shape
    nchunks = cand_count.size
    base, step = v.ctypes.data, v.shape[1] * v.itemsize
    for c in prange(nchunks):
        lo, hi = _bounds(n0, nchunks, c)
        count = 0
        for s in range(lo, hi):
            _run(execute, plan, base + s * step)
            count = _score_chunk(v[s], scale, eligible[s], score[s], floor, s * rest,
                                 cand_index[c], cand_key[c], count)
        cand_count[c] = count


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
                  constraint, feedback, pre_out, support, est):
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
    return diff, norm, both


@njit(**PARALLEL)
def update_slabs(execute, plan, x, y, keys, threshold, last_tie, scale, coef, hpr_gamma, constraint,
                 feedback, pre_out, support, est, sums_part):
    """One fused update with the new support, slab by slab in place on ``x``, ``y``,
    ``support``, ``est`` (2-D views ``(n0, R)``), then ``plan`` on each slab of ``y`` (the
    first half of the next forward FFT; 0: none).

    The new support is ``key > threshold or (key == threshold and flat index <= last_tie)``
    (the shrinkwrap selection). With ``y = scale * y_unscaled`` (the modulus projection) and
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
    n0, rest = x.shape
    nchunks = sums_part.shape[0]
    base, step = y.ctypes.data, rest * y.itemsize
    for c in prange(nchunks):
        lo, hi = _bounds(n0, nchunks, c)
        diff = norm = 0.0
        both = 0
        for s in range(lo, hi):
            d, m, b = _update_chunk(x[s], y[s], keys[s], threshold, last_tie - s * rest, scale,
                                    coef[0], coef[1], coef[2], coef[3], hpr_gamma, constraint,
                                    feedback, pre_out, support[s], est[s])
            diff += d
            norm += m
            both += b
            _run(execute, plan, base + s * step)
        sums_part[c, 0] = diff
        sums_part[c, 1] = norm
        sums_part[c, 2] = both
