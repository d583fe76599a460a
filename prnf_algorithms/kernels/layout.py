"""How the kernels walk the arrays: slabs and column blocks, chunks per thread, blocks.

The iteration's arrays are viewed as ``(n0, R)``: slabs ``a[i]`` and columns along axis 0,
the two halves of the FFT (see ``fft.SplitPlans``). Each pass is a serial function holding
the math, run by a ``prange`` driver over one share of the slabs or column blocks per chunk
(``nchunks`` = threads). Slabs are dealt out in turn, in groups of at least ``GROUP_BYTES``
(chunk ``c`` takes groups ``c, c + nchunks, ...``): the object, and with it the work on
candidates and on the support, sits in a few neighbouring slabs, and slabs dealt out one by
one made the threads slow each other down (measured: 2-thread update 1.5x slower at 512^2,
rows of 4 KiB). Per-chunk partial sums go to preallocated arrays, so results do not depend
on thread timing. The math gets slices starting at 0: loops over ``range(lo, hi)`` with
run-time bounds do not vectorise.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import PARALLEL

#: slabs are dealt out to chunks in groups of at least this many bytes (see above)
GROUP_BYTES = 1 << 17
#: pixels per block of the score and update passes: blocks without candidates skip the
#: compaction, blocks off both supports skip the estimate
BLOCK = 512


@njit(inline="always")
def bounds(n, nchunks, c):
    """Chunk ``c``'s share ``[lo, hi)`` of ``n`` items."""
    return (n * c) // nchunks, (n * (c + 1)) // nchunks


@njit(inline="always")
def slabs_of(a, c, nchunks):
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


# The n-d FFT runs in two halves (fft.SplitPlans): slabs ``buf[i]`` and blocks of columns along
# axis 0. Every pass transforms a slab or block and works on it while it is in cache, so the
# iteration reads and writes the big arrays about as often as the bare FFT pair does.

@njit(inline="always")
def run_plan(execute, plan, address):
    """Execute an FFTW ``plan`` in place at ``address`` (0: no plan, nothing)."""
    if plan != 0:
        execute(plan, address, address)


@njit(**PARALLEL)
def slabs_fft(execute, plan, buf, nchunks):
    """Transform every slab ``buf[i]`` (2-D view ``(n0, R)``) with ``plan`` in place."""
    base, step = buf.ctypes.data, buf.shape[1] * buf.itemsize
    for c in prange(nchunks):
        for s in slabs_of(buf, c, nchunks):
            run_plan(execute, plan, base + s * step)
