"""Aligning and averaging solutions (ALGORITHMS.md section 5) as a running reduction.

A :class:`MergeAccumulator` keeps sums only, never the solutions, so merging thousands of
repeats over many MPI ranks costs the memory of a few arrays. All ranks align to one shared
reference, so their sums simply add up (``MPI_Reduce``) to the single-process result.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

INV_E = float(np.exp(-1.0))


def twin(a):
    """The twin image ``conj(a(-r))`` on the periodic grid (conj skipped for real arrays)."""
    flipped = np.roll(np.flip(a), 1, axis=tuple(range(a.ndim)))
    return np.conj(flipped) if np.iscomplexobj(flipped) else flipped


def centre_of_mass_shift(weights):
    """Integer shift that moves the circular centre of mass of ``weights`` to the array centre."""
    shift = []
    for axis, n in enumerate(weights.shape):
        profile = weights.sum(axis=tuple(i for i in range(weights.ndim) if i != axis))
        angle = np.angle(np.sum(profile * np.exp(2j * np.pi * np.arange(n) / n)))
        shift.append(int(n // 2 - np.rint(angle * n / (2 * np.pi))) % n)
    return tuple(shift)


#: Sub-pixel alignment: the cross-correlation is resampled this finely (1/16 pixel) within
#: one pixel of its integer peak (Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)).
UPSAMPLE, WINDOW = 16, 1.0


def subpixel_offset(reference_spectrum, moved):
    """The fractional shift (per axis, in [-1, 1] pixels) that best aligns ``moved`` (already
    aligned to the pixel) to the reference whose modulus has ``reference_spectrum``: the peak
    of the moduli's cross-correlation, evaluated by a matrix DFT on a grid of 1/UPSAMPLE
    pixel, never a full upsampled FFT."""
    cross = reference_spectrum * np.conj(sfft.fftn(np.abs(moved)))
    steps = np.arange(-WINDOW, WINDOW + 1e-9, 1.0 / UPSAMPLE)
    corr = cross
    for axis, n in enumerate(cross.shape):          # contract one axis at a time
        k = sfft.fftfreq(n, 1.0 / n)
        kernel = np.exp(2j * np.pi * np.outer(steps, k) / n)        # (steps, n)
        corr = np.moveaxis(np.tensordot(kernel, corr, axes=([1], [axis])), 0, axis)
    peak = np.unravel_index(int(np.argmax(corr.real)), corr.shape)
    return tuple(float(steps[i]) for i in peak)


def fourier_shift(a, shift):
    """``a`` translated by a (fractional) ``shift`` on the periodic grid, through its FFT."""
    spectrum = sfft.fftn(a)
    for axis, (n, d) in enumerate(zip(a.shape, shift)):
        if d:
            view = [1] * a.ndim
            view[axis] = n
            spectrum *= np.exp(-2j * np.pi * sfft.fftfreq(n) * d).reshape(view)
    out = sfft.ifftn(spectrum)
    return out if np.iscomplexobj(a) else out.real


def alignment(reference, obj, subpixel=True):
    """How to align ``obj`` to ``reference``: (use_twin, shift, global phase factor).

    Translation from the peak of the FFT cross-correlation of the moduli, refined to 1/16
    pixel (whole pixels once blurred the average of repeats); the twin is used when its
    correlation peak is higher; the global phase is ``exp(i arg <obj', ref>)``.
    """
    axes = tuple(range(obj.ndim))
    ref_spectrum = sfft.fftn(np.abs(reference))
    best = None
    for use_twin in (False, True):
        candidate = twin(obj) if use_twin else obj
        corr = sfft.ifftn(ref_spectrum * np.conj(sfft.fftn(np.abs(candidate)))).real
        peak = int(np.argmax(corr))
        if best is None or corr.flat[peak] > best[0] * (1 + 1e-9):
            best = (corr.flat[peak], use_twin, np.unravel_index(peak, corr.shape))
    _, use_twin, shift = best
    shift = tuple(int(s) for s in shift)
    moved = np.roll(twin(obj) if use_twin else obj, shift, axes)
    if subpixel:
        fraction = subpixel_offset(ref_spectrum, moved)
        moved = fourier_shift(moved, fraction)
        shift = tuple(s + f for s, f in zip(shift, fraction))
    # not np.vdot: BLAS threads busy-wait and steal the core of a neighbouring MPI rank
    overlap = np.sum(np.conj(moved) * reference)
    phase = overlap / abs(overlap) if abs(overlap) > 0 else 1.0
    return use_twin, shift, phase


def apply_alignment(a, use_twin, shift, phase=1.0):
    """Apply an alignment from :func:`alignment` to an array of the object's shape: the whole
    pixels by a roll, a fractional rest through the FFT."""
    whole = tuple(int(np.floor(s)) for s in shift)
    moved = np.roll(twin(a) if use_twin else a, whole, tuple(range(a.ndim)))
    rest = tuple(s - w for s, w in zip(shift, whole))
    if any(abs(r) > 1e-12 for r in rest):
        moved = fourier_shift(moved, rest)
    return moved * phase if np.iscomplexobj(moved) else moved


def _mean_curves(curves):
    """Element-wise mean of error curves, ignoring the missing tail of shorter ones."""
    length = max((len(c) for c in curves), default=0)
    padded = np.full((len(curves), length), np.nan)
    for row, c in zip(padded, curves):
        row[:len(c)] = c
    with np.errstate(invalid="ignore"):
        return np.nanmean(padded, axis=0) if len(curves) else padded[0:0].sum(0)


class MergeAccumulator:
    """Running sums of aligned solutions.

    Parameters
    ----------
    reference : ndarray, complex, optional
        Solution to align to. Default: the first one added, centred by its centre of mass.
    keep_curves : bool
        Keep each solution's error curves (small: one float per iteration).
    """

    def __init__(self, reference=None, keep_curves=True, phasor_only=False):
        self.reference = reference
        self.keep_curves = keep_curves
        self.phasor_only = phasor_only      # only what the PRTF needs (every repeat's phases)
        self.count = 0
        self.sums = {}
        self.curves = {"emod": [], "econ": []}
        self.final_emod = []
        self.free = []          # (free eMod, free Poisson deviance) per repeat
        self.repeat_ids = []

    def set_reference(self, obj):
        self.reference = np.roll(obj, centre_of_mass_shift(np.abs(obj) ** 2),
                                 tuple(range(obj.ndim))).astype(np.complex128)

    def add(self, stream, repeat_id=None):
        """Align one stream's estimate to the reference and add it to the sums."""
        if self.reference is None:
            self.set_reference(stream.x)
        use_twin, shift, phase = alignment(self.reference, stream.x)
        x = apply_alignment(stream.x.astype(np.complex128), use_twin, shift, phase)
        spectrum = sfft.fftn(x)
        with np.errstate(invalid="ignore", divide="ignore"):
            phasor = np.where(np.abs(spectrum) > 0, spectrum / np.abs(spectrum), 0)
        if self.phasor_only:
            self._add_sum("phasor", phasor)
            self.count += 1
            self.data = stream.data
            return
        self._add_sum("x", x)
        # a support moves by whole pixels: a Fourier shift would ring below 0 and above 1
        nearest = tuple(int(np.rint(v)) for v in shift)
        self._add_sum("support", apply_alignment(stream.support.astype(np.float64), use_twin, nearest))
        self._add_sum("phasor", phasor)
        self._add_sum("background", stream.background.astype(np.float64))
        self.count += 1
        self.curves["emod"].append(stream.emod)
        self.curves["econ"].append(stream.econ)
        self.final_emod.append(stream.estimate_emod())
        self.free.append(stream.free_errors())
        self.repeat_ids.append(repeat_id)
        self.path = stream.path
        self.data = stream.data

    def _add_sum(self, key, value):
        self.sums[key] = value.copy() if key not in self.sums else self.sums[key] + value

    def mean_stream(self):
        """The merged stream: averaged estimate, majority support, mean curves."""
        from .stream import Stream
        n = self.count
        return Stream(data=self.data, x=self.sums["x"] / n, support=self.sums["support"] / n >= 0.5,
                      background=self.sums["background"] / n,
                      emod=_mean_curves(self.curves["emod"]), econ=_mean_curves(self.curves["econ"]),
                      path=list(self.path))

    def prtf(self):
        """PRTF in FFT layout: ``|mean_k exp(i arg FFT(o_k))|``, real in [0, 1]."""
        return np.clip(np.abs(self.sums["phasor"]) / self.count, 0.0, 1.0)


def merge_streams(streams):
    """Merge the streams of several branches of one repeat (a pMerge, or a node's fathers)."""
    acc = MergeAccumulator()
    for s in streams:
        acc.add(s)
    merged = acc.mean_stream()
    merged.x = merged.x.astype(streams[0].x.dtype)
    paths = [" -> ".join(s.path) for s in streams]
    merged.path = ["(" + " | ".join(paths) + ")"]
    return merged


def radial_profile(values_centred, center):
    """Mean of ``values_centred`` over integer-radius shells about ``center``."""
    grids = np.ogrid[tuple(slice(0, n) for n in values_centred.shape)]
    radius = np.rint(np.sqrt(sum((g - c) ** 2.0 for g, c in zip(grids, center)))).astype(int)
    sums = np.bincount(radius.ravel(), weights=values_centred.ravel())
    counts = np.bincount(radius.ravel())
    return sums / np.maximum(counts, 1)


def edge_shell(shape, center):
    """The last whole shell about ``center``: the distance to the nearest edge of the data
    (a 123^2 pattern centred at 61 has shells 0-61; beyond, only corners)."""
    return int(min(min(c, n - 1 - c) for c, n in zip(center, shape)))


def resolution_shell(radial_prtf):
    """Index of the first shell where the radial PRTF drops below 1/e (None if it never does)."""
    below = np.nonzero(np.asarray(radial_prtf) < INV_E)[0]
    return int(below[0]) if below.size else None
