"""Finishing a merged result so that a scientist can use it as it comes (issue 32).

Phasing from nothing leaves the object with three freedoms the data cannot fix, and a
result is only comparable between runs once each is fixed by a rule:

- **A linear phase ramp.** When the pattern's zero frequency is not at the ``center`` the
  data was phased about (a Bragg peak 2 voxels off its centre of symmetry), the object
  carries ``exp(i g.r)`` with ``g = 2 pi d / N``: its spectrum sits ``d`` pixels off zero
  frequency. Removing the ramp is moving the data's centre by ``d``: the model's diffraction
  in the data's frame does not change, only the centre it is compared about
  (``corrections["center"]``).
- **Position and global phase.** The object is rolled so that its centre of mass of
  ``|x|^2`` on the support sits at the array centre (the support moves with it) and its
  phase is set to zero at the amplitude-weighted circular mean phase ``arg sum_S x``.
- **Orientation.** ``x`` and its twin ``conj(x(-r))`` fit the data equally;
  :func:`orientation_score` picks one.

Pure NumPy/SciPy; nothing here knows an algorithm.
"""
from __future__ import annotations

import logging

import numpy as np
import scipy.fft as sfft
from scipy import ndimage

from .merge import centre_of_mass_shift, twin

log = logging.getLogger(__name__)

#: A normalised third moment (skewness) of the object's density below this does not decide
#: the orientation: on simulated 48^3 crystals (skewness 0.01-0.26 per axis) reconstructions
#: from single repeats differed from the truth's by 0.0004-0.04.
SKEW_DECIDES = 0.05
#: Likewise the quadratic phase moment (:func:`orientation_score`), in radians.
PHASE_DECIDES = 1e-3


def _mask(support, shape):
    """The support as bool (a merged support is a fraction of repeats: majority inside)."""
    if support is None:
        return np.ones(shape, bool)
    support = np.asarray(support)
    return support if support.dtype == bool else support > 0.5


def _density(obj, inside):
    """``|obj|^2`` on ``inside`` in units of its peak there (single precision stays finite
    whatever the data's units)."""
    density = np.abs(obj)
    density[~inside] = 0
    peak = float(density.max()) if density.size else 0.0
    if 0.0 < peak < np.inf:
        density /= peak
    return np.square(density, out=density)


def whole_pixel_ramp(obj, support=None):
    """The frequency (signed pixels per axis, ints) where ``|FFT(obj on support)|^2`` peaks:
    the whole-pixel part of the object's phase ramp, ``g = 2 pi d / N``."""
    inside = _mask(support, obj.shape)
    # transformed in place (the masked copy is ours): two volumes fewer at 512^3
    power = np.abs(sfft.fftn(np.where(inside, obj, 0), overwrite_x=True))
    peak = np.unravel_index(int(np.argmax(power)), power.shape)
    return [int(p - n if p > n // 2 else p) for p, n in zip(peak, obj.shape)]


def mean_phase_gradient(obj, support=None):
    """The amplitude-weighted mean phase step per pixel along each axis, ``arg sum
    conj(x_r) x_(r+e)`` over neighbour pairs both on the support (rad/pixel).

    No unwrapping is needed (each pair's step is taken on the circle) and the weights are
    ``|x_r| |x_(r+e)|``; for a slowly varying amplitude this is the centre of mass of
    ``|FFT(x)|^2`` (cohere's ``remove_ramp``) times ``2 pi / N``. Sums in double precision.
    """
    inside = _mask(support, obj.shape)
    gradient = []
    for axis in range(obj.ndim):
        lo = [slice(None)] * obj.ndim
        hi = [slice(None)] * obj.ndim
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        lo, hi = tuple(lo), tuple(hi)
        pairs = inside[lo] & inside[hi]
        # products in double precision: single-precision objects in large data units
        # (5.5e19 with a hot pixel) overflow float32 when multiplied
        total = np.sum(np.conj(obj[lo][pairs].astype(np.complex128)) * obj[hi][pairs])
        gradient.append(float(np.angle(total)) if total != 0 else 0.0)
    return gradient


def apply_phase_ramp(obj, ramp, origin=None):
    """``obj * exp(-i sum_a ramp_a (r_a - origin_a))`` in ``obj``'s precision, one axis at a
    time (no coordinate volume); ``origin`` defaults to the array centre ``N // 2``."""
    out = np.array(obj, copy=True)
    origin = [n // 2 for n in obj.shape] if origin is None else origin
    for axis, (n, g, o) in enumerate(zip(obj.shape, ramp, origin)):
        if g:
            view = [1] * obj.ndim
            view[axis] = n
            factor = np.exp(-1j * g * (np.arange(n) - o)).astype(out.dtype)
            out *= factor.reshape(view)
    return out


def remove_phase_ramp(obj, support=None):
    """Fit and remove the linear phase ramp of ``obj`` (2D or 3D, complex).

    The whole-pixel part ``d`` from the peak of ``|FFT(obj)|^2`` (its offset from zero
    frequency), removed exactly; the sub-pixel rest by :func:`mean_phase_gradient` of what
    is left (an amplitude-weighted fit of the phase gradient, wrap-safe).

    Parameters
    ----------
    obj : ndarray, complex, shape (N0, N1[, N2])
    support : ndarray, bool or float in [0, 1], optional
        Pixels that count (a float support: those above 0.5); default all.

    Returns
    -------
    corrected : ndarray
        ``obj * exp(-i ramp.(r - N//2))``, in ``obj``'s precision.
    ramp : list of float
        The removed ramp, rad per pixel per axis (``2 pi d / N`` for a spectrum ``d``
        pixels off zero frequency).
    """
    inside = _mask(support, obj.shape)
    whole = [2 * np.pi * d / n for d, n in zip(whole_pixel_ramp(obj, inside), obj.shape)]
    demodulated = apply_phase_ramp(obj, whole)
    rest = mean_phase_gradient(demodulated, inside)
    del demodulated             # before the corrected copy is made
    ramp = [w + r for w, r in zip(whole, rest)]
    return apply_phase_ramp(obj, ramp), ramp


def _central_coordinates(density):
    """Per axis: coordinates relative to the (plain) centre of mass of ``density`` (the
    object is centred first, so it does not straddle the array edge), and the total mass."""
    total = float(np.sum(density, dtype=np.float64))
    coords = []
    for axis, n in enumerate(density.shape):
        profile = density.sum(axis=tuple(i for i in range(density.ndim) if i != axis),
                              dtype=np.float64)
        r = np.arange(n, dtype=np.float64)
        coords.append(r - float(np.sum(profile * r)) / total)
    return coords, total


def orientation_score(obj, support=None):
    """A number whose sign the twin ``conj(obj(-r))`` reverses (0: undecided).

    The rule, in order: the normalised third moment (skewness) of the density ``|x|^2`` on
    the support along the axis where it is largest in magnitude (the first of equals), if
    at least :data:`SKEW_DECIDES` (not the first axis where it is nonzero: a small skewness,
    0.014 on a simulated crystal, is near what reconstruction noise changes); if the
    density is nearly centrosymmetric along every axis, the quadratic phase moment
    ``sum |x|^2 phi rho^2 / sum |x|^2 rho^2`` (``phi`` the phase about the amplitude-weighted
    mean phase, ``rho`` the distance from the centre of mass), if at least
    :data:`PHASE_DECIDES` rad; else the largest skewness if not 0, else 0 (``x`` and its
    twin are then one object up to a translation). The kept orientation is the one with a
    positive score. Expects a centred object (see :func:`finish_result`).
    """
    inside = _mask(support, obj.shape)
    # within the support's box: every moment is about the centre of mass, so the box gives
    # the same numbers, without the several volume-sized float64 temporaries of the phase
    # moment (4.5 volumes at the peak of finishing)
    box = _slices(bounding_box(inside), inside.ndim)
    obj, inside = obj[box], inside[box]
    density = _density(obj, inside)
    coords, total = _central_coordinates(density)
    if total <= 0:
        return 0.0
    skews = []
    for axis, r in enumerate(coords):
        profile = density.sum(axis=tuple(i for i in range(obj.ndim) if i != axis),
                              dtype=np.float64)
        variance = float(np.sum(profile * r * r)) / total
        skews.append(float(np.sum(profile * r ** 3)) / total / variance ** 1.5
                     if variance > 0 else 0.0)
    skew = skews[int(np.argmax(np.abs(skews)))]
    if abs(skew) >= SKEW_DECIDES:
        return skew
    mean = np.sum(np.where(inside, obj, 0), dtype=np.complex128)
    phase = np.angle(obj * np.conj(mean / abs(mean) if abs(mean) else 1.0))
    rho2 = sum(np.reshape(r * r, [-1 if k == a else 1 for k in range(obj.ndim)])
               for a, r in enumerate(coords))
    weight = density * rho2
    norm = float(np.sum(weight, dtype=np.float64))
    moment = float(np.sum(weight * phase, dtype=np.float64)) / norm if norm > 0 else 0.0
    if abs(moment) >= PHASE_DECIDES:
        return moment
    return skew if abs(skew) > 1e-9 else 0.0


#: A piece of the support counts as holding the object when it holds at least this share of
#: the object's ``|x|^2`` on the support. A support chosen by size keeps pixels where the
#: object is all but zero: spipy's example network (support 1.2 times the object, error
#: 0.005) kept 26 single pixels beside the object, 27 pieces, one of them holding it.
PIECE_SHARE = 0.01


def support_summary(support, obj=None):
    """Size, bounding box and connected components of a support.

    Parameters
    ----------
    support : ndarray, bool or float in [0, 1]
        A float support (the fraction of merged repeats) counts the pixels above 0.5.
    obj : ndarray, complex, optional
        The object on it: then also how many pieces hold the object.

    Returns
    -------
    dict
        ``size`` (pixels), ``bbox`` (``[[lo, hi], ...]`` per axis, both inclusive; empty for
        an empty support), ``components`` (scipy.ndimage.label, full connectivity: pixels
        touching by a corner are one component) and, with ``obj``, ``pieces_with_object``
        (components holding at least :data:`PIECE_SHARE` of its ``|x|^2`` on the support);
        plain ints.
    """
    inside = _mask(support, np.shape(support))
    size = int(np.count_nonzero(inside))
    if not size:
        return {"size": 0, "bbox": [], "components": 0,
                **({} if obj is None else {"pieces_with_object": 0})}
    bbox = bounding_box(inside)
    box = _slices(bbox, inside.ndim)                      # no component reaches outside it
    inside = inside[box]
    structure = ndimage.generate_binary_structure(inside.ndim, inside.ndim)
    labels, components = ndimage.label(inside, structure)
    summary = {"size": size, "bbox": bbox, "components": int(components)}
    if obj is not None:
        density = _density(np.asarray(obj)[box], inside)
        shares = ndimage.sum_labels(density, labels, index=np.arange(1, components + 1))
        total = float(np.sum(shares))
        summary["pieces_with_object"] = (int(np.count_nonzero(shares >= PIECE_SHARE * total))
                                         if total > 0 else 0)
    return summary


def _slices(bbox, ndim):
    """Index of a :func:`bounding_box` (the whole array for an empty one)."""
    return tuple(slice(lo, hi + 1) for lo, hi in bbox) if bbox else (slice(None),) * ndim


def bounding_box(mask):
    """``[[first, last], ...]`` index per axis of the True pixels of ``mask``, both
    inclusive (plain ints); ``[]`` when none is True."""
    if not np.any(mask):
        return []
    box = []
    for axis in range(mask.ndim):
        used = np.flatnonzero(mask.any(axis=tuple(i for i in range(mask.ndim) if i != axis)))
        box.append([int(used[0]), int(used[-1])])
    return box


def _signed(shift, shape):
    """A roll as the equivalent shift in ``[-N//2, N - N//2)`` per axis (plain ints)."""
    return [int((s + n // 2) % n - n // 2) for s, n in zip(shift, shape)]


def _centred(obj, support, inside):
    """``obj``, ``support`` and ``inside`` rolled so the centre of mass of ``|obj|^2`` on
    the support sits at the array centre; and the roll."""
    shift = centre_of_mass_shift(_density(obj, inside)) if inside.any() else (0,) * obj.ndim
    axes = tuple(range(obj.ndim))
    return (np.roll(obj, shift, axes), np.roll(support, shift, axes), np.roll(inside, shift, axes),
            np.array(shift))


def finish_result(out):
    """Remove the phase ramp, centre, fix the phase and the orientation of a merged result.

    ``out["sample_ret"]`` and ``out["support"]`` are replaced by the finished object and its
    support: ``final = roll(orient(x exp(-i ramp.(r - N//2))), shift) exp(-i phase_offset)``
    with ``orient`` the identity or the twin. Adds ``out["corrections"]``: ``phase_ramp``
    (rad/pixel per axis), ``shift`` (pixels per axis), ``phase_offset`` (rad), ``orientation``
    (``"as found"`` or ``"twin"``), ``center`` (the refined centre: where the data's zero
    frequency sits for the finished object, ``center + ramp N / 2 pi``, floats), and
    ``out["support_summary"]`` (:func:`support_summary`).

    ``diffraction_amp``, ``PRTF`` and ``background`` stay as they are, in the data's frame:
    a ramp ``2 pi d / N`` moves the object's spectrum by ``d`` pixels, which the refined
    centre moves back (the diffraction of the finished object about ``corrections["center"]``
    is the stored model, to rounding for a fractional ``d``); translations, the global phase
    and the twin leave ``|FFT(x)|`` unchanged. So the stored R-factor and eMod are those of
    the finished object, compared with the data about the refined centre.
    """
    x = out["sample_ret"]
    support = np.asarray(out["support"])
    inside = _mask(support, x.shape)
    center = [float(c) for c in out.get("center", [n // 2 for n in x.shape])]
    corrections = {"phase_ramp": [0.0] * x.ndim, "shift": [0] * x.ndim, "phase_offset": 0.0,
                   "orientation": "as found", "center": center}
    if not np.any(x) or not inside.any():        # nothing to finish (the runner says why)
        out["corrections"], out["support_summary"] = corrections, support_summary(inside, x)
        return out
    x, support, inside, first = _centred(x, support, inside)
    x, ramp = remove_phase_ramp(x, inside)
    shift = first
    if orientation_score(x, inside) < 0:
        x, support, inside = twin(x), twin(support), twin(inside)
        corrections["orientation"] = "twin"
        shift = -first            # twin(roll(a, s)) == roll(twin(a), -s)
    x, support, inside, second = _centred(x, support, inside)
    shift = shift + second
    mean = np.sum(x[inside], dtype=np.complex128)
    offset = float(np.angle(mean)) if mean != 0 else 0.0
    x *= np.asarray(np.exp(-1j * offset), dtype=x.dtype)
    corrections.update({
        "phase_ramp": [float(g) for g in ramp], "shift": _signed(shift, x.shape),
        "phase_offset": offset,
        "center": [c + g * n / (2 * np.pi) for c, g, n in zip(center, ramp, x.shape)]})
    out["sample_ret"], out["support"] = x, support
    out["corrections"], out["support_summary"] = corrections, support_summary(inside, x)
    log.info("finished the merged object: phase ramp %s rad/pixel removed (refined centre %s), "
             "shifted by %s, phase offset %.3f rad, orientation %s",
             ", ".join(f"{g:.4f}" for g in ramp),
             "(" + ", ".join(f"{c:.2f}" for c in corrections["center"]) + ")",
             corrections["shift"], offset, corrections["orientation"])
    return out
