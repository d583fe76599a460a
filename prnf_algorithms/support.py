"""Shrinkwrap by size: the ``N`` highest scores, found in O(n) by a two-level radix select.

Scores are non-negative float32, so their bit patterns read as int32 order like the scores.
A histogram of the top 16 bits (one parallel pass) finds the bin holding the N-th largest;
only that bin's pixels are gathered (a second pass) and the exact threshold is picked among
them with ``np.partition``. Ties at the threshold go to the lowest indices, so exactly ``N``
pixels are chosen, deterministically.
"""
from __future__ import annotations

import numpy as np

from . import kernels


class SupportSelector:
    """Work arrays for selecting supports of one array size with ``nchunks`` chunks."""

    def __init__(self, size, nchunks):
        self.hist_part = np.zeros((nchunks, 1 << 15), np.int64)
        self.size = size

    def threshold(self, keys, count):
        """(threshold, last_tie) such that ``key > threshold`` or ``key == threshold and
        index <= last_tie`` selects exactly ``min(count, eligible)`` pixels."""
        kernels.key_histogram(keys, self.hist_part)
        hist = self.hist_part.sum(axis=0)
        above = np.cumsum(hist[::-1])          # above[j]: pixels in the top j+1 bins
        if above[-1] <= count:
            return -1, -1                      # every eligible pixel is chosen
        j = int(np.searchsorted(above, count))  # first j with above[j] >= count
        top = hist.size - 1 - j
        needed = count - (int(above[j - 1]) if j > 0 else 0)
        index, key = self._gather(keys, top)
        return _exact_threshold(index, key, needed)

    def _gather(self, keys, top):
        per_chunk = self.hist_part[:, top]
        offsets = np.concatenate([[0], np.cumsum(per_chunk)[:-1]]).astype(np.int64)
        total = int(per_chunk.sum())
        index = np.empty(total, np.int64)
        key = np.empty(total, np.int32)
        kernels.gather_bin(keys, np.int32(top), offsets, index, key)
        return index, key


def _exact_threshold(index, key, needed):
    """Among one bin's candidates (ascending index), the ``needed`` largest keys, ties by index."""
    kth = np.partition(key, key.size - needed)[key.size - needed]
    greater = int(np.count_nonzero(key > kth))
    ties = np.nonzero(key == kth)[0]
    last_tie = int(index[ties[needed - greater - 1]])
    return int(kth), last_tie
