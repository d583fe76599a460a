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
    # in place: the roll made the copy (a second one held two volumes while merging)
    return np.conjugate(flipped, out=flipped) if np.iscomplexobj(flipped) else flipped


def centre_of_mass_shift(weights):
    """Integer shift that moves the circular centre of mass of ``weights`` to the array centre."""
    shift = []
    for axis, n in enumerate(weights.shape):
        profile = weights.sum(axis=tuple(i for i in range(weights.ndim) if i != axis))
        angle = np.angle(np.sum(profile * np.exp(2j * np.pi * np.arange(n) / n)))
        shift.append(int(n // 2 - np.rint(angle * n / (2 * np.pi))) % n)
    return tuple(shift)


#: With ``match``, a repeat joins the merge only if, aligned, it agrees with the best this well
#: (normalised overlap ``|<o_k, ref>| / (||o_k|| ||ref||)``): on the Hawk ring a different
#: solution with a free eMod within 2% of the best's (overlap 0.24; true matches 0.99) once
#: doubled the merged R-factor.
MIN_AGREEMENT = 0.8

#: Sub-pixel alignment: the cross-correlation is resampled this finely (1/16 pixel) within
#: one pixel of its integer peak (Guizar-Sicairos et al., Opt. Lett. 33, 156 (2008)).
UPSAMPLE, WINDOW = 16, 1.0


def _unit_modulus(a):
    """``|a|`` in units of its peak: correlations of moduli then stay finite in single
    precision whatever the data's units (alignment does not depend on scale)."""
    modulus = np.abs(a)
    peak = float(modulus.max()) if modulus.size else 0.0
    if 0.0 < peak < np.inf:
        modulus /= peak
    return modulus


def _half_axis(n):
    """Frequencies and Hermitian weights of the last axis of a real array's rFFT: a sum over
    the full spectrum is ``Re`` of the weighted sum over the half (the -k of each interior k
    is its conjugate; the zero and Nyquist planes are their own, counted once)."""
    k = sfft.rfftfreq(n, 1.0 / n)
    weight = np.full(k.size, 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        k[-1], weight[-1] = -k[-1], 1.0     # Nyquist as fftfreq names it: -n/2
    return k, weight


def subpixel_offset(reference_spectrum, moved):
    """The fractional shift (per axis, in [-1, 1] pixels) that best aligns ``moved`` (already
    aligned to the pixel) to the reference whose :func:`modulus_spectrum` is
    ``reference_spectrum``: the peak of the moduli's cross-correlation, evaluated by a matrix
    DFT on a grid of 1/UPSAMPLE pixel, never a full upsampled FFT (and over half spectra)."""
    corr = sfft.rfftn(_unit_modulus(moved))
    np.conjugate(corr, out=corr)
    corr *= reference_spectrum
    steps = np.arange(-WINDOW, WINDOW + 1e-9, 1.0 / UPSAMPLE)
    last = moved.ndim - 1
    for axis, n in enumerate(moved.shape):          # contract one axis at a time
        k, weight = _half_axis(n) if axis == last else (sfft.fftfreq(n, 1.0 / n), 1.0)
        kernel = (weight * np.exp(2j * np.pi * np.outer(steps, k) / n)).astype(corr.dtype)
        corr = np.moveaxis(np.tensordot(kernel, corr, axes=([1], [axis])), 0, axis)
    peak = np.unravel_index(int(np.argmax(corr.real)), corr.shape)
    return tuple(float(steps[i]) for i in peak)


def fourier_shift(a, shift, overwrite=False):
    """``a`` translated by a (fractional) ``shift`` on the periodic grid, through its FFT
    (in ``a``'s precision). ``overwrite``: ``a`` is a copy of the caller's own, transformed
    in place (a complex one: two volumes fewer while aligning)."""
    spectrum = sfft.fftn(a, overwrite_x=overwrite)
    for axis, (n, d) in enumerate(zip(a.shape, shift)):
        if d:
            view = [1] * a.ndim
            view[axis] = n
            ramp = np.exp(-2j * np.pi * sfft.fftfreq(n) * d).astype(spectrum.dtype)
            spectrum *= ramp.reshape(view)
    out = sfft.ifftn(spectrum, overwrite_x=True)
    return out if np.iscomplexobj(a) else out.real


def modulus_spectrum(reference):
    """The rFFT of ``|reference|`` (in units of its peak), what :func:`alignment` compares
    against: compute it once per reference when aligning many solutions."""
    return sfft.rfftn(_unit_modulus(reference))


def alignment(reference, obj, subpixel=True, reference_spectrum=None):
    """How to align ``obj`` to ``reference``: (use_twin, shift, global phase factor).

    Translation from the peak of the FFT cross-correlation of the moduli, refined to 1/16
    pixel (whole pixels once blurred the average of repeats); the twin is used when its
    correlation peak is higher; the global phase is ``exp(i arg <obj', ref>)``. Works in
    ``obj``'s precision (single-precision solutions: complex64 transforms, half the memory).
    """
    return aligned(reference, obj, subpixel, reference_spectrum)[1]


def aligned(reference, obj, subpixel=True, reference_spectrum=None):
    """``obj`` aligned to ``reference`` and the :func:`alignment` that did it: (moved,
    (use_twin, shift, phase)), one pass (applying the alignment again costs an FFT pair)."""
    if reference_spectrum is None:
        reference_spectrum = modulus_spectrum(reference)
    use_twin, shift = _whole_pixel_alignment(obj, reference_spectrum)
    moved = np.roll(twin(obj) if use_twin else obj, shift, tuple(range(obj.ndim)))
    if subpixel:
        fraction = subpixel_offset(reference_spectrum, moved)
        moved = fourier_shift(moved, fraction, overwrite=True)      # the roll's copy
        shift = tuple(s + f for s, f in zip(shift, fraction))
    overlap = _overlap(moved, reference)
    phase = overlap / abs(overlap) if abs(overlap) > 0 else 1.0
    if np.iscomplexobj(moved):
        moved *= np.asarray(phase, dtype=moved.dtype)
    return moved, (use_twin, shift, phase)


def _whole_pixel_alignment(obj, reference_spectrum):
    """(use_twin, integer shift) from the peaks of the moduli's cross-correlations. The twin
    needs no transform of its own: ``|twin(obj)|`` is ``|obj|(-r)``, whose spectrum is the
    conjugate of ``|obj|``'s (a real function's)."""
    spectrum = modulus_spectrum(obj)
    best = None
    for use_twin in (False, True):
        cross = reference_spectrum * (spectrum if use_twin else np.conj(spectrum))
        corr = sfft.irfftn(cross, s=obj.shape, overwrite_x=True)
        del cross
        peak = int(np.argmax(corr))
        if best is None or corr.flat[peak] > best[0] * (1 + 1e-6):
            best = (corr.flat[peak], use_twin, np.unravel_index(peak, corr.shape))
        del corr
    return best[1], tuple(int(s) for s in best[2])


def _overlap(a, b):
    """``<a, b>`` in double precision, a slab at a time (no volume-sized product, and no
    overflow of single-precision products). Not np.vdot: BLAS threads busy-wait and steal
    the core of a neighbouring MPI rank."""
    return sum(complex(np.sum(np.conj(sa.astype(np.complex128)) * sb)) for sa, sb in zip(a, b))


def agreement(moved, reference):
    """``|<moved, reference>| / (||moved|| ||reference||)``: 1 for the same object (aligned
    first: see :func:`aligned`), near 0 for unrelated ones; scale-free."""
    norms = np.sqrt(abs(_overlap(moved, moved)) * abs(_overlap(reference, reference)))
    return abs(_overlap(moved, reference)) / norms if norms > 0 else 0.0


def apply_alignment(a, use_twin, shift, phase=1.0):
    """Apply an alignment from :func:`alignment` to an array of the object's shape: the whole
    pixels by a roll, a fractional rest through the FFT (in ``a``'s precision)."""
    whole = tuple(int(np.floor(s)) for s in shift)
    moved = np.roll(twin(a) if use_twin else a, whole, tuple(range(a.ndim)))
    rest = tuple(s - w for s, w in zip(shift, whole))
    if any(abs(r) > 1e-12 for r in rest):
        moved = fourier_shift(moved, rest, overwrite=True)          # the roll's copy
    if np.iscomplexobj(moved):
        moved *= np.asarray(phase, dtype=moved.dtype)
    return moved


def _phasor(x):
    """``exp(i arg FFT(x))`` (0 where the transform is 0), in ``x``'s precision."""
    spectrum = sfft.fftn(x)
    for plane in spectrum:          # a plane at a time: no volume-sized modulus
        modulus = np.abs(plane)
        np.divide(plane, modulus, out=plane, where=modulus > 0)
        plane[modulus == 0] = 0
    return spectrum


def _mean_curves(curves):
    """Element-wise mean of error curves, ignoring NaN (not measured) and the missing tail
    of shorter ones; NaN where no curve has a value."""
    length = max((len(c) for c in curves), default=0)
    padded = np.full((len(curves), length), np.nan)
    for row, c in zip(padded, curves):
        row[:len(c)] = c
    counts = np.count_nonzero(~np.isnan(padded), axis=0)
    sums = np.nansum(padded, axis=0)
    return np.divide(sums, counts, out=np.full(length, np.nan), where=counts > 0)


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
        self.curves = {"emod": [], "econ": [], "emod_estimate": []}
        self.final_emod = []
        self.free = []          # (free eMod, free Poisson deviance) per repeat
        self.repeat_ids = []
        self.agreements = []    # of each merged repeat with the reference (verdict.py)

    def set_reference(self, obj):
        """Align to ``obj`` centred by its centre of mass (kept in ``obj``'s precision)."""
        # |obj|^2 in units of its peak: a single-precision object in large data units
        # would square to inf
        density = _unit_modulus(obj)
        np.square(density, out=density)
        self.reference = np.roll(obj, centre_of_mass_shift(density), tuple(range(obj.ndim)))

    def add(self, stream, repeat_id=None, min_agreement=None):
        """Align one stream's estimate to the reference and add it to the sums (in the
        estimate's precision: a single-precision run never makes a complex128 volume).
        Returns its :func:`agreement` with the reference; below ``min_agreement`` the
        stream is left out (nothing is added)."""
        if not self.phasor_only:
            # first, while no sum is made yet: the model amplitude costs 1.5 volumes
            model = stream.model_amplitude()
            final_emod, free = stream.estimate_emod(model=model), stream.free_errors(model)
            del model
        if self.reference is None:
            self.set_reference(stream.x)
        # made again at each add (one real FFT), not kept: held, it cost half a volume for
        # the whole of every later repeat's iterations
        x, (use_twin, shift, _) = aligned(self.reference, stream.x)
        agrees = agreement(x, self.reference)
        if min_agreement is not None and agrees < min_agreement:
            return agrees
        self._add_sum("phasor", _phasor(x))
        self.count += 1
        self.data = stream.data
        if self.phasor_only:
            return agrees
        self._add_sum("x", x)
        del x
        # a support moves by whole pixels: a Fourier shift would ring below 0 and above 1
        nearest = tuple(int(np.rint(v)) for v in shift)
        self._add_sum("support", apply_alignment(stream.support, use_twin, nearest).astype(np.float32))
        self._add_sum("background", stream.background.astype(np.float64))
        self.curves["emod"].append(stream.emod)
        self.curves["econ"].append(stream.econ)
        self.curves["emod_estimate"].append(stream.emod_estimate)
        self.final_emod.append(final_emod)
        self.free.append(free)
        self.repeat_ids.append(repeat_id)
        self.agreements.append(float(agrees))
        self.path = stream.path
        return agrees

    def finish(self):
        """Drop the reference (a volume): nothing more will be added."""
        self.reference = None
        return self

    def _add_sum(self, key, value):
        """Add ``value`` (a fresh array, taken over as the first sum) to the sum ``key``."""
        if key not in self.sums:
            self.sums[key] = value
        else:
            self.sums[key] += value

    def means(self, spend=False):
        """The means of the estimate, the support (the fraction of repeats with each pixel
        inside) and the background. ``spend``: divide the sums in place and hand them over
        (no second copy of each volume; nothing may be added after)."""
        return {key: np.divide(self.sums[key], self.count, out=self.sums[key] if spend else None)
                for key in ("x", "support", "background")}

    def mean_stream(self, means=None):
        """The merged stream: averaged estimate, majority support, mean curves (from
        :meth:`means` unless given)."""
        from .stream import Stream
        m = self.means() if means is None else means
        return Stream(data=self.data, x=m["x"], support=m["support"] >= 0.5,
                      background=m["background"],
                      emod=_mean_curves(self.curves["emod"]), econ=_mean_curves(self.curves["econ"]),
                      path=list(self.path),
                      emod_estimate=_mean_curves(self.curves["emod_estimate"]))

    def prtf(self, spend=False):
        """PRTF in FFT layout: ``|mean_k exp(i arg FFT(o_k))|``, real in [0, 1] (``spend``:
        the phasor sum is dropped once read, nothing may be added after)."""
        prtf = np.abs(self.sums.pop("phasor") if spend else self.sums["phasor"])
        prtf /= self.count
        return np.clip(prtf, 0.0, 1.0, out=prtf)


def merge_streams(streams):
    """Merge the streams of several branches of one repeat (a pMerge, or a node's fathers)."""
    acc = MergeAccumulator()
    for s in streams:
        acc.add(s)
    merged = acc.finish().mean_stream(acc.means(spend=True))
    merged.x = merged.x.astype(streams[0].x.dtype, copy=False)
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


def merge_note(out):
    """How the merged repeats were chosen, in words, naming every repeat left out and why:
    'best 2 of 4 (ranked by free eMod); left out: repeat 3 (free eMod 0.31, ranked below the
    best 2), repeat 1 (free eMod 0.12: a different solution, agreement 0.24 < 0.8 with the
    best)'."""
    sel = out.get("selection")
    if not sel:
        return f"all {out['merged']} repeats"
    within = f", within {sel['match']:.0%} of the best" if sel["match"] is not None else ""
    note = f"best {sel['kept']} of {sel['of']} (ranked by {sel['ranked_by']}{within})"
    left_out = sel.get("left_out") or []
    if left_out:
        note += "; left out: " + ", ".join(_left_out_words(d, sel) for d in left_out)
    return note


def _left_out_words(d, sel):
    what = f"repeat {d['repeat']} ({sel['ranked_by']} {d['error']:.3g}"
    if d["why"] == "rank":
        return what + f", ranked below the best {sel['keep']})"
    if d["why"] == "match":
        return what + f", more than {sel['match']:.0%} above the best)"
    return (what + f": a different solution, agreement {d['agreement']:.2f} < "
            f"{sel['different']['below']} with the best)")

