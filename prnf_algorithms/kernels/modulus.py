"""The modulus projection pass: column FFTs around ``F <- r(A, M) F`` on measured pixels.

``r`` is the rule's pointwise modulus ratio (``A / M`` for the projection onto the measured
amplitudes, ``M = sqrt(|F|^2 + b^2)`` with the shell background ``b``). :func:`modulus_pass`
is a template: ``rules.fuse`` compiles it with a rule into a cached parallel kernel.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import SERIAL
from .layout import bounds, run_plan

#: rows of partial shell sums per chunk (see :func:`modulus_background`)
SHELL_ROWS = 8


@njit(inline="always")
def modulus_segment(F, amp, measured, bpix, ratio, rule, coef):
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
        m = g * rule(a, max(model, tiny), coef)
        ratio[i] = m
        k = m + (one - g)
        v[2 * i] = fr * k + g * a * (model <= zero)    # |F| = 0 measured: A with zero phase
        v[2 * i + 1] = fi * k
    return err


@njit(inline="always")
def modulus_background(F, amp, measured, bins, bg, bpix, ratio, sums, rule, coef):
    n = F.size
    for i in range(n):
        bpix[i] = bg[bins[i]]
    err = modulus_segment(F, amp, measured, bpix, ratio, rule, coef)
    # SHELL_ROWS rows used in turn: neighbouring pixels usually share a shell, and a single
    # row would chain every add on the previous one through memory
    for i in range(n):
        sums[i % SHELL_ROWS, bins[i]] += ratio[i]
    return err


@njit(inline="always")
def modulus_pass(rule, coef, execute, plans, buf, amp, measured, bins, bg, scratch, err_part,
                 shell_part):
    """Forward column FFT, modulus projection, inverse column FFT, block by block in place.

    ``buf`` is the 2-D view ``(n0, R)`` after its slab FFTs, so after the column FFT it holds
    ``F``; the per-pixel arrays are flat in block order (``fft.SplitPlans.blocked``). On
    measured pixels, with the shell background ``b = bg[bins]`` and ``M = sqrt(|F|^2 + b^2)``:
    ``F <- rule(A, M, coef) F`` (``A`` with zero phase where ``M = 0``); unmeasured pixels
    float. Per chunk ``c``: ``err_part[c] = sum (M - A)^2`` over measured pixels and, with
    background (``bg.size > 0``), the sums of the ratios per shell over measured pixels spread
    over the ``SHELL_ROWS`` rows of ``shell_part`` from row ``SHELL_ROWS * c`` (for
    :func:`refit_background`). ``plans`` and ``scratch`` (one block per chunk) come from
    :class:`fft.SplitPlans`.
    """
    if 2 * amp.itemsize != buf.itemsize or scratch.itemsize != buf.itemsize:
        raise ValueError("modulus_pass: amp must be the real type of buf and scratch")
    n0, rest = buf.shape
    nchunks = err_part.size
    width = scratch.shape[1] // n0
    nblocks = -(-rest // width)
    fit_bg = bg.size > 0
    for c in prange(nchunks):
        lo, hi = bounds(nblocks, nchunks, c)
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
            run_plan(execute, plans[2 + narrow], address)
            pixels = slice(n0 * j0, n0 * j0 + n)
            if fit_bg:
                err += modulus_background(block, amp[pixels], measured[pixels], bins[pixels], bg,
                                          bpix[:n], ratio[:n], sums, rule, coef)
            else:
                err += modulus_segment(block, amp[pixels], measured[pixels], bpix[:n], ratio[:n],
                                       rule, coef)
            run_plan(execute, plans[3 + narrow], address)
            for i in range(n0):
                buf[i, j0:j0 + w] = block[i * w:(i + 1) * w]
        err_part[c] = err


@njit(**SERIAL)
def refit_background(shell_part, shell_counts, bg):
    """``bg[k] <- bg[k] * (sum over the rows of shell_part[:, k]) / count_k`` in place: the shell
    mean of the projected background ``r b`` (0 on shells without measured pixels)."""
    for k in range(bg.size):
        total = 0.0
        for c in range(shell_part.shape[0]):
            total += shell_part[c, k]
        bg[k] = bg[k] * total / max(shell_counts[k], 1)
