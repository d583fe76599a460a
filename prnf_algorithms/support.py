"""Shrinkwrap by size: the ``N`` highest scores, found in O(n) by a two-level radix select.

Scores are non-negative float32, so their bit patterns read as int32 order like the scores.
A histogram of the top 16 bits finds the bin holding the N-th largest; only that bin's pixels
are gathered (a second pass) and the exact threshold is picked among them with
``np.partition``. Most iterations skip even that: see :class:`Selector`. Ties at the
threshold go to the lowest indices, so exactly ``N`` pixels are chosen, deterministically.
"""
from __future__ import annotations

import numpy as np

from . import fft, kernels

BINS = 1 << 15   # top 16 bits of a non-negative int32
_NO_IMAGE = np.empty((1, 0), np.float32)    # score_pass stores no scores


def new_histogram(nchunks):
    return np.zeros((nchunks, BINS), np.int64)


class Selector:
    """Exact top-N selection that usually costs nothing beyond the score pass.

    The score pass (:meth:`score`) already collects every pixel whose score is above a floor,
    a fraction of the last threshold (scores move slowly from one iteration to the next).
    When at least ``count`` pixels cleared the floor and all fitted in the candidate buffers,
    the exact threshold comes from those candidates alone; otherwise (first iteration, a
    sudden drop) the radix select over all pixels runs. The fraction adapts: looser after a
    miss, tighter when candidates overflow.
    """

    def __init__(self, nchunks, count):
        self.cap = max(1024, 4 * count)
        self.fraction = 0.7
        self.cand_index = np.empty((nchunks, self.cap + 1), np.int64)   # + overflow slot
        self.cand_key = np.empty((nchunks, self.cap + 1), np.int32)
        self.cand_count = np.zeros(nchunks, np.int64)
        self.bin_index = np.empty(nchunks * self.cap, np.int64)   # the threshold bin's candidates
        self.bin_key = np.empty(nchunks * self.cap, np.int32)
        self.hist_part = None
        self.floor = np.int32(np.iinfo(np.int32).max)   # no candidates before a first threshold

    def score(self, kernel, coef, y, scale, eligible, plan=0, execute=None, image=None):
        """Run ``plan`` (0: none) on each slab of ``y``, then score it with a fused score
        ``kernel`` (``Rules.kernels["score"]``, coefficients ``coef``) and collect candidates
        (:func:`kernels.score_pass`; arrays are 2-D views ``(n0, R)``); every score is also
        stored in ``image`` (float32, the view's shape) when given."""
        execute = execute or fft.library(y.dtype).execute
        image = _NO_IMAGE if image is None else image
        kernel(coef, execute, plan, y, scale, eligible, self.floor, self.cand_index,
               self.cand_key, self.cand_count, image)

    def select(self, count, all_keys, state, rescored=False, at_least=None):
        """Marks the ``min(count, eligible)`` chosen pixels in bit 1 of ``state`` (flat uint8,
        the old support in bit 0) and returns (threshold, last_tie): ``key > threshold or
        (key == threshold and index <= last_tie)``. ``all_keys()`` gives every pixel's key
        (the scores' int32 bits); it is called only when the candidates do not suffice or the
        scores were ``rescored`` since the score pass. ``at_least``: the chosen are known to
        be exactly the pixels whose score is at least this (a threshold rule counted them),
        marked in one pass without the radix select."""
        counts = self.cand_count
        total = counts.sum()
        enough, fits = total >= count, counts.max() <= self.cap
        if not enough:
            self.fraction = self.fraction ** 2
        elif total > 2 * count:            # keep the exact step small: about N to 2N candidates
            self.fraction = (1 + self.fraction) / 2
        if at_least is not None:
            result = (key_at_least(at_least) - 1, -1)      # key >= that of the level
            kernels.mark_chosen(all_keys(), np.int32(result[0]), result[1], state, counts.size)
        elif not rescored and enough and fits:
            result = kernels.candidates_threshold(self.cand_index, self.cand_key, counts, count,
                                                  self.bin_index, self.bin_key, state)
        else:
            if self.hist_part is None:
                self.hist_part = new_histogram(counts.size)
            keys = all_keys()
            result = threshold(keys, self.hist_part, count)
            kernels.mark_chosen(keys, np.int32(result[0]), result[1], state, counts.size)
        self._set_floor(result[0])
        return result

    def _set_floor(self, key):
        score = np.int32(max(key, 0)).view(np.float32)
        self.floor = np.float32(score * self.fraction).view(np.int32) if key >= 0 else np.int32(0)


def key_at_least(level):
    """The key of the smallest float32 score that is at least ``level`` (> 0): a float32
    score is at least ``level`` exactly when its key is at least this."""
    score = np.float32(level)
    if float(score) < level:
        score = np.nextafter(score, np.float32(np.inf))
    return int(score.view(np.int32))


def threshold(keys, hist_part, count):
    """(threshold, last_tie) by radix select over all pixels: a histogram of the keys' top 16
    bits finds the bin of the ``count``-th largest, whose pixels alone are then gathered."""
    kernels.key_histogram(keys, hist_part)
    top, needed = kernels.top_bin(hist_part, count)
    if top < 0:
        return -1, -1                      # every eligible pixel is chosen
    per_chunk = hist_part[:, top]
    offsets = np.zeros(per_chunk.size, np.int64)
    np.cumsum(per_chunk[:-1], out=offsets[1:])
    total = int(per_chunk.sum())
    index, key = np.empty(total, np.int64), np.empty(total, np.int32)
    kernels.gather_bin(keys, np.int32(top), offsets, index, key)
    return kernels.exact_threshold(index, key, needed)


def select(keys, count, nchunks=1):
    """:func:`threshold` with fresh work arrays (tests, one-off use)."""
    return threshold(keys, new_histogram(nchunks), count)
