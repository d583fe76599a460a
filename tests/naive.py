"""Slow, obvious NumPy twins of the Numba kernels, for checking them."""
import numpy as np


def modulus_project(F, amp, measured, b):
    """Returns (projected F, sum of squared misfit, ratio A/M on measured pixels)."""
    model = np.sqrt(np.abs(F) ** 2 + b ** 2)
    err = np.sum(((model - amp) ** 2)[measured])
    with np.errstate(divide="ignore", invalid="ignore"):
        m = np.where(model > 0, amp / model, 0)
    projected = np.where(model > 0, F * m, amp)
    return np.where(measured, projected, F), err, np.where(measured, m, 0)


def projected_background(bins, ratio, measured, bg):
    """New shell background: the shell mean, over measured pixels, of (A/M) b."""
    sums = np.bincount(bins[measured], weights=(ratio * bg[bins])[measured], minlength=bg.size)
    counts = np.bincount(bins[measured], minlength=bg.size)
    return sums / np.maximum(counts, 1)


def constrain(y, constraint):
    if constraint == 0:
        return y
    return (y.real if constraint == 1 else np.maximum(y.real, 0)).astype(y.dtype)


def update(x, y_unscaled, support, scale, coef, hpr_gamma, constraint, est, eligible, feedback=True):
    """Returns (new x, new estimate, score, eCon numerator, eCon denominator).

    ``feedback``: support pixels failing positivity take the outside rule (HIO with positivity).
    """
    a_in, b_in, a_out, b_out = coef
    y = y_unscaled * scale
    e = np.where(support, constrain(y, constraint), 0)
    inside = support & ~(feedback & (constraint == 2) & (y.real < 0))
    if hpr_gamma >= 0:
        inside &= (1 + hpr_gamma) * np.abs(y) >= np.abs(x)
    new_x = np.where(inside, a_in * x + b_in * e, a_out * x + b_out * y)
    score = np.where(eligible, np.abs(y) ** 2, -1.0).astype(np.float32)
    return new_x, e, score, np.sum(np.abs(e - est) ** 2), np.sum(np.abs(est) ** 2)


def score(y_unscaled, scale, eligible):
    """Shrinkwrap scores |scale y|^2 as float32, -1 outside the fixed support."""
    re, im = y_unscaled.real * scale, y_unscaled.imag * scale
    return np.where(eligible, (re * re + im * im).astype(np.float32), np.float32(-1.0))


def top_n(score, n):
    """Boolean mask of the n largest non-negative scores; ties go to the lower index."""
    eligible = np.nonzero(score >= 0)[0]
    order = eligible[np.lexsort((eligible, -score[eligible]))]
    chosen = np.zeros(score.size, bool)
    chosen[order[:n]] = True
    return chosen
