"""The update pass: the rule's pointwise update with the new support, then the next FFT input.

Per pixel, with ``y = P_M z`` (scaled) and ``e = P(y)`` on the new support (the support
constraint ``P``: none, real part, or real part clipped at 0), 0 off it, the rule gives the
new iterate ``x' = rule(x, e, y, inside, 1 - inside, coef, m)``; ``inside`` is 1 on support pixels that
take the support rule (0 where HIO's positivity feedback or HPR's test sends them to the
outside rule) and ``m`` the pixel map's value. :func:`update_pass` is a template
(``rules.fuse`` compiles it with a rule).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..config import PARALLEL, SERIAL
from .layout import BLOCK, run_plan, slabs_of

#: ``held`` flags, one per block of ``BLOCK`` pixels of a slab (see :func:`update_pass`)
HELD_NOT, HELD, HELD_ANYWHERE = 0, 1, 2


def held_shape(rows):
    """Shape of the ``held`` flags of arrays viewed as ``rows = (n0, R)``."""
    return rows[0], -(-rows[1] // BLOCK)


@njit(**SERIAL)
def touched(state):
    """Whether any pixel of the block is on the old or the new support."""
    any_set = np.uint8(0)
    for i in range(state.size):
        any_set |= state[i]
    return any_set != 0


@njit(inline="always")
def apply_rule(x, y, i, fi, sf, one, pre_out, xr, xim, er, ei, yr, yim, rule, coef, m):
    # the rule (fi: inside factor) into x, and the next FFT input (sf: support factor) into y
    nr, ni = rule(xr, xim, er, ei, yr, yim, fi, one - fi, coef, m)
    x[2 * i] = nr
    x[2 * i + 1] = ni
    pf = sf + (one - sf) * pre_out
    y[2 * i] = pf * nr
    y[2 * i + 1] = pf * ni


@njit(inline="always")
def update_block(x, y, scale, hpr_gamma, constraint, feedback, pre_out, state, est, pmap, rule,
                 coef):
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
        apply_rule(x, y, i, one * inside, sf, one, pre_out, xr, xim, er, ei, yr, yim, rule, coef,
                   pmap[i])
        old_r = est[2 * i]
        old_i = est[2 * i + 1]
        dr = er - old_r
        di = ei - old_i
        diff += dr * dr + di * di
        norm += old_r * old_r + old_i * old_i
        est[2 * i] = er
        est[2 * i + 1] = ei
    return diff, norm, both


@njit(inline="always")
def update_lean(x, y, scale, constraint, pre_out, state, pmap, rule, coef):
    # update_block for a rule keeping e on the support (no outside rule on support pixels),
    # whose x is then the estimate there: the old estimate is x on the old support, and est
    # is neither read nor written (a third of the update's traffic).
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
        apply_rule(x, y, i, sf, sf, one, pre_out, xr, xim, er, ei, yr, yim, rule, coef,   # x = e on S
                   pmap[i])
        old_r = so * xr
        old_i = so * xim
        dr = er - old_r
        di = ei - old_i
        diff += dr * dr + di * di
        norm += old_r * old_r + old_i * old_i
    return diff, norm, both


@njit(inline="always")
def update_outside(x, y, scale, pre_out, pmap, rule, coef):
    # a block off the old and the new support (real views): the estimate is 0 there before
    # and after, and every pixel takes the outside rule
    one = scale / scale
    zero = one - one
    for i in range(pmap.size):
        yr = y[2 * i] * scale
        yim = y[2 * i + 1] * scale
        nr, ni = rule(x[2 * i], x[2 * i + 1], zero, zero, yr, yim, zero, one, coef, pmap[i])
        x[2 * i] = nr
        x[2 * i + 1] = ni
        y[2 * i] = pre_out * nr
        y[2 * i + 1] = pre_out * ni


@njit(**SERIAL)
def hold(x, support, est):
    """The estimate of a block not held: x on the support (real views; support 0/1 in bit 0)."""
    one = est[0] - est[0] + True
    for i in range(support.size):
        f = one * ((support[i] & 1) != 0)
        est[2 * i] = f * x[2 * i]
        est[2 * i + 1] = f * x[2 * i + 1]


@njit(inline="always")
def update_slab(x, y, scale, hpr_gamma, constraint, feedback, pre_out, state, est, held, lean,
                pmap, rule, coef):
    real = pmap.dtype
    x, y, est = x.view(real), y.view(real), est.view(real)
    diff = norm = 0.0
    both = 0
    for k in range(held.size):
        b0, b1 = k * BLOCK, min((k + 1) * BLOCK, state.size)
        re = slice(2 * b0, 2 * b1)
        h = held[k]
        if h != HELD_ANYWHERE and not touched(state[b0:b1]):
            update_outside(x[re], y[re], scale, pre_out, pmap[b0:b1], rule, coef)
            continue
        if lean and h == HELD_NOT:
            d, m, b = update_lean(x[re], y[re], scale, constraint, pre_out, state[b0:b1],
                                  pmap[b0:b1], rule, coef)
        else:
            if h == HELD_NOT:
                hold(x[re], state[b0:b1], est[re])
            d, m, b = update_block(x[re], y[re], scale, hpr_gamma, constraint, feedback, pre_out,
                                   state[b0:b1], est[re], pmap[b0:b1], rule, coef)
            held[k] = HELD_NOT if lean else HELD
        diff += d
        norm += m
        both += b
    return diff, norm, both


@njit(inline="always")
def update_pass(rule, coef, execute, plan, x, y, scale, hpr_gamma, constraint, feedback, pre_out,
                state, est, held, lean, pmap, sums_part):
    """One fused update with the new support, slab by slab in place on ``x``, ``y``,
    ``state``, ``est``, ``held`` (2-D views ``(n0, R)``, ``held`` of :func:`held_shape`), then
    ``plan`` on each slab of ``y`` (the first half of the next forward FFT; 0: none).

    ``state`` (uint8) holds the old support in bit 0 and the new one in bit 1 (the selection
    marks it, ``candidates_threshold`` or ``mark_chosen``); afterwards it holds the new
    support as 0/1. With ``y = scale * y_unscaled`` (the modulus projection), support pixels
    get ``rule(x, e, y, 1, 0, coef, m)`` and others ``rule(x, 0, y, 0, 1, coef, m)`` (see the module
    docstring; ``m = pmap[pixel]``). A support pixel takes the outside rule where positivity
    (``constraint == 2``) fails if ``feedback`` is set (Fienup's HIO with positivity), and,
    if ``hpr_gamma >= 0`` (HPR), where ``(1 + gamma)|y| < |x|``. Also writes the next FFT
    input ``y <- x`` on the support and ``pre_out * x`` off it.

    The estimate is ``e`` on the support, 0 off it. With ``lean`` (the rule gives ``x' = e``
    where ``inside``, no HPR test nor feedback, and no hook changes ``x``) that is ``x`` on
    the support and is not stored. Per block of ``BLOCK`` pixels, ``held`` says where the
    estimate is: ``HELD_NOT``, x on the support; ``HELD``, in ``est``, 0 off the support;
    ``HELD_ANYWHERE``, in ``est``, nonzero anywhere (an incoming estimate: a merge's average
    is nonzero off the support it keeps). Blocks off both supports and not ``HELD_ANYWHERE``
    skip the estimate. :func:`hold_estimate` puts the whole estimate in ``est``. Per chunk
    ``c``: ``sums_part[c] = (sum |est_new - est_old|^2, sum |est_old|^2, |S_old and S_new|)``.
    """
    rest = x.shape[1]
    nchunks = sums_part.shape[0]
    base, step = y.ctypes.data, rest * y.itemsize
    for c in prange(nchunks):
        diff = norm = 0.0
        both = 0
        for s in slabs_of(y, c, nchunks):
            d, m, b = update_slab(x[s], y[s], scale, hpr_gamma, constraint, feedback, pre_out,
                                  state[s], est[s], held[s], lean, pmap[s], rule, coef)
            diff += d
            norm += m
            both += b
            run_plan(execute, plan, base + s * step)
        sums_part[c, 0] = diff
        sums_part[c, 1] = norm
        sums_part[c, 2] = both


@njit(**PARALLEL)
def hold_estimate(x, support, est, held, nchunks):
    """Puts the whole estimate in ``est`` (see :func:`update_pass`): ``x`` on the support
    (uint8 0/1) in blocks not held; all blocks are then held."""
    real = est.real.dtype
    for c in prange(nchunks):
        for s in slabs_of(x, c, nchunks):
            xs, es = x[s].view(real), est[s].view(real)
            for k in range(held.shape[1]):
                if held[s, k] == HELD_NOT:
                    b0, b1 = k * BLOCK, min((k + 1) * BLOCK, x.shape[1])
                    hold(xs[2 * b0:2 * b1], support[s, b0:b1], es[2 * b0:2 * b1])
                    held[s, k] = HELD
