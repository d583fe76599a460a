"""The shrinkwrap selection: the score pass and the exact top-N selection by radix select.

The score is the rule's pointwise support score of ``y = P_M z`` (``|y|^2`` for every
built-in), float32, -1 outside the fixed support. Non-negative float32 scores, read as int32,
order like the scores: the selection works on these keys. :func:`score_pass` and
:func:`score_image` are templates (``rules.fuse`` compiles them with a rule).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import PARALLEL, SERIAL
from .layout import BLOCK, bounds, run_plan, slabs_of


@njit(inline="always")
def scores(y, scale, eligible, score, rule, coef):
    """``score = rule(scale * y)`` (float32, clipped at 0) where ``eligible``, else -1."""
    outside = np.float32(-1.0)
    zero = np.float32(0.0)
    for i in range(score.size):
        s = np.float32(rule(y[i].real * scale, y[i].imag * scale, coef))
        score[i] = max(s, zero) if eligible[i] else outside


@njit(**SERIAL)
def top_key(keys):
    # an integer max reduction vectorises; a float one would not
    top = np.int32(-1)
    for i in range(keys.size):
        top = max(top, keys[i])
    return top


@njit(**SERIAL)
def compact(keys, floor, offset, cand_index, cand_key, count):
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


@njit(inline="always")
def score_row(y, scale, eligible, block, floor, offset, cand_index, cand_key, count, rule, coef,
              stored, store):
    for b0 in range(0, y.size, BLOCK):
        b1 = min(b0 + BLOCK, y.size)
        n = b1 - b0
        out = stored[b0:b1] if store else block[:n]
        scores(y[b0:b1], scale, eligible[b0:b1], out, rule, coef)
        keys = out.view(np.int32)
        # candidates are few and clustered: most blocks have none, and skip the compaction
        if top_key(keys) >= floor:
            count = compact(keys, floor, offset + b0, cand_index, cand_key, count)
    return count


@njit(inline="always")
def score_pass(rule, coef, execute, plan, y, scale, eligible, floor, cand_index, cand_key,
               cand_count, image):
    """Run ``plan`` on each slab of ``y`` (0: no transform), then score it: ``rule(scale *
    y)`` where ``eligible``, else -1; arrays are 2-D views ``(n0, R)``.

    The scores are stored in ``image`` when it has the shape of ``y`` (what
    :func:`score_image` would give, made here while the slab is in cache, for an iteration
    that updates the support from them); with ``image`` of shape ``(1, 0)`` they are not:
    only the candidates, per chunk ``c``, whose key (the score's int32 bits, which order like
    the non-negative scores) is ``>= floor``: their flat indices and keys in
    ``cand_index[c]``, ``cand_key[c]``, and their number in ``cand_count[c]``. The last
    column is scratch: a count above ``row length - 1`` means the row overflowed and is
    incomplete.
    """
    rest = y.shape[1]
    nchunks = cand_count.size
    base, step = y.ctypes.data, rest * y.itemsize
    store = image.shape[1] > 0
    for c in prange(nchunks):
        block = np.empty(BLOCK, np.float32)
        count = 0
        for s in slabs_of(y, c, nchunks):
            run_plan(execute, plan, base + s * step)
            stored = image[s] if store else image[0]
            count = score_row(y[s], scale, eligible[s], block, floor, s * rest,
                              cand_index[c], cand_key[c], count, rule, coef, stored, store)
        cand_count[c] = count


@njit(inline="always")
def score_image(rule, coef, y, scale, eligible, score, nchunks):
    """Every pixel's score, as :func:`score_pass` computes it, into ``score``; 2-D views
    ``(n0, R)``."""
    for c in prange(nchunks):
        for s in slabs_of(y, c, nchunks):
            scores(y[s], scale, eligible[s], score[s], rule, coef)


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
        lo, hi = bounds(n, nchunks, c)
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
        lo, hi = bounds(n, nchunks, c)
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
        lo, hi = bounds(n, nchunks, c)
        _gather_chunk(keys[lo:hi], top, lo, out_index, out_key, offsets[c])
