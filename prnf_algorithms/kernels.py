"""Numba kernels of one phasing iteration.

The iteration's arrays are viewed as ``(n0, R)``: slabs ``a[i]`` and columns along axis 0,
the two halves of the FFT (see ``fft.SplitPlans``). Each kernel is a serial function holding
the math, run by a ``parallel=True`` driver over one share of the slabs or column blocks per
chunk (``nchunks`` = threads). Slabs are dealt out in turn, in groups of at least
``GROUP_BYTES`` (chunk ``c`` takes groups ``c, c + nchunks, ...``): the object, and with it
the work on candidates and on the support, sits in a few neighbouring slabs, and slabs dealt
out one by one made the threads slow each other down (measured: 2-thread update 1.5x slower
at 512^2, rows of 4 KiB). Per-chunk partial sums go to preallocated arrays,
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


#: slabs are dealt out to chunks in groups of at least this many bytes (see module docstring)
GROUP_BYTES = 1 << 17


@njit(inline="always")
def _slabs_of(a, c, nchunks):
    """Chunk ``c``'s slabs of the 2-D view ``a``, ``(n0, R)``, in order: groups ``c``,
    ``c + nchunks``, ... (see the module docstring)."""
    n0 = a.shape[0]
    per = max(1, GROUP_BYTES // (a.shape[1] * a.itemsize))
    slabs = np.empty(n0, np.int64)
    count = 0
    for g in range(c, -(-n0 // per), nchunks):
        for s in range(g * per, min((g + 1) * per, n0)):
            slabs[count] = s
            count += 1
    return slabs[:count]


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
        for s in _slabs_of(buf, c, nchunks):
            _run(execute, plan, base + s * step)


# --------------------------------------------------------------------- modulus projection
@njit(**SERIAL)
def _modulus_segment(F, amp, measured, bpix, ratio):
    # Written branch-free on the real view, accumulating in the working precision (a block
    # holds at most 32768 pixels; the driver sums blocks in float64), so that square root
    # and division vectorise: they bound this loop.
    v = F.view(amp.dtype)
    zero = amp[0] - amp[0]
    one = zero + True       # of the working precision (zero + 1 would be float64, as 1 - g)
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
        k = m + (one - g)
        v[2 * i] = fr * k + g * a * (model <= zero)    # |F| = 0 measured: A with zero phase
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
def _scores(y, scale, eligible, score):
    """``score = |scale * y|^2`` (float32) where ``eligible``, else -1."""
    outside = np.float32(-1.0)
    for i in range(score.size):
        re = y[i].real * scale
        im = y[i].imag * scale
        s = np.float32(re * re + im * im)
        score[i] = s if eligible[i] else outside


@njit(**SERIAL)
def _top_key(keys):
    # an integer max reduction vectorises; a float one would not
    top = np.int32(-1)
    for i in range(keys.size):
        top = max(top, keys[i])
    return top


@njit(**SERIAL)
def _compact(keys, floor, offset, cand_index, cand_key, count):
    # With a branch: even in blocks holding candidates most pixels are not one, and writing
    # every pixel at the running count (branch-free) measured 1.5-2.5x slower. The last slot
    # of the buffers absorbs the overflow.
    cap = cand_index.size - 1
    for i in range(keys.size):
        k = keys[i]
        if k >= floor:
            j = min(count, cap)
            cand_index[j] = offset + i
            cand_key[j] = k
            count += 1
    return count


#: pixels per block of the score and update passes: blocks without candidates skip the
#: compaction, blocks off both supports skip the estimate
BLOCK = 512


@njit(**SERIAL)
def _score_row(y, scale, eligible, block, floor, offset, cand_index, cand_key, count):
    keys = block.view(np.int32)
    for b0 in range(0, y.size, BLOCK):
        b1 = min(b0 + BLOCK, y.size)
        n = b1 - b0
        _scores(y[b0:b1], scale, eligible[b0:b1], block[:n])
        # candidates are few and clustered: most blocks have none, and skip the compaction
        if _top_key(keys[:n]) >= floor:
            count = _compact(keys[:n], floor, offset + b0, cand_index, cand_key, count)
    return count


@njit(**PARALLEL)
def score_slabs(execute, plan, y, scale, eligible, floor, cand_index, cand_key, cand_count):
    """Run ``plan`` on each slab of ``y`` (0: no transform), then score it: ``|scale * y|^2``
    where ``eligible``, else -1; arrays are 2-D views ``(n0, R)``.

    The scores are not stored (:func:`score_all` does that when a full image is needed): only
    the candidates, per chunk ``c``, whose key (the score's int32 bits, which order like the
    non-negative scores) is ``>= floor``: their flat indices and keys in ``cand_index[c]``,
    ``cand_key[c]``, and their number in ``cand_count[c]``. The last column is scratch: a
    count above ``row length - 1`` means the row overflowed and is incomplete.
    """
    rest = y.shape[1]
    nchunks = cand_count.size
    base, step = y.ctypes.data, rest * y.itemsize
    for c in prange(nchunks):
        block = np.empty(BLOCK, np.float32)
        count = 0
        for s in _slabs_of(y, c, nchunks):
            _run(execute, plan, base + s * step)
            count = _score_row(y[s], scale, eligible[s], block, floor, s * rest,
                               cand_index[c], cand_key[c], count)
        cand_count[c] = count


@njit(**PARALLEL)
def score_all(y, scale, eligible, score, nchunks):
    """Every pixel's score, as :func:`score_slabs` computes it, into ``score``; 2-D views
    ``(n0, R)``."""
    for c in prange(nchunks):
        for s in _slabs_of(y, c, nchunks):
            _scores(y[s], scale, eligible[s], score[s])


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
    """Among candidates (``index`` in any order), the ``needed`` largest keys, ties to the
    lowest indices: returns (threshold key, index of the last tie taken); (-1, -1) for no
    candidates."""
    if key.size == 0:
        return -1, -1
    if needed >= key.size:
        return key.min(), index.max()
    kth = np.partition(key, key.size - needed)[key.size - needed]
    want = needed
    for v in key:
        want -= v > kth
    ties = index[key == kth]          # usually one; the kth key is among them, so want >= 1
    return kth, np.partition(ties, want - 1)[want - 1]


@njit(**SERIAL)
def candidates_threshold(cand_index, cand_key, counts, needed, index, key, state):
    """:func:`exact_threshold` over the rows of per-chunk candidates (``counts[c]`` in row
    ``c``); marks the chosen ones in ``state`` (flat, see :func:`mark_chosen`).

    Radix select, as :func:`support.threshold` over all pixels: a histogram of the keys' top
    16 bits (only the few bins the candidates span) finds the bin of the ``needed``-th
    largest, whose candidates alone go to the scratch ``index``/``key`` for the exact step
    (measured: half the time of partitioning all candidates, at 2N of them)."""
    low, high = np.int32(np.iinfo(np.int32).max), np.int32(0)
    for c in range(counts.size):
        for k in range(counts[c]):
            low = min(low, cand_key[c, k] >> 16)
            high = max(high, cand_key[c, k] >> 16)
    hist = np.zeros(max(high - low + 1, 1), np.int64)
    for c in range(counts.size):
        for k in range(counts[c]):
            hist[(cand_key[c, k] >> 16) - low] += 1
    top, above = hist.size - 1, 0
    while top > 0 and above + hist[top] < needed:
        above += hist[top]
        top -= 1
    j = 0
    for c in range(counts.size):
        for k in range(counts[c]):
            if (cand_key[c, k] >> 16) - low == top:
                index[j] = cand_index[c, k]
                key[j] = cand_key[c, k]
                j += 1
    threshold, last_tie = exact_threshold(index[:j], key[:j], needed - above)
    for c in range(counts.size):    # branch-free: about half are chosen, unpredictably
        for k in range(counts[c]):
            i = cand_index[c, k]
            state[i] |= np.uint8(2) * _chosen(cand_key[c, k], i, threshold, last_tie)
    return threshold, last_tie


@njit(inline="always")
def _chosen(key, index, threshold, last_tie):
    return (key > threshold) | ((key == threshold) & (index <= last_tie))


@njit(**SERIAL)
def _mark_chunk(keys, threshold, last_tie, state):
    for i in range(keys.size):
        state[i] |= np.uint8(2) * _chosen(keys[i], i, threshold, last_tie)


@njit(**PARALLEL)
def mark_chosen(keys, threshold, last_tie, state, nchunks):
    """Marks the new support in bit 1 of ``state`` (uint8; bit 0 holds the old support):
    ``key > threshold``, or ``key == threshold`` at flat index ``<= last_tie``."""
    n = keys.size
    for c in prange(nchunks):
        lo, hi = _bounds(n, nchunks, c)
        _mark_chunk(keys[lo:hi], threshold, last_tie - lo, state[lo:hi])


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
def _touched(state):
    any_set = np.uint8(0)
    for i in range(state.size):
        any_set |= state[i]
    return any_set != 0


@njit(inline="always")
def _apply(x, y, i, fi, sf, one, a_in, b_in, a_out, b_out, pre_out, xr, xim, er, ei, yr, yim):
    # the rule (fi: inside factor) into x, and the next FFT input (sf: support factor) into y
    nr = fi * (a_in * xr + b_in * er) + (one - fi) * (a_out * xr + b_out * yr)
    ni = fi * (a_in * xim + b_in * ei) + (one - fi) * (a_out * xim + b_out * yim)
    x[2 * i] = nr
    x[2 * i + 1] = ni
    pf = sf + (one - sf) * pre_out
    y[2 * i] = pf * nr
    y[2 * i + 1] = pf * ni


@njit(**SERIAL)
def _update_block(x, y, scale, a_in, b_in, a_out, b_out, hpr_gamma, constraint, feedback,
                  pre_out, state, est):
    # Written branch-free (flags as 0/1 factors) on the real views, all in the working
    # precision (one float64 constant or sum would convert every pixel), so that it vectorises.
    one = scale / scale
    zero = one - one
    diff = norm = zero                    # a block is short: the driver sums in float64
    both = np.int32(0)
    keep_imag = constraint == 0
    clip = constraint == 2
    hpr = hpr_gamma >= zero
    h2 = (one + hpr_gamma) * (one + hpr_gamma)
    fb = feedback and clip
    for i in range(state.size):
        st = state[i]
        s = st >> 1
        both += np.int32(s & st)
        state[i] = s
        s = s != 0
        yr = y[2 * i] * scale
        yim = y[2 * i + 1] * scale
        xr = x[2 * i]
        xim = x[2 * i + 1]
        sf = one * s
        er = sf * (max(yr, zero) if clip else yr)          # P_S: real / positive parts
        ei = sf * keep_imag * yim
        inside = s & ~(fb & (yr < zero)) & (~hpr | (h2 * (yr * yr + yim * yim) >= xr * xr + xim * xim))
        _apply(x, y, i, one * inside, sf, one, a_in, b_in, a_out, b_out, pre_out,
               xr, xim, er, ei, yr, yim)
        old_r = est[2 * i]
        old_i = est[2 * i + 1]
        dr = er - old_r
        di = ei - old_i
        diff += dr * dr + di * di
        norm += old_r * old_r + old_i * old_i
        est[2 * i] = er
        est[2 * i + 1] = ei
    return diff, norm, both


#: ``held`` flags, one per block of ``BLOCK`` pixels of a slab (see :func:`update_slabs`)
HELD_NOT, HELD, HELD_ANYWHERE = 0, 1, 2


def held_shape(rows):
    """Shape of the ``held`` flags of arrays viewed as ``rows = (n0, R)``."""
    return rows[0], -(-rows[1] // BLOCK)


@njit(**SERIAL)
def _update_lean(x, y, scale, a_in, b_in, a_out, b_out, constraint, pre_out, state):
    # _update_block for a rule keeping y on the support (a_in = 0, b_in = 1, no outside rule
    # on support pixels), whose x is then the estimate there: the old estimate is x on the
    # old support, and est is neither read nor written (a third of the update's traffic).
    one = scale / scale
    zero = one - one
    diff = norm = zero
    both = np.int32(0)
    keep_imag = constraint == 0
    clip = constraint == 2
    for i in range(state.size):
        st = state[i]
        s = st >> 1
        both += np.int32(s & st)
        state[i] = s
        so = one * ((st & 1) != 0)      # as bools: one * (st & 1) would be float64
        sf = one * (s != 0)
        yr = y[2 * i] * scale
        yim = y[2 * i + 1] * scale
        xr = x[2 * i]
        xim = x[2 * i + 1]
        er = sf * (max(yr, zero) if clip else yr)
        ei = sf * keep_imag * yim
        _apply(x, y, i, sf, sf, one, a_in, b_in, a_out, b_out, pre_out,   # x = er on the support
               xr, xim, er, ei, yr, yim)
        old_r = so * xr
        old_i = so * xim
        dr = er - old_r
        di = ei - old_i
        diff += dr * dr + di * di
        norm += old_r * old_r + old_i * old_i
    return diff, norm, both


@njit(**SERIAL)
def _update_outside(x, y, scale, a_out, b_out, pre_out):
    # a block off the old and the new support (real views): the estimate is 0 there before
    # and after
    for i in range(x.size):
        nr = a_out * x[i] + b_out * (y[i] * scale)
        x[i] = nr
        y[i] = pre_out * nr


@njit(**SERIAL)
def _hold(x, support, est):
    # the estimate of a block not held: x on the support (real views; support as 0/1 in bit 0)
    one = est[0] - est[0] + True
    for i in range(support.size):
        f = one * ((support[i] & 1) != 0)
        est[2 * i] = f * x[2 * i]
        est[2 * i + 1] = f * x[2 * i + 1]


@njit(**SERIAL)
def _update_slab(x, y, scale, coef, hpr_gamma, constraint, feedback, pre_out, state, est,
                 held, lean):
    real = coef.dtype
    x, y, est = x.view(real), y.view(real), est.view(real)
    gamma = real.type(hpr_gamma)
    diff = norm = 0.0
    both = 0
    for k in range(held.size):
        b0, b1 = k * BLOCK, min((k + 1) * BLOCK, state.size)
        re = slice(2 * b0, 2 * b1)
        h = held[k]
        if h != HELD_ANYWHERE and not _touched(state[b0:b1]):
            _update_outside(x[re], y[re], scale, coef[2], coef[3], pre_out)
            continue
        if lean and h == HELD_NOT:
            d, m, b = _update_lean(x[re], y[re], scale, coef[0], coef[1], coef[2], coef[3],
                                   constraint, pre_out, state[b0:b1])
        else:
            if h == HELD_NOT:
                _hold(x[re], state[b0:b1], est[re])
            d, m, b = _update_block(x[re], y[re], scale, coef[0], coef[1], coef[2], coef[3],
                                    gamma, constraint, feedback, pre_out, state[b0:b1], est[re])
            held[k] = HELD_NOT if lean else HELD
        diff += d
        norm += m
        both += b
    return diff, norm, both


@njit(**PARALLEL)
def update_slabs(execute, plan, x, y, scale, coef, hpr_gamma, constraint, feedback, pre_out,
                 state, est, held, keep_estimate, sums_part):
    """One fused update with the new support, slab by slab in place on ``x``, ``y``,
    ``state``, ``est``, ``held`` (2-D views ``(n0, R)``, ``held`` of :func:`held_shape`), then
    ``plan`` on each slab of ``y`` (the first half of the next forward FFT; 0: none).

    ``state`` (uint8) holds the old support in bit 0 and the new one in bit 1 (the shrinkwrap
    selection marks it, :func:`candidates_threshold` or :func:`mark_chosen`); afterwards it
    holds the new support as 0/1. With ``y = scale * y_unscaled`` (the modulus projection)
    and ``coef = (a_in, b_in, a_out, b_out)``: support pixels get ``a_in x + b_in P(y)`` with
    the support constraint ``P`` (``constraint``: 0 none, 1 real part, 2 real part clipped
    at 0), others ``a_out x + b_out y``. A support pixel takes the outside rule where
    positivity (``constraint == 2``) fails if ``feedback`` is set (Fienup's HIO with
    positivity), and, if ``hpr_gamma >= 0`` (HPR), where ``(1 + gamma)|y| < |x|``.
    Also writes the next FFT input ``y <- x`` on the support and ``pre_out * x`` off it.

    The estimate is ``P(y)`` on the support, 0 off it. Where a rule keeps ``y`` on the
    support (``a_in = 0``, ``b_in = 1``, no outside rule there) that is ``x`` on the support,
    and unless ``keep_estimate`` (a hook may change ``x``) it is not stored. Per block of
    ``BLOCK`` pixels, ``held`` says where the estimate is: ``HELD_NOT``, x on the support;
    ``HELD``, in ``est``, 0 off the support; ``HELD_ANYWHERE``, in ``est``, nonzero anywhere
    (an incoming estimate: a merge's average is nonzero off the support it keeps). Blocks
    off both supports and not ``HELD_ANYWHERE`` skip the estimate. :func:`hold_estimate`
    puts the whole estimate in ``est``. Per chunk ``c``: ``sums_part[c] = (sum |est_new -
    est_old|^2, sum |est_old|^2, |S_old and S_new|)``.
    """
    rest = x.shape[1]
    nchunks = sums_part.shape[0]
    base, step = y.ctypes.data, rest * y.itemsize
    lean = (not keep_estimate and coef[0] == 0 and coef[1] == 1 and hpr_gamma < 0
            and not (feedback and constraint == 2))
    for c in prange(nchunks):
        diff = norm = 0.0
        both = 0
        for s in _slabs_of(y, c, nchunks):
            d, m, b = _update_slab(x[s], y[s], scale, coef, hpr_gamma, constraint, feedback,
                                   pre_out, state[s], est[s], held[s], lean)
            diff += d
            norm += m
            both += b
            _run(execute, plan, base + s * step)
        sums_part[c, 0] = diff
        sums_part[c, 1] = norm
        sums_part[c, 2] = both


@njit(**PARALLEL)
def hold_estimate(x, support, est, held, nchunks):
    """Puts the whole estimate in ``est`` (see :func:`update_slabs`): ``x`` on the support
    (uint8 0/1) in blocks not held; all blocks are then held."""
    real = est.real.dtype
    for c in prange(nchunks):
        for s in _slabs_of(x, c, nchunks):
            xs, es = x[s].view(real), est[s].view(real)
            for k in range(held.shape[1]):
                if held[s, k] == HELD_NOT:
                    b0, b1 = k * BLOCK, min((k + 1) * BLOCK, x.shape[1])
                    _hold(xs[2 * b0:2 * b1], support[s, b0:b1], es[2 * b0:2 * b1])
                    held[s, k] = HELD
