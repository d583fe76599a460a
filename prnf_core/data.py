"""Input configuration and data preparation (ALGORITHMS.md sections 1 and 2).

Users give centred patterns with 1 = bad pixel; phasing works in FFT layout (zero frequency
at index 0) with ``measured = True`` where the amplitude constrains the solution.
"""
from __future__ import annotations

import dataclasses
import numbers
import os
import warnings

import numpy as np
import scipy.fft as sfft

from .errors import ConfigError
from .io import cxi_mask, load_array

#: Every key of an input node's ``config_dict`` with its default (seed keys first).
INPUT_DEFAULTS = {
    "pattern_path": None,         # intensity file: .npy .mat .bin .h5/.cxi (file.h5:/dataset)
    "mask_path": None,            # 1 = bad pixel (floats while phasing), 0 = measured
    "center": None,               # zero frequency; None: N//2; "auto": centre of symmetry; "max": brightest pixel
    "center_mask": None,          # radius: pixels with r < center_mask float
    "edge_mask": None,            # [r1, r2]: pixels with r1 <= r <= r2 float
    "edge_remove": None,          # [r1, r2]: intensity set to 0 (measured zeros) there
    "subtract_percentile": False,  # False/None, or q in (0, 100]: subtract that percentile
    "fixed_support_r": None,      # real-space radius of a fixed support about the array centre
    "background": True,           # fit a radial incoherent background amplitude
    "initial_model": None,        # real-space start (file path), None: random start
    "initial_model_noise": 0.1,   # each repeat perturbs the initial model by this fraction
    "pattern_shape": None,        # shape of a raw .bin pattern (and .bin mask / model)
    "start_support": "autocorrelation",  # random starts fill: "autocorrelation", "loose", "all"
    "support_path": None,         # support file, 1 = inside (real space, centred)
    "support_mode": "start",      # the support file is the "start" support or the "fixed" one
    "free_pixels": 0.0,           # fraction of measured pixels kept out of P_M (cross-validation)
    "free_seed": 0,               # chooses the free pixels (the same for every repeat)
    "photon_threshold": None,     # intensities below it set to 0 (measured zeros); None: off
    "bin": None,                  # sum intensities over blocks: one integer or one per axis
    "fft_size": None,             # "crop" or "pad" each axis to an FFT-friendly size; None: off
}
START_SUPPORTS = ("autocorrelation", "loose", "all")
#: ``center`` chosen from the data: the centre of symmetry (Friedel's law) or the brightest
#: measured pixel (a Bragg peak's maximum: a strained crystal's pattern is not centrosymmetric)
CENTER_RULES = ("auto", "max")
SUPPORT_MODES = ("start", "fixed")
#: Free pixels come in islands of this radius (pixels), with their centrosymmetric mates: a
#: lone pixel's value is fixed by its neighbours (and a real object's by its mate).
FREE_ISLAND_RADIUS = 1
LOOSE_THRESHOLD, LOOSE_SIGMA, LOOSE_MARGIN = 0.04, 2.0, 2
#: the loose start's noise estimate: this percentile of the autocorrelation in the corners
#: beyond this fraction of each axis from the centre (:func:`loose_cut`)
NOISE_PERCENTILE, NOISE_CORNER = 99.9, 0.375
AUTOCORRELATION_THRESHOLD = 0.04
#: The background amplitude starts at this fraction of each shell's mean measured amplitude:
#: its update is multiplicative, so a zero start would never move (ALGORITHMS.md section 2).
BACKGROUND_START = 0.05
#: A mask marking more than this fraction of the pixels bad is reported as likely inverted.
INVERTED_MASK_FRACTION = 0.9
#: Intensities beyond this many times the median measured one are reported as likely hot pixels.
HOT_PIXEL_RATIO = 1e15


@dataclasses.dataclass
class PreparedData:
    """One input's data, ready to phase. Arrays in FFT layout unless named ``*_centred``."""

    amplitude: np.ndarray        # sqrt(I), float64 for float64 patterns, else float32; 0 where not measured
    measured: np.ndarray         # bool, True where the amplitude constrains
    center: tuple
    radial_bins: np.ndarray      # unsigned shell index of each pixel (FFT layout)
    n_bins: int
    background: bool
    fixed_support: np.ndarray | None   # bool, real space, centred
    initial_model: np.ndarray | None   # complex128, real space, centred
    start_support: np.ndarray          # bool, real space, centred: where random starts live
    free: np.ndarray | None = None     # bool, FFT layout: measured pixels left out of P_M
    counts: bool = False               # the intensities are photon counts (integers)
    # Engines iterate on amplitudes (and objects, backgrounds) divided by ``scale``, the RMS
    # amplitude: nothing then depends on the data's units, and squares stay finite in single
    # precision (a measured amplitude is at most sqrt(size) scales). Streams keep the data's
    # units.
    scale: float = 1.0
    # the optional reshaping steps applied, in order (:func:`prepare_steps`): step name ->
    # its parameters and the shape after it, e.g. {"bin": {"factors": [2, 2], "shape_before":
    # [512, 512], "shape": [256, 256], "center": [128, 128]}}; {} when none was asked for
    preparation: dict = dataclasses.field(default_factory=dict)
    # what algorithms derive from the data and reuse over repeats (an engine's layouts of the
    # amplitude, mask and shells): kept during a run, dropped when its last repeat is phased
    caches: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def shape(self):
        return self.amplitude.shape

    @property
    def constrained(self):
        """Measured pixels that P_M constrains: all measured ones but the free pixels."""
        return self.measured if self.free is None else self.measured & ~self.free

    def background_start(self):
        """The starting background amplitude per shell: :data:`BACKGROUND_START` times the
        shell's mean measured amplitude (0 on shells without measured pixels)."""
        bins, measured = self.radial_bins[self.constrained], self.amplitude[self.constrained]
        counts = np.bincount(bins, minlength=self.n_bins)
        sums = np.bincount(bins, weights=measured, minlength=self.n_bins)
        return BACKGROUND_START * sums / np.maximum(counts, 1)

    def perturbed_model(self, rng, noise):
        """The initial model with a random complex factor ``1 + noise * u`` per pixel
        (``|u| <= 1``): repeats started from one model differ, as random starts do."""
        u = np.sqrt(rng.random(self.shape)) * np.exp(2j * np.pi * rng.random(self.shape))
        return self.initial_model * (1 + noise * u)

    def random_start(self, rng, support):
        """Uniform random values on ``support``, sized so that their Fourier energy matches
        the measured one (Parseval), whatever the data's scale."""
        x = rng.random(self.shape) * support
        energy = np.sum(x * x)
        constrained = self.constrained
        measured_energy = (np.sum(np.square(self.amplitude[constrained], dtype=np.float64))
                           / max(int(np.count_nonzero(constrained)), 1))
        return x * np.sqrt(measured_energy / energy) if energy > 0 else x

    def centred(self, array_fft_layout):
        """Move a reciprocal-space array from FFT layout back to the user's centred layout."""
        return np.roll(array_fft_layout, self.center, axis=tuple(range(array_fft_layout.ndim)))


def check_config(config):
    """Return a full config dict: defaults filled in, unknown keys and bad types refused."""
    if not isinstance(config, dict):
        raise ConfigError(f"config_dict must be a dict of input settings, got {type(config).__name__}")
    unknown = sorted(set(config) - set(INPUT_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown input config key(s) {unknown}; accepted: {sorted(INPUT_DEFAULTS)}")
    full = {**INPUT_DEFAULTS, **config}
    for key in ("pattern_path", "mask_path", "initial_model", "support_path"):
        if full[key] is not None and not isinstance(full[key], (str, os.PathLike, np.ndarray)):
            raise ConfigError(f"{key}={full[key]!r}: give a file path (str) or None")
        if isinstance(full[key], os.PathLike):      # kept as text: model files and results hold it
            full[key] = os.fspath(full[key])
    shape = full["pattern_shape"]
    if shape is not None and (not isinstance(shape, (list, tuple)) or not shape
                              or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0
                                         for n in shape)):
        raise ConfigError(f"pattern_shape={shape!r}: give positive integers, e.g. [123, 123]")
    if isinstance(full["center"], str) and full["center"] not in CENTER_RULES:
        raise ConfigError(f"center={full['center']!r}: give pixel indices (one per axis), None "
                          f"(the array centre) or one of {list(CENTER_RULES)} ('auto': the "
                          "centre of symmetry, 'max': the brightest measured pixel)")
    for key in ("center_mask", "fixed_support_r"):
        _check_radius(key, full[key])
    for key in ("edge_mask", "edge_remove"):
        _check_ring(key, full[key])
    q = full["subtract_percentile"]
    if not _off(q) and not (_is_number(q) and 0 < q <= 100):
        raise ConfigError(f"subtract_percentile={q!r}: give a percentile in (0, 100], or False")
    if full["start_support"] not in START_SUPPORTS:
        raise ConfigError(f"start_support={full['start_support']!r}: give one of {list(START_SUPPORTS)}")
    if not isinstance(full["background"], (bool, np.bool_)):
        raise ConfigError(f"background={full['background']!r}: give True or False")
    if full["support_mode"] not in SUPPORT_MODES:
        raise ConfigError(f"support_mode={full['support_mode']!r}: give one of {list(SUPPORT_MODES)}")
    noise = full["initial_model_noise"]
    if not (_is_number(noise) and 0 <= noise <= 1):
        raise ConfigError(f"initial_model_noise={noise!r}: give a fraction in [0, 1] (0: every "
                          "repeat starts from the initial model itself, and they are all equal)")
    free = full["free_pixels"]
    if not (_is_number(free) and 0 <= free <= 0.2):
        raise ConfigError(f"free_pixels={free!r}: give a fraction of the measured pixels in "
                          "[0, 0.2] (a few percent, e.g. 0.03), or 0 for none")
    if isinstance(full["free_seed"], bool) or not isinstance(full["free_seed"], numbers.Integral):
        raise ConfigError(f"free_seed={full['free_seed']!r}: give an integer")
    _check_preparation_keys(full)
    return full


def _off(value):
    """False and None switch an option off (0 and 0.0 do not: they are values)."""
    return value is None or value is False or isinstance(value, np.bool_) and not value


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and np.isfinite(v)


def _check_radius(key, value):
    if value is not None and not (_is_number(value) and value >= 0):
        raise ConfigError(f"{key}={value!r}: give a radius in pixels >= 0, or None")


def _check_ring(key, value):
    if value is None:
        return
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or not all(_is_number(v) and v >= 0 for v in value) or value[0] > value[1]):
        raise ConfigError(f"{key}={value!r}: give [inner, outer] radii with 0 <= inner <= outer, or None")


def load_input_arrays(config):
    """Read the pattern, mask and initial model named in ``config`` (None where not given)."""
    shape = config.get("pattern_shape")
    if config["pattern_path"] is None:
        raise ConfigError("pattern_path is None and no pattern is embedded; give 'pattern_path' "
                          "(or reload_dataset={input_id: {'pattern_path': ...}})")
    arrays = {"pattern": load_array(config["pattern_path"], shape=shape)}
    for key, name in (("mask_path", "mask"), ("initial_model", "initial_model"),
                      ("support_path", "support")):
        value = config[key]
        if isinstance(value, np.ndarray):
            arrays[name] = value
        elif value is not None:
            dtype = "<c16" if name == "initial_model" and str(value).endswith(".bin") else "<f8"
            arrays[name] = load_array(value, shape=shape, dtype=dtype)
        else:
            arrays[name] = None
    if arrays["mask"] is None:         # a CXI file carries its own mask beside the pattern
        arrays["mask"] = cxi_mask(config["pattern_path"])
    return arrays


def prepare(config, pattern, mask=None, initial_model=None, support=None):
    """Turn a centred intensity pattern and a 1 = bad mask into :class:`PreparedData`
    (``support``: a real-space support, 1 = inside, used as ``config["support_mode"]`` says).
    Singleton axes are dropped first (a (98, 98, 1) dataset is the 2D pattern (98, 98)), with
    a note."""
    pattern = _squeezed(pattern, "pattern", config.get("pattern_path"))
    mask = _squeezed(mask, "mask", config.get("mask_path"))
    initial_model = _squeezed(initial_model, "initial_model", config.get("initial_model"))
    support = _squeezed(support, "support", config.get("support_path"))
    intensity = _check_pattern(pattern)
    # amplitudes are kept in the pattern's precision: float64 for float64, else float32 (its
    # rounding, 6e-8, is far below the counting noise of any measured pattern, and a 512^3
    # volume then costs 0.5 GiB less all the run)
    kept = np.float64 if np.asarray(pattern).dtype == np.float64 else np.float32
    bad = _check_mask(mask, intensity.shape)
    _warn_inverted(bad)
    bad |= _mask_non_finite(intensity)
    center = _choose_center(config["center"], intensity, bad)
    intensity, bad, center, initial_model, support, steps = prepare_steps(
        config, intensity, bad, center, initial_model, support)
    radius = _radius(intensity.shape, center)
    bad |= _ring(radius, config["edge_mask"]) | _disc(radius, config["center_mask"])
    intensity[_ring(radius, config["edge_remove"])] = 0.0
    intensity = _subtract_percentile(intensity, bad, config["subtract_percentile"])
    if bad.all():
        raise ConfigError("every pixel is masked (mask, center_mask, edge_mask and non-finite "
                          "values together): nothing constrains the phasing; shrink the masks")
    _check_signal(intensity, bad, config)
    axes = tuple(range(intensity.ndim))
    shift = tuple(-c for c in center)
    measured = np.roll(~bad, shift, axes)
    counts = _whole_numbers(intensity, bad)
    # each volume made once and changed in place: preparation never holds many copies
    amplitude = np.roll(intensity, shift, axes)
    del intensity
    np.sqrt(amplitude, out=amplitude)
    amplitude[~measured] = 0.0
    amplitude = amplitude.astype(kept, copy=False)
    radius = np.roll(radius, shift, axes)
    # shells as narrow as they fit (uint8 up to 256 shells, then uint16)
    bins = np.rint(radius, out=radius).astype(np.min_scalar_type(max(int(radius.max()), 255)))
    del radius
    free = free_pixels(measured, config["free_pixels"], config["free_seed"])
    # everything the phasing starts from (scale, start support) comes from the constrained
    # pixels only: the free pixels' data must never reach it
    constrained = measured if free is None else measured & ~free
    fixed, start = _supports(config, amplitude, constrained, support)
    return PreparedData(
        amplitude=amplitude, measured=measured, center=center, radial_bins=bins,
        n_bins=int(bins.max()) + 1, background=bool(config["background"]), fixed_support=fixed,
        initial_model=_check_model(initial_model, amplitude.shape), start_support=start,
        free=free, counts=counts,
        scale=_amplitude_scale(amplitude, constrained), preparation=steps)


def _supports(config, amplitude, constrained, support):
    """(fixed support or None, start support), real space, centred."""
    shape = amplitude.shape
    fixed = _fixed_support(shape, config["fixed_support_r"])
    given = _check_support(support, shape)
    if given is not None and config["support_mode"] == "fixed":
        fixed = given if fixed is None else fixed & given
    start = np.ones(shape, bool) if fixed is None else fixed.copy()
    if given is not None:
        start &= given
    elif config["start_support"] == "autocorrelation":
        start &= autocorrelation_support(amplitude, constrained)
    elif config["start_support"] == "loose":
        start &= loose_support(amplitude, constrained)
    if not start.any():        # random starts would be zero, and so the object
        raise ConfigError("the start support is empty (the fixed support, --support and the "
                          f"'{config['start_support']}' start support have no pixel in common); "
                          "give a larger fixed_support_r or support, or start_support='all'")
    return fixed, start


def autocorrelation_support(amplitude, measured, threshold=AUTOCORRELATION_THRESHOLD):
    """Pixels where the (centred) autocorrelation of the measured intensity exceeds
    ``threshold`` of its peak: it contains every translate of the object's support that
    lies at the array centre, so random starts there are loose but not blind (as in Hawk)."""
    auto = _autocorrelation(amplitude, measured)
    return auto > threshold * auto.max()


def _autocorrelation(amplitude, measured):
    """``|IFFT(I)|`` of the measured intensity, centred, float32: a threshold at a few percent
    of the peak needs no more, and a 256^3 volume then costs 64 MiB, not 256. In units of the
    peak amplitude, so any data scale stays finite in single precision."""
    peak = float(np.max(amplitude, where=measured, initial=0.0)) or 1.0
    # divided in the amplitude's precision, then stored as float32: casting first made
    # amplitudes above 3.4e38 (a pattern x 1e80) infinite, the support empty, the object zero
    power = np.empty(amplitude.shape, np.float32)
    np.divide(amplitude, peak, out=power, casting="same_kind")
    power[~measured] = 0.0
    np.square(power, out=power)
    auto = np.abs(sfft.ifftn(power))
    del power
    return np.fft.fftshift(auto)


def loose_support(amplitude, measured, threshold=None, sigma=LOOSE_SIGMA, margin=LOOSE_MARGIN):
    """A loose starting support from the data (ALGORITHMS.md section 2), centred.

    The smoothed autocorrelation ``|IFFT(I)|`` thresholded at ``threshold`` of its peak holds
    every difference of two object points; halved in extent about the centre it holds the
    object centred there, and a dilation by ``margin`` pixels errs on the loose side. By
    default the cut is chosen from the data (:func:`loose_cut`): a fixed one held only 37% of
    a sparse object (the ESRF logo at 4% of the peak) where the data's own noise level held
    95%."""
    from scipy import ndimage
    wide, _ = autocorrelation_extent(amplitude, measured, threshold, sigma)
    half = np.ones(wide.shape, bool)
    index = []
    for axis, n in enumerate(wide.shape):
        doubled = 2 * np.arange(n) - n // 2          # pixel r -> 2 (r - c) + c about c = n // 2
        view = [1] * wide.ndim
        view[axis] = n
        half &= ((doubled >= 0) & (doubled < n)).reshape(view)
        index.append(np.clip(doubled, 0, n - 1).reshape(view))
    half &= wide[tuple(index)]
    return ndimage.binary_dilation(half, iterations=margin) if margin else half


def autocorrelation_extent(amplitude, measured, threshold=None, sigma=LOOSE_SIGMA):
    """Where the smoothed, centred autocorrelation of the measured intensity stands above
    ``threshold`` of its peak (default: above its noise, :func:`loose_cut`): every
    difference of two object points. Returns ``(extent, threshold)``."""
    auto = smoothed_autocorrelation(_autocorrelation(amplitude, measured), sigma)
    threshold = loose_cut(auto) if threshold is None else threshold
    return auto > threshold, threshold


def smoothed_autocorrelation(auto, sigma=LOOSE_SIGMA):
    """``auto`` smoothed by a periodic Gaussian of ``sigma`` pixels, in units of its peak."""
    from scipy import ndimage
    auto = ndimage.gaussian_filter(auto, sigma, mode="wrap")
    auto /= auto.max() or 1.0
    return auto


def loose_cut(auto):
    """Where the centred autocorrelation ``auto`` (peak 1) falls into its noise: twice the
    noise's ceiling (:data:`NOISE_PERCENTILE` of it) in the array's corners, beyond
    :data:`NOISE_CORNER` of each axis from the centre, which hold no autocorrelation of an
    object oversampled more than 1 / NOISE_CORNER per axis; never above
    :data:`LOOSE_THRESHOLD` (a less oversampled object's signal in the corners must not make
    the cut tighter than that)."""
    corners = np.ones(auto.shape, bool)
    for axis, n in enumerate(auto.shape):
        view = [1] * auto.ndim
        view[axis] = n
        corners &= (np.abs(np.arange(n) - n // 2) >= NOISE_CORNER * n).reshape(view)
    ceiling = float(np.percentile(auto[corners], NOISE_PERCENTILE)) if corners.any() else 0.0
    return min(LOOSE_THRESHOLD, 2.0 * ceiling) if ceiling > 0 else LOOSE_THRESHOLD


def free_pixels(measured, fraction, seed):
    """A seeded set of about ``fraction`` of the measured pixels (FFT layout) in small
    islands with their centrosymmetric mates, or None for ``fraction == 0``."""
    if not fraction:
        return None
    from scipy import ndimage
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0xF5EE]))
    island = ndimage.iterate_structure(ndimage.generate_binary_structure(measured.ndim, 1),
                                       FREE_ISLAND_RADIUS)
    target = fraction * np.count_nonzero(measured)
    candidates = rng.permutation(np.flatnonzero(measured))
    step = max(1, int(target / (2 * island.sum()) / 8))     # overshoot the target by <= 1/8
    centres = np.zeros(measured.shape, bool)
    for start in range(0, candidates.size, step):
        centres.flat[candidates[start:start + step]] = True
        free = _wrap_dilate(centres, island)
        free = (free | _mirror(free)) & measured
        if np.count_nonzero(free) >= target:
            break
    return free


def _wrap_dilate(mask, structure):
    """Binary dilation on the periodic grid (FFT layout: low q wraps around index 0)."""
    from scipy import ndimage
    pad = [(s // 2, s // 2) for s in structure.shape]
    grown = ndimage.binary_dilation(np.pad(mask, pad, mode="wrap"), structure)
    return grown[tuple(slice(p, p + n) for (p, _), n in zip(pad, mask.shape))]


def _mirror(mask):
    """``mask(-q)`` in FFT layout."""
    return np.roll(np.flip(mask), 1, axis=tuple(range(mask.ndim)))


def _check_support(support, shape):
    if support is None:
        return None
    support = np.asarray(support)
    if support.shape != shape:
        raise ConfigError(f"support shape {support.shape} differs from pattern shape {shape}; "
                          "give a support of the pattern's shape (1 = inside)")
    values = np.unique(support)
    if not np.all(np.isin(values, (0, 1))) or not values.max(initial=0):
        raise ConfigError(f"support holds {values[:5].tolist()}: give 1 inside the object and 0 "
                          "outside, with at least one pixel inside")
    return support.astype(bool)


def _squeezed_shape(shape):
    """``shape`` without its singleton axes when it has more than two and at least two
    remain, else as given (what :func:`_squeezed` makes of an array)."""
    shape = tuple(shape)
    kept = tuple(n for n in shape if n != 1)
    return kept if len(shape) > 2 and len(kept) >= 2 else shape


def _squeezed(array, what, path=None):
    """``array`` without its singleton axes when it has more than two and at least two
    remain (a detector frame saved as (98, 98, 1) was refused as "too small"), said in a
    log line; anything else as given (the checks below judge it)."""
    if array is None:
        return array
    shape = np.shape(array)
    kept = _squeezed_shape(shape)
    if kept == shape:
        return array
    import logging
    source = f" '{path}'" if isinstance(path, (str, os.PathLike)) else ""
    logging.getLogger(__name__).info("%s%s has shape %s: its singleton axes dropped, read as %s",
                                     what, source, shape, kept)
    return np.reshape(array, kept)


def _check_pattern(pattern):
    kind = np.asarray(pattern).dtype.kind
    if kind == "c":
        raise ConfigError("pattern is complex: give the measured intensity (real); from a complex "
                          "wave field take np.abs(field) ** 2")
    if kind not in "biuf":
        raise ConfigError(f"pattern has dtype {np.asarray(pattern).dtype}, not numbers: give the "
                          "intensity as an integer or floating-point array")
    intensity = np.array(pattern, dtype=np.float64)
    if intensity.ndim not in (2, 3):
        raise ConfigError(f"pattern has {intensity.ndim} dimensions (shape {intensity.shape}); "
                          "give a 2D pattern or a 3D volume")
    if min(intensity.shape) < 4:
        raise ConfigError(f"pattern shape {intensity.shape} is too small: every axis needs >= 4 pixels")
    return intensity


def _check_mask(mask, shape):
    if mask is None:
        return np.zeros(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.shape != shape:
        raise ConfigError(f"mask shape {mask.shape} differs from pattern shape {shape}; "
                          "give a mask of the pattern's shape (1 = bad pixel)")
    values = np.unique(mask)
    if not np.all(np.isin(values, (0, 1))):
        raise ConfigError(f"mask is not binary: it holds {values[:5].tolist()}...; "
                          "give 1 for bad pixels and 0 for measured ones")
    return mask.astype(bool)


def _warn_inverted(bad):
    """A mask file marking most pixels bad is most likely inverted (1 = good): 97% masked
    was phased without a word."""
    fraction = np.count_nonzero(bad) / bad.size
    if fraction > INVERTED_MASK_FRACTION:
        warnings.warn(f"the mask marks {fraction:.0%} of the pixels as bad (1 = bad pixel): is it "
                      "inverted (1 = good)? If so, give 1 - mask, e.g. "
                      "np.save('mask.npy', 1 - np.load('mask.npy'))", stacklevel=4)


def _mask_non_finite(intensity):
    bad = ~np.isfinite(intensity)
    negative = np.isfinite(intensity) & (intensity < 0)
    if bad.any():
        warnings.warn(f"pattern has {int(bad.sum())} NaN or infinite pixels; they are masked",
                      stacklevel=4)
        intensity[bad] = 0.0
    if negative.any():
        warnings.warn(f"pattern has {int(negative.sum())} negative intensities "
                      f"(min {intensity[negative].min():.3g}); they are clipped to 0", stacklevel=4)
        intensity[negative] = 0.0
    return bad


def _check_signal(intensity, bad, config):
    """Refuse data with no positive measured intensity: it would phase to a 'perfect' fit of
    nothing (eMod 0). Warn about intensities so far above the rest that they are likely hot."""
    positive = intensity[~bad & (intensity > 0)]
    if not positive.size:
        steps = "the pattern itself"
        if config.get("photon_threshold") is not None:
            steps += f", photon_threshold={config['photon_threshold']}"
        if not _off(config["subtract_percentile"]):
            steps += f", subtract_percentile={config['subtract_percentile']}"
        raise ConfigError(f"no measured pixel has a positive intensity (after {steps} and the "
                          "masks): there is nothing to phase; check the file, the mask "
                          "(1 = bad pixel) and the pre-processing settings")
    ratio = positive.max() / np.median(positive, overwrite_input=True)
    if ratio > HOT_PIXEL_RATIO:
        where = np.unravel_index(np.argmax(np.where(bad, -np.inf, intensity)), intensity.shape)
        warnings.warn(f"the intensity at pixel {tuple(int(i) for i in where)} is {ratio:.3g} times "
                      "the median measured one: a hot pixel? Mask it (1 in the mask file)",
                      stacklevel=4)


def _amplitude_scale(amplitude, constrained):
    """The RMS amplitude of the constrained pixels (streams stay in the data's units, so
    inputs of one pattern with different masks may differ in it)."""
    total = sum(float(np.sum(np.square(a[m], dtype=np.float64)))
                for a, m in zip(amplitude, constrained))
    count = int(np.count_nonzero(constrained))
    rms = float(np.sqrt(total / count)) if count else 0.0
    return rms if rms > 0 else 1.0


def _whole_numbers(intensity, bad):
    """Whether every measured intensity is a whole number (photon counts), slab by slab."""
    return all(bool(np.all(v == np.rint(v))) for v in (i[~b] for i, b in zip(intensity, bad)))


def centre_of_symmetry(intensity, bad):
    """The pixel about which the measured pattern is most nearly centrosymmetric
    (``I(c + q) = I(c - q)``, Friedel's law): the peak of the amplitudes' autoconvolution
    sits at ``2 c``. Masked pixels count as 0 (a symmetric beam stop stays symmetric)."""
    amplitude = np.sqrt(np.where(bad, 0.0, intensity))
    padded = [2 * n for n in amplitude.shape]
    axes = tuple(range(amplitude.ndim))
    spectrum = np.fft.rfftn(amplitude, s=padded, axes=axes)
    conv = np.fft.irfftn(spectrum * spectrum, s=padded, axes=axes)
    peak = np.unravel_index(int(np.argmax(conv)), conv.shape)
    return tuple(int(min(n - 1, round(p / 2))) for p, n in zip(peak, amplitude.shape))


def brightest_pixel(intensity, bad):
    """The brightest measured pixel (the first in C order among equals)."""
    where = int(np.argmax(np.where(bad, -np.inf, intensity)))
    return tuple(int(i) for i in np.unravel_index(where, intensity.shape))


def _choose_center(center, intensity, bad):
    """The zero frequency the pattern is phased about, said in the log with its reason."""
    import logging
    if isinstance(center, str) and center == "auto":
        chosen, why = centre_of_symmetry(intensity, bad), "centre of symmetry"
    elif isinstance(center, str) and center == "max":
        chosen, why = brightest_pixel(intensity, bad), "brightest pixel"
    else:
        chosen = _check_center(center, intensity.shape)
        why = "array centre" if center is None else "as given"
    logging.getLogger(__name__).info("centre: (%s) = %s", ", ".join(map(str, chosen)), why)
    return chosen


def _check_center(center, shape):
    if center is None:
        return tuple(n // 2 for n in shape)
    if (not isinstance(center, (list, tuple, np.ndarray)) or len(center) != len(shape)
            or not all(_is_number(c) and float(c).is_integer() for c in center)):
        raise ConfigError(f"center={center!r}: give {len(shape)} integer pixel indices, "
                          f"one per axis of the pattern {shape}")
    center = tuple(int(c) for c in center)
    if not all(0 <= c < n for c, n in zip(center, shape)):
        raise ConfigError(f"center={list(center)} lies outside the pattern of shape {shape}")
    return center


def _radius(shape, center):
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    return np.sqrt(sum((g - c) ** 2.0 for g, c in zip(grids, center)))


def _disc(radius, r):
    return np.zeros(radius.shape, bool) if r is None else radius < r


def _ring(radius, ring):
    return np.zeros(radius.shape, bool) if ring is None else (radius >= ring[0]) & (radius <= ring[1])


def _subtract_percentile(intensity, bad, q):
    if _off(q):
        return intensity
    level = np.percentile(intensity[~bad], q)
    return np.maximum(intensity - level, 0.0)


def _fixed_support(shape, r):
    if r is None:
        return None
    support = _radius(shape, tuple(n // 2 for n in shape)) <= r
    return support


def _check_model(model, shape):
    if model is None:
        return None
    model = np.asarray(model)
    if model.dtype.kind not in "biufc":
        raise ConfigError(f"initial_model has dtype {model.dtype}, not numbers")
    if model.shape != shape:
        raise ConfigError(f"initial_model shape {model.shape} differs from pattern shape {shape}")
    if not np.all(np.isfinite(model)):
        raise ConfigError("initial_model holds NaN or infinite values")
    if not np.any(model):      # every repeat would stay zero (its noise is a factor)
        raise ConfigError("initial_model is zero everywhere: every repeat would end as an "
                          "all-zero object; give a model holding the object (real space, "
                          "centred), or initial_model=None for random starts")
    return model.astype(np.complex128)


# Optional reshaping of the data, from Bragg CDI practice (issue 32): photon_threshold, bin
# and fft_size, applied in this order to the centred pattern once its centre is known and
# before the radii (center_mask, edge_mask, edge_remove, fixed_support_r), which are
# therefore in pixels of the prepared pattern.

#: the values of ``fft_size`` besides None
FFT_SIZES = ("crop", "pad")


def _check_preparation_keys(full):
    """Refuse bad ``photon_threshold``, ``bin`` and ``fft_size`` values (from :func:`check_config`)."""
    t = full["photon_threshold"]
    if t is not None and not (_is_number(t) and t >= 0):
        raise ConfigError(f"photon_threshold={t!r}: give an intensity >= 0 (e.g. 2 photons; lower "
                          "intensities are set to 0), or None for none")
    b = full["bin"]
    if b is not None and not (_is_bin_factor(b) or isinstance(b, (list, tuple)) and len(b) > 0
                              and all(_is_bin_factor(v) for v in b)):
        raise ConfigError(f"bin={b!r}: give an integer >= 1 for every axis or one per axis, "
                          "e.g. 2 or [2, 2], or None for no binning")
    f = full["fft_size"]
    if f is not None and not (isinstance(f, str) and f in FFT_SIZES):
        raise ConfigError(f"fft_size={f!r}: give one of {list(FFT_SIZES)} (crop or zero-pad each "
                          "axis to an FFT-friendly size), or None to keep the shape")


def _is_bin_factor(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1


def prepare_steps(config, intensity, bad, center, initial_model=None, support=None):
    """Apply ``photon_threshold``, ``bin`` and ``fft_size`` (those not None, in this order) to a
    centred intensity and its bad-pixel mask about ``center``; a given initial model and
    support (real space, centred) follow, so that they still describe the data.

    Returns ``(intensity, bad, center, initial_model, support, steps)``, ``steps`` being
    :attr:`PreparedData.preparation`. One info line is logged per step.
    """
    import logging
    log = logging.getLogger(__name__)
    steps = {}
    threshold = config["photon_threshold"]
    if threshold is not None:
        low = intensity < threshold
        zeroed = int(np.count_nonzero(low & ~bad & (intensity > 0)))
        intensity[low] = 0.0
        steps["photon_threshold"] = {"threshold": float(threshold), "zeroed": zeroed,
                                     "shape": list(intensity.shape)}
        log.info("photon_threshold %g: %d measured pixels below it set to 0", threshold, zeroed)
    if config["bin"] is None and config["fft_size"] is None:
        return intensity, bad, center, initial_model, support, steps
    # a model or support of another shape is refused as prepare() would, before reshaping
    initial_model = _check_model(initial_model, intensity.shape)
    support = _check_support(support, intensity.shape)
    if config["bin"] is not None:
        factors = _bin_factors(config["bin"], intensity.shape)
        before = intensity.shape
        intensity, bad, center, first = bin_pattern(intensity, bad, center, factors)
        initial_model, support = _follow_bin(initial_model, support, intensity.shape, factors)
        steps["bin"] = {"factors": list(factors), "shape_before": list(before),
                        "shape": list(intensity.shape), "center": list(center),
                        "first_pixel": list(first)}
        dropped = sum(n - m * b for n, m, b in zip(before, intensity.shape, factors))
        log.info("binned %s: %s -> %s, centre %s%s", _by(factors), _by(before),
                 _by(intensity.shape), center,
                 f" ({dropped} edge rows/columns fill no whole block: dropped)" if dropped else "")
    if config["fft_size"] is not None:
        mode, before, old_center = config["fft_size"], intensity.shape, center
        shape = tuple(fft_friendly_size(n, mode) for n in before)
        intensity, bad, center = crop_or_pad(intensity, bad, center, shape)
        initial_model = None if initial_model is None else fourier_resample(initial_model, shape)
        support = None if support is None else fourier_resample(support.astype(float), shape).real > 0.5
        steps["fft_size"] = {"mode": mode, "shape_before": list(before), "shape": list(shape),
                             "center": list(center)}
        verb = {"crop": "cropped", "pad": "zero-padded (padding masked)"}[mode]
        log.info("%s to FFT-friendly %s -> %s, centre %s -> %s", verb, _by(before), _by(shape),
                 old_center, center)
    return intensity, bad, center, initial_model, support, steps


def prepared_shape(config, shape):
    """The shape :func:`prepare_steps` makes of a pattern of ``shape``, known before it is read
    (the memory check): binning keeps at most ``n // b`` pixels per axis (one fewer when the
    centre's block leaves a partial block at both edges), then ``fft_size`` crops or pads.
    A ``bin`` that does not fit the shape is refused here, before any work."""
    shape = _squeezed_shape(int(n) for n in shape)
    if config.get("bin") is not None:
        shape = tuple(n // b for n, b in zip(shape, _bin_factors(config["bin"], shape)))
    if config.get("fft_size") is not None:
        shape = tuple(fft_friendly_size(n, config["fft_size"]) for n in shape)
    return shape


def _by(shape):
    return "x".join(str(int(n)) for n in shape)


def _bin_factors(value, shape):
    """``bin`` as one factor per axis of ``shape``, refused when it leaves < 4 pixels per axis."""
    factors = (int(value),) * len(shape) if _is_bin_factor(value) else tuple(int(v) for v in value)
    if len(factors) != len(shape):
        raise ConfigError(f"bin={list(value)!r} has {len(factors)} factors for a pattern of "
                          f"{len(shape)} axes {shape}: give one per axis, or one integer")
    if any(n // b < 4 for n, b in zip(shape, factors)):
        raise ConfigError(f"bin={value!r} leaves fewer than 4 pixels on an axis of the pattern "
                          f"{shape}: give a smaller bin")
    return factors


def bin_pattern(intensity, bad, center, factors):
    """Sum a centred ``intensity`` over blocks of ``factors`` pixels (one per axis).

    The blocks are laid about ``center``, whose block is the new centre: for odd ``b`` the
    centre pixel is the middle of its block (the binned zero frequency is exact); an even
    block has no middle, and the centre is pixel ``b // 2 - 1`` or ``b // 2`` of it (half a
    pixel off either way), whichever keeps more whole blocks (512 pixels about 256 bin by 2
    into 256; on a tie, the blocks that start at pixel 0). Pixels at the edges that fill no
    whole block are dropped. A binned pixel is measured only if all of its pixels were: a
    sum over the measured ones rescaled to the block would invent intensity where it varies
    fastest (at a beam stop's or a gap's edge, within a speckle), and the modulus projection
    would then enforce that invented value; a floating pixel only costs information. Sums
    of photon counts also stay counts.

    Returns ``(binned intensity, binned bad mask, new centre, first pixel binned per axis)``.
    """
    index, new_center = [], []
    for n, c, b in zip(intensity.shape, center, factors):
        offsets = (b // 2,) if b % 2 else (b // 2 - 1, b // 2)
        # the first pixel of the centre's block, for each way of laying it inside the pattern
        firsts = [c - o for o in offsets if 0 <= c - o <= n - b]
        if not firsts:
            raise ConfigError(f"bin={list(factors)}: the centre {tuple(center)} is too near the "
                              f"edge of the pattern {intensity.shape} for a whole {b}-pixel block "
                              "about it; give a smaller bin or check the centre")
        first = max(firsts, key=lambda f: ((n - f % b) // b, -(f % b)))
        start = first % b
        count = (n - start) // b
        index.append(slice(start, start + count * b))
        new_center.append((first - start) // b)
    blocks = [v for n, b in zip([s.stop - s.start for s in index], factors) for v in (n // b, b)]
    inner = tuple(range(1, 2 * len(factors), 2))
    binned = intensity[tuple(index)].reshape(blocks).sum(axis=inner)
    binned_bad = bad[tuple(index)].reshape(blocks).any(axis=inner)
    return binned, binned_bad, tuple(new_center), tuple(s.start for s in index)


def _follow_bin(initial_model, support, shape, factors):
    """The model and support for the binned data: binning the pattern by ``b`` shrinks the
    real-space field of view by ``b`` at the same real-space pixel size, so they are cropped
    about their centre to ``shape``; the model is scaled by ``sqrt(prod(b))``, as block sums
    of ``b**d`` intensities scale its Fourier amplitudes."""
    if initial_model is not None:
        initial_model = _crop_or_pad_centred(initial_model, shape) * np.sqrt(np.prod(factors))
    if support is not None:
        support = _crop_or_pad_centred(support, shape)
    return initial_model, support


def fft_friendly_size(n, mode):
    """The FFT-friendly length for an axis of ``n`` pixels (:func:`scipy.fft.next_fast_len`):
    for ``"pad"`` the smallest one ``>= n``, for ``"crop"`` the largest one ``<= n``."""
    if mode == "pad":
        return int(sfft.next_fast_len(n))
    m = n
    while sfft.next_fast_len(m) != m:
        m -= 1
    return m


def crop_or_pad(intensity, bad, center, shape):
    """Crop or zero-pad a centred ``intensity`` (and ``bad``) to ``shape``, axis by axis,
    symmetrically about ``center`` (the centre goes to ``m // 2``, or as near as the data's
    edges allow). Padded pixels are bad (they float: nothing was measured there), not
    measured zeros. Returns ``(intensity, bad, new centre)``."""
    index, pad, new_center = _window(intensity.shape, center, shape)
    intensity = np.pad(intensity[index], pad)
    bad = np.pad(bad[index], pad, constant_values=True)
    return intensity, bad, new_center


def _window(old_shape, center, shape):
    """How to crop or pad each axis of ``old_shape`` to ``shape`` about ``center`` (to
    ``m // 2``, or as near as the edges allow): ``(index, pad widths, new centre)``."""
    index, pad, new_center = [], [], []
    for n, c, m in zip(old_shape, center, shape):
        if m <= n:
            start = min(max(c - m // 2, 0), n - m)
            index.append(slice(start, start + m))
            pad.append((0, 0))
            new_center.append(c - start)
        else:
            before = min(max(m // 2 - c, 0), m - n)
            index.append(slice(None))
            pad.append((before, m - n - before))
            new_center.append(c + before)
    return tuple(index), pad, tuple(new_center)


def _crop_or_pad_centred(array, shape):
    """``array`` cropped or zero-padded to ``shape`` keeping its centre ``N // 2`` at ``M // 2``."""
    index, pad, _ = _window(array.shape, [n // 2 for n in array.shape], shape)
    return np.pad(array[index], pad)


def fourier_resample(array, shape):
    """A centred real-space ``array`` resampled to ``shape`` by cropping or zero-padding its
    centred spectrum (what ``fft_size`` does to the pattern): the result's spectrum is the
    cropped or padded one, unnormalised FFTs, so a model keeps describing the data."""
    axes = tuple(range(array.ndim))
    spectrum = np.fft.fftshift(np.fft.fftn(np.fft.ifftshift(array, axes), axes=axes), axes)
    spectrum = _crop_or_pad_centred(spectrum, shape)
    return np.fft.fftshift(np.fft.ifftn(np.fft.ifftshift(spectrum, axes), axes=axes), axes)
