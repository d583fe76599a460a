"""Shrinkwrap by size: the ``N`` highest scores, found in O(n) by a two-level radix select.

Scores are non-negative float32, so their bit patterns read as int32 order like the scores.
A histogram of the top 16 bits (made while the scores are written) finds the bin holding the
N-th largest; only that bin's pixels are gathered (a second pass) and the exact threshold is
picked among them with ``np.partition``. Ties at the threshold go to the lowest indices, so
exactly ``N`` pixels are chosen, deterministically.
"""
from __future__ import annotations

import numpy as np

from . import kernels

BINS = 1 << 15   # top 16 bits of a non-negative int32


def new_histogram(nchunks):
    return np.zeros((nchunks, BINS), np.int64)


def threshold(keys, hist_part, count):
    """(threshold, last_tie) such that ``key > threshold`` or ``key == threshold and
    index <= last_tie`` selects exactly ``min(count, eligible)`` pixels, given the per-chunk
    histograms ``hist_part`` of ``keys`` (from :func:`kernels.shrinkwrap_score`)."""
    top, needed = kernels.top_bin(hist_part, count)
    if top < 0:
        return -1, -1                      # every eligible pixel is chosen
    per_chunk = hist_part[:, top]
    offsets = np.zeros(per_chunk.size, np.int64)
    np.cumsum(per_chunk[:-1], out=offsets[1:])
    total = int(per_chunk.sum())
    index, key = np.empty(total, np.int64), np.empty(total, np.int32)
    kernels.gather_bin(keys, np.int32(top), offsets, index, key)
    return _exact_threshold(index, key, needed)


def select(keys, count, nchunks=1):
    """:func:`threshold` for keys without a histogram yet (tests, one-off use)."""
    hist = new_histogram(nchunks)
    kernels.key_histogram(keys, hist)
    return threshold(keys, hist, count)


def _exact_threshold(index, key, needed):
    """Among one bin's candidates (ascending index), the ``needed`` largest keys, ties by index."""
    kth = np.partition(key, key.size - needed)[key.size - needed]
    greater = int(np.count_nonzero(key > kth))
    ties = np.nonzero(key == kth)[0]
    last_tie = int(index[ties[needed - greater - 1]])
    return int(kth), last_tie
