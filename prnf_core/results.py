"""Result files and pictures: ``save_h5`` (atomic HDF5) and ``plot_result`` (six panels)."""
from __future__ import annotations

import contextvars
import io
import json
import platform
import sys
import zlib

import numpy as np

from .fileutil import atomic_path, atomic_write

#: result key -> (spipy's dataset name, CXI place, units, description). The file follows
#: the CXI conventions (cxi_version, entry_1/image_1 with the object as data and the support
#: as mask, data_1 with the measured pattern as data, process_1; NeXus classes so silx shows
#: the object by default); spipy's names stay at the root as links, so existing scripts keep
#: working.
DATASETS = {
    "sample_ret": ("sample_retrieved", "image_1/data", "data amplitude x pixels",
                   "retrieved object, merged over the kept repeats, real space, centred"),
    "support": ("support_retrieved", "image_1/mask", "1",
                "support: the fraction of merged repeats holding each pixel"),
    "PRTF": ("PRTF", "result_1/prtf", "1",
             "phase retrieval transfer function |mean exp(i phase)| over every repeat, centred"),
    "background": ("background", "result_1/background", "data amplitude",
                   "fitted radial background amplitude per pixel, centred (0: not fitted)"),
    "eMod": ("modulus_error", "result_1/modulus_error", "1",
             "eMod per iteration along the path, mean over merged repeats; measured on each "
             "algorithm's iterate (for HIO, RAAR, DM not the support-constrained estimate)"),
    "eMod_estimate": ("modulus_error_estimate", "result_1/modulus_error_estimate", "1",
                      "eMod of the support-constrained estimate (what each node would hand "
                      "on), every 50 iterations and at each node's last, mean over merged "
                      "repeats; NaN where not measured"),
    "eMod_estimate_per_repeat": ("modulus_error_estimate_per_repeat",
                                 "result_1/modulus_error_estimate_per_repeat", "1",
                                 "eMod of the estimate, sampled, of each merged repeat"),
    "eCon": ("convergence_error", "result_1/convergence_error", "1",
             "eCon per iteration: relative change of the estimate, mean over merged repeats"),
    "diffraction_amp": ("diffraction_amplitude", "result_1/model_amplitude", "data amplitude",
                        "sqrt(|FFT(object)|^2 + background^2) of the merged object, centred"),
    "PRTF_radial": ("PRTF_radial", "result_1/prtf_radial", "1",
                    "PRTF averaged over integer shells 0 .. the edge of the data (pixels)"),
    "input_amp": ("input_amplitude", "data_2/data", "data amplitude",
                  "measured amplitude sqrt(I) after pre-processing, centred, 0 where masked"),
    "input_mask": ("input_mask", "data_1/mask", "1", "1 = pixel not measured, centred"),
    "eMod_per_repeat": ("modulus_error_per_repeat", "result_1/modulus_error_per_repeat", "1",
                        "eMod per iteration of each merged repeat"),
    "eCon_per_repeat": ("convergence_error_per_repeat", "result_1/convergence_error_per_repeat",
                        "1", "eCon per iteration of each merged repeat"),
    "final_eMod": ("final_modulus_error", "result_1/final_modulus_error", "1",
                   "eMod of each merged repeat's final estimate, on the fitted pixels"),
    "free_eMod": ("free_modulus_error", "result_1/free_modulus_error", "1",
                  "eMod of each merged repeat on the free pixels, never fitted (NaN: none)"),
    "free_deviance": ("free_poisson_deviance", "result_1/free_poisson_deviance", "1",
                      "mean Poisson deviance per free pixel of each merged repeat (counts only)"),
    "repeat_ids": ("repeat_ids", "result_1/repeat_ids", "1", "repeat index of each merged repeat"),
    "agreement": ("agreement", "result_1/agreement", "1",
                  "aligned overlap of each merged repeat with the merge's reference (the best "
                  "repeat when ranked, else the first); 1 = the same object"),
}
ATTRIBUTES = ("repeat", "ranks", "merged", "precision", "PRTF_repeats")
CXI_VERSION = 150


def versions():
    """Versions of PRNF and the libraries that shape a result."""
    from importlib.metadata import PackageNotFoundError, version
    found = {"python": platform.python_version()}
    for name in ("prnf", "numpy", "numba", "pyFFTW", "scipy", "h5py", "mpi4py"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


#: ``save_h5``'s compression choices: ``auto`` (gzip, built into every HDF5, for each dataset
#: a sample of which compresses well; the rest raw), ``gzip`` (every dataset),
#: ``zstd``/``blosc2`` (hdf5plugin's multi-threaded filters: readers need hdf5plugin),
#: ``none``. Measured at 256^3 (benchmarks/bench_save.py): float volumes of simulated data
#: compress 1.1x, the support, mask, PRTF and background 13-640x; gzip everywhere took 11.4
#: s (51% of a 20-iteration run), zstd 1.3 s
COMPRESSIONS = ("auto", "gzip", "zstd", "blosc2", "none")
#: ``auto`` compresses a dataset whose sample zlib shrinks at least this much
AUTO_MIN_RATIO = 1.5
_compression = contextvars.ContextVar("compression", default="auto")


def save_h5(out, save_file, command=None, compression="auto"):
    """Write a result dict from :meth:`Runner.run` as a CXI file (``.cxi`` or ``.h5`` alike),
    through memory and a temporary file.

    Layout: ``cxi_version``; ``entry_1`` (``start_time``, ``end_time`` when the result
    holds them); ``entry_1/image_1`` (the object as ``data``, the support as ``mask``,
    real-space pixel axes; NXdata: silx shows it), ``entry_1/image_1/process_1`` (program,
    version, command, the network as JSON, settings), ``entry_1/image_1/process_2`` (the
    corrections applied after merging, when made), ``entry_1/data_1`` (the measured
    intensity as ``data`` and its mask: ``prnf phase result.cxi`` phases the same pattern
    again), ``entry_1/data_2`` (the measured amplitude), ``entry_1/result_1`` (PRTF, errors,
    model amplitude, the support's summary), ``entry_1/instrument_1`` (wavelength, detector
    distance and pixel size, when given). Every dataset has ``description`` and ``units``;
    spipy's dataset names (:data:`DATASETS`) are links at the root. Root attributes as
    before: the model JSON, stream path, seed (as text), repeats, ranks, merged, keep_best,
    precision, resolution shell (-1 if the PRTF never drops below 1/e), library versions,
    selection (JSON).
    """
    import h5py
    check_compression(compression)
    # HDF5 writes into memory, then one plain write puts the bytes on disk: a full disk is
    # then an OSError, not a crash inside HDF5 (a segmentation fault, 3 of 3 tries)
    buffer = io.BytesIO()
    found = versions()                  # package metadata lookups: once per file
    chosen = _compression.set(compression)
    try:
        with h5py.File(buffer, "w") as f:
            _write_cxi(f, out, command, found)
            _write_attributes(f, out, found)
    finally:
        _compression.reset(chosen)
    atomic_write(save_file, buffer.getbuffer())
    return save_file


#: NXdata axis names, slowest axis first: real space (``image_1``), reciprocal (``data_*``)
REAL_AXES = {2: ("y", "x"), 3: ("z", "y", "x")}
RECIPROCAL_AXES = {2: ("qy", "qx"), 3: ("qz", "qy", "qx")}
#: the experiment's geometry a result may hold (``out["geometry"]``): key -> (CXI place, what)
GEOMETRY = {"wavelength": ("instrument_1/source_1/wavelength", "X-ray wavelength"),
            "distance": ("instrument_1/detector_1/distance", "sample to detector distance"),
            "pixel_size": ("instrument_1/detector_1/x_pixel_size", "detector pixel size")}
PLANCK_C = 6.62607015e-34 * 299792458.0         # h c (J m): photon energy = h c / wavelength


def real_space_pixel_size(out):
    """The object's pixel size per axis (metres), ``wavelength * distance / (N * pixel_size)``
    with N the pattern's size along the axis, or None when the result holds no complete
    geometry (``out["geometry"]`` with ``wavelength``, ``distance``, ``pixel_size``)."""
    geometry = out.get("geometry") or {}
    if any(geometry.get(key) is None for key in GEOMETRY):
        return None
    scale = geometry["wavelength"] * geometry["distance"] / geometry["pixel_size"]
    return np.array([scale / n for n in np.shape(out["sample_ret"])])


def _write_cxi(f, out, command, found):
    import h5py
    f["cxi_version"] = CXI_VERSION
    f.attrs.update({"NX_class": "NXroot", "default": "entry_1", "creator": "PRNF",
                    "file_time": now()})
    entry = f.create_group("entry_1")
    entry.attrs.update({"NX_class": "NXentry", "default": "image_1"})
    entry["program_name"] = f"PRNF {found.get('prnf', '')}"
    for key in ("start_time", "end_time"):
        if out.get(key):
            entry[key] = out[key]
    for group, nx in (("image_1", "NXdata"), ("data_1", "NXdata"), ("data_2", "NXdata"),
                      ("result_1", "NXcollection")):
        entry.create_group(group).attrs["NX_class"] = nx
    for group in ("image_1", "data_1", "data_2"):
        entry[group].attrs["signal"] = "data"
    for key, (seed_name, place, units, description) in DATASETS.items():
        ds = _dataset(entry, place, out[key], units, description)
        f[seed_name] = h5py.SoftLink(ds.name)
    _write_measured(entry, out)
    _write_image(entry["image_1"], out)
    _write_process(entry["image_1"], out, command, found)
    entry["process_1"] = h5py.SoftLink("/entry_1/image_1/process_1")
    _write_corrections(entry["image_1"], out.get("corrections"))
    _write_support_summary(entry["result_1"], out.get("support_summary"))
    _write_geometry(entry, out)


def now():
    """The local time in ISO 8601, with its UTC offset (NeXus' times)."""
    from datetime import datetime
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _dataset(group, place, value, units, description):
    import h5py
    data = np.asarray(value)
    if data.dtype.kind == "U":           # h5py stores text as variable-length UTF-8 only
        data = data.astype(h5py.string_dtype())
    ds = group.create_dataset(place, data=data, **_filters(data, _compression.get()))
    ds.attrs.update({"description": description, "units": units})
    return ds


def check_compression(compression):
    """A compression :func:`save_h5` knows, with its library, before any work: a clear error
    naming the choices or the extra to install."""
    from .errors import ConfigError
    if compression not in COMPRESSIONS:
        raise ConfigError(f"compression {compression!r}: give one of {', '.join(COMPRESSIONS)}")
    if compression in ("zstd", "blosc2"):
        try:
            import hdf5plugin  # noqa: F401
        except ImportError:
            raise ConfigError(f"compression {compression!r} needs hdf5plugin: pip install "
                              "'prnf[compression]' (or use gzip, which every HDF5 reads)") from None


def _filters(data, compression):
    """h5py's filter arguments for ``data`` under ``compression`` (small arrays: none)."""
    if data.size <= 4096 or data.dtype.kind in "OSU" or compression == "none":
        return {}
    if compression == "zstd":
        import hdf5plugin
        return dict(hdf5plugin.Zstd(clevel=1))
    if compression == "blosc2":
        import hdf5plugin
        return dict(hdf5plugin.Blosc2(cname="zstd", clevel=1, filters=hdf5plugin.Blosc2.SHUFFLE))
    if compression == "gzip" or compresses(data):
        return {"compression": "gzip"}
    return {}


def compresses(data, samples=4, sample_bytes=1 << 16):
    """Whether ``data`` is worth gzip: ``samples`` pieces of it, spread over the array,
    shrink by :data:`AUTO_MIN_RATIO` under zlib level 1 (about a millisecond)."""
    raw = np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    starts = np.linspace(0, max(raw.size - sample_bytes, 0), samples).astype(np.int64)
    pieces = [raw[s:s + sample_bytes].tobytes() for s in starts]
    packed = sum(len(zlib.compress(p, 1)) for p in pieces)
    return sum(map(len, pieces)) >= AUTO_MIN_RATIO * packed


def _write_measured(entry, out):
    """``data_1``: the measured intensity as ``data`` (CXI readers, and PRNF's own input,
    take ``entry_1/data_1/data`` for the pattern: it held a link to the object) beside its
    mask; ``data_2``: the same as amplitude. Both with axes in pixels from zero frequency."""
    amplitude = np.asarray(out["input_amp"])
    _dataset(entry, "data_1/data", np.square(amplitude), "data intensity",
             "measured intensity after pre-processing (input_amplitude squared), centred, "
             "0 where masked: the pattern phased")
    data_1, data_2 = entry["data_1"], entry["data_2"]
    data_1["title"] = "measured intensity"
    data_2["title"] = "measured amplitude"
    data_2["mask"] = data_1["mask"]                      # one dataset, two names
    names = RECIPROCAL_AXES[amplitude.ndim]
    centre = np.asarray(out["center"], dtype=np.int64)
    for axis, (name, n) in enumerate(zip(names, amplitude.shape)):
        _dataset(data_1, name, np.arange(n) - centre[axis], "pixel",
                 f"reciprocal-space coordinate along axis {axis}: pixels from zero frequency")
        data_2[name] = data_1[name]
    for group in (data_1, data_2):
        _set_axes(group, names)


def _write_image(image, out):
    image["data_type"], image["data_space"] = "object", "real"
    image["is_fft_shifted"] = 0
    shape = np.shape(out["sample_ret"])
    names = REAL_AXES[len(shape)]
    for axis, (name, n) in enumerate(zip(names, shape)):
        _dataset(image, name, np.arange(n) - n // 2, "pixel",
                 f"real-space coordinate along axis {axis}: pixels from the array's centre")
    _set_axes(image, names)
    size = real_space_pixel_size(out)
    if size is not None:
        _dataset(image, "real_space_pixel_size", size, "m",
                 "the object's pixel size per axis: wavelength * distance / (N * pixel size), "
                 "N the pattern's size along the axis")
        _dataset(image, "image_size", size * np.asarray(shape), "m",
                 "the object array's physical extent per axis (CXI)")


def _set_axes(group, names):
    group.attrs["axes"] = list(names)
    for axis, name in enumerate(names):
        group.attrs[f"{name}_indices"] = axis


def _write_process(image, out, command, found):
    process = image.create_group("process_1")
    process.attrs["NX_class"] = "NXprocess"
    process["program"] = "PRNF"
    process["version"] = found.get("prnf", "")
    process["command"] = command if command is not None else " ".join(sys.argv)
    process["configuration"] = json.dumps(out["model"])
    process["seed"] = str(out["seed"])
    # what was done to the pattern before phasing (photon threshold, binning, FFT size):
    # each step with its parameters and the shape after it; {} when none
    _dataset(process, "data_preparation", json.dumps(out.get("preparation") or {}), "",
             "JSON: each preparation step applied to the pattern before phasing "
             "(photon_threshold, bin, fft_size) with its parameters and the shape after it; "
             "{} when none")


#: corrections key -> (units, description) of ``entry_1/image_1/process_2``
CORRECTIONS = {
    "phase_ramp": ("rad/pixel", "linear phase ramp removed from the merged object, per axis"),
    "shift": ("pixel", "shift applied to the merged object to centre it, per axis"),
    "phase_offset": ("rad", "constant phase removed from the merged object"),
    "orientation": ("", "'as found', or 'twin': the object was replaced by its twin "
                        "(conjugated and inverted through the centre)"),
    "center": ("pixel", "the refined zero-frequency pixel of the pattern"),
}
#: support_summary key -> (place in result_1, units, description)
SUPPORT_SUMMARY = {
    "size": ("support_size", "pixel", "pixels in the merged object's support"),
    "bbox": ("support_bbox", "pixel", "the support's bounding box: [first, last] index per "
             "axis, both inclusive"),
    "components": ("support_components", "1", "connected pieces of the support (1 for a "
                   "single object)"),
    "pieces_with_object": ("support_pieces_with_object", "1", "pieces of the support holding "
                           "at least 1% of the object's |o|^2 on it (1 for a single object; a "
                           "support chosen by size also keeps pieces where the object is zero)"),
}


def _write_corrections(image, corrections):
    """``process_2``: what was done to the merged object after merging (issue 32); written
    only when the result says (``out["corrections"]``)."""
    if not corrections:
        return
    process = image.create_group("process_2")
    process.attrs["NX_class"] = "NXprocess"
    process["program"] = "PRNF"
    process["note"] = "corrections applied to the merged object after merging"
    for key, (units, description) in CORRECTIONS.items():
        if corrections.get(key) is not None:
            _dataset(process, key, corrections[key], units, description)


def _write_support_summary(result, summary):
    for key, (place, units, description) in SUPPORT_SUMMARY.items():
        if summary and summary.get(key) is not None:
            _dataset(result, place, summary[key], units, description)


def _write_geometry(entry, out):
    geometry = {k: v for k, v in (out.get("geometry") or {}).items() if v is not None}
    if not geometry:
        return
    instrument = entry.create_group("instrument_1")
    instrument.attrs["NX_class"] = "NXinstrument"
    instrument.create_group("source_1").attrs["NX_class"] = "NXsource"
    instrument.create_group("detector_1").attrs["NX_class"] = "NXdetector"
    for key, (place, what) in GEOMETRY.items():
        if key in geometry:
            _dataset(entry, place, float(geometry[key]), "m", f"{what}, as given")
    if "pixel_size" in geometry:
        entry["instrument_1/detector_1/y_pixel_size"] = entry[GEOMETRY["pixel_size"][0]]
    if "wavelength" in geometry:
        _dataset(entry, "instrument_1/source_1/energy", PLANCK_C / geometry["wavelength"], "J",
                 "photon energy h c / wavelength (CXI)")


def _verdict_line(out):
    """The verdict under the title, wrapped (a long one would run off the figure)."""
    import textwrap
    words = (out.get("verdict") or {}).get("words")
    return "\n" + "\n".join(textwrap.wrap(words, 150)) if words else ""


def _write_attributes(f, out, found):
    for key in ATTRIBUTES:
        f.attrs[key] = out[key]
    f.attrs["seed"] = str(out["seed"])
    f.attrs["keep_best"] = json.dumps(out["keep_best"])
    f.attrs["resolution_shell"] = -1 if out["resolution_shell"] is None else out["resolution_shell"]
    f.attrs["center"] = np.asarray(out["center"])
    f.attrs["stream_path"] = json.dumps(out["stream_path"])
    f.attrs["model_json"] = json.dumps(out["model"])
    f.attrs["versions"] = json.dumps(found)
    f.attrs["selection"] = json.dumps(out.get("selection"))
    if out.get("verdict") is not None:
        f.attrs["verdict"] = json.dumps(out["verdict"])


def central_slice(a, index=None):
    """2D arrays as they are; 3D volumes as their slice ``index`` (default: central) along the
    first axis."""
    a = np.asarray(a)
    if a.ndim != 3:
        return a
    return a[a.shape[0] // 2 if index is None else index]


def densest_slice(weights):
    """Index along the first axis of the plane holding most of ``weights`` (nearest the centre
    among equals): the object's plane, or the plane with most measured pixels (the central
    plane of a volume may be a masked gap, which showed a blank panel)."""
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim != 3:
        return None
    per_plane = weights.reshape(weights.shape[0], -1).sum(axis=1)
    centre = weights.shape[0] // 2
    distance = np.abs(np.arange(weights.shape[0]) - centre)
    return int(np.lexsort((distance, -per_plane))[0])     # most weight, then nearest the centre


def plot_result(out, save_file=None):
    """Object modulus and phase, input vs model amplitude, eCon, eMod, radial PRTF.

    Uses matplotlib's object API (no pyplot, no display needed). 2D results: six panels.
    3D results: the object's amplitude and phase on its three central planes through the
    centre of mass of ``|o|^2`` (:func:`slice_planes`), the phase only where ``|o|`` is
    above :data:`PHASE_SHOWN` of its peak (grey elsewhere), beside the reciprocal plane
    with most measured pixels and the curves. Returns the figure; writes a PNG
    (atomically) when ``save_file`` is given.
    """
    from matplotlib.figure import Figure
    from .merge import merge_note
    if np.ndim(out["sample_ret"]) == 3:
        fig = Figure(figsize=(17, 11), layout="constrained")
        axes = fig.subplot_mosaic([["z", "y", "x", "amplitude"], ["pz", "py", "px", "prtf"],
                                   ["econ", "econ", "emod", "emod"]])
        _object_slices(fig, [axes[k] for k in "zyx"], [axes["p" + k] for k in "zyx"], out)
        panels = (axes["amplitude"], axes["econ"], axes["emod"], axes["prtf"])
    else:
        fig = Figure(figsize=(13, 8), layout="constrained")
        axes = fig.subplots(2, 3)
        _object_panels(fig, axes[0, 0], axes[0, 1], out)
        panels = (axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2])
    _amplitude_panel(fig, panels[0], out)
    _curve_panel(panels[1], out["eCon"], out.get("eCon_per_repeat"),
                 "convergence error eCon (change of the estimate)")
    _curve_panel(panels[2], out["eMod"], out.get("eMod_per_repeat"),
                 "eMod: of the iterate (line), of the estimate (dots)", final=out["final_eMod"],
                 estimate=out.get("eMod_estimate"), free=out.get("free_eMod"))
    _prtf_panel(panels[3], out)
    fig.suptitle(f"PRNF: {' -> '.join(out['stream_path'])}   (merged {merge_note(out)}; "
                 f"final eMod of the estimates {np.nanmedian(out['final_eMod']):.4f})"
                 + _verdict_line(out), fontsize=10,
                 color="black" if (out.get("verdict") or {}).get("trusted", True) else "darkred")
    if save_file:
        with atomic_path(save_file) as tmp:
            fig.savefig(tmp, format="png", dpi=90)
    return fig


#: the phase of an object (2D, or a 3D plane) is drawn where ``|o|`` is above this fraction
#: of its peak
PHASE_SHOWN = 0.1


def slice_planes(obj):
    """The three central planes of a volume through the centre of mass of ``|obj|^2``.

    Returns
    -------
    list of (str, int, ndarray)
        ``(axis name, index, plane)`` for axes z, y, x (0, 1, 2): the planes ``obj[c0]``
        (y by x), ``obj[:, c1]`` (z by x) and ``obj[:, :, c2]`` (z by y), ``c`` the centre
        of mass rounded to a pixel (the array centre for an empty object).
    """
    density = np.square(np.abs(obj), dtype=np.float64)
    total = density.sum()
    centre = [n // 2 for n in obj.shape]
    if total > 0:
        grids = (np.arange(n) for n in obj.shape)
        centre = [int(np.clip(np.rint((density.sum(axis=tuple(a for a in range(3) if a != k))
                                       * g).sum() / total), 0, n - 1))
                  for k, (g, n) in enumerate(zip(grids, obj.shape))]
    return [(name, centre[k], np.take(obj, centre[k], axis=k)) for k, name in enumerate("zyx")]


def _object_slices(fig, amplitude_axes, phase_axes, out):
    obj = np.asarray(out["sample_ret"])
    peak = float(np.abs(obj).max()) or 1.0
    box = _zoom(np.abs(obj) > PHASE_SHOWN * peak)
    for (name, index, plane), ax_amp, ax_phase in zip(slice_planes(obj), amplitude_axes,
                                                      phase_axes):
        rows, cols = [axis for axis in "zyx" if axis != name]
        row_axis, col_axis = "zyx".index(rows), "zyx".index(cols)
        extent = _pixel_extent(obj.shape, row_axis, col_axis)
        im = ax_amp.imshow(np.abs(plane), cmap="viridis", vmin=0, vmax=peak, extent=extent)
        fig.colorbar(im, ax=ax_amp, shrink=0.8, label="|o| (data amplitude units)")
        ax_amp.set_title(f"object |o| at {name} = {index} (centre of mass)", fontsize=9)
        visible = np.abs(plane) > PHASE_SHOWN * peak
        cmap = _grey_where_blank("twilight")
        im = ax_phase.imshow(np.where(visible, np.angle(plane), np.nan), cmap=cmap,
                             vmin=-np.pi, vmax=np.pi, extent=extent)
        fig.colorbar(im, ax=ax_phase, shrink=0.8, label="phase (rad)")
        ax_phase.set_title(f"phase at {name} = {index}, where |o| > "
                           f"{PHASE_SHOWN:.0%} of its peak (grey: not shown)", fontsize=9)
        for ax in (ax_amp, ax_phase):
            ax.set_xlabel(f"{cols} (pixels from the centre)")
            ax.set_ylabel(f"{rows} (pixels)")
            if box is not None:           # a small object in a large array: show its region
                ax.set_xlim(*box[col_axis])
                ax.set_ylim(*box[row_axis][::-1])


#: pixels shown around the object's region in the 3D slices
ZOOM_MARGIN = 6


def _zoom(shown):
    """Per axis, the coordinate range (pixels from the centre) of the pixels ``shown`` with
    :data:`ZOOM_MARGIN` around, as square as the array allows; None when nothing is
    shown."""
    from .postprocess import bounding_box
    box = bounding_box(shown)
    if not box:
        return None
    ranges = [(lo - n // 2, hi - n // 2) for (lo, hi), n in zip(box, shown.shape)]
    half = max(hi - lo for lo, hi in ranges) / 2 + ZOOM_MARGIN
    return [(max((lo + hi) / 2 - half, -(n // 2)) - 0.5,
             min((lo + hi) / 2 + half, n - n // 2 - 1) + 0.5)
            for (lo, hi), n in zip(ranges, shown.shape)]


def _pixel_extent(shape, row_axis, col_axis):
    """imshow's extent putting pixel centres at ``index - N // 2`` (the file's axes)."""
    rows, cols = shape[row_axis], shape[col_axis]
    return (-(cols // 2) - 0.5, cols - cols // 2 - 0.5, rows - rows // 2 - 0.5, -(rows // 2) - 0.5)


def _grey_where_blank(name):
    import matplotlib
    return matplotlib.colormaps[name].with_extremes(bad="0.8")


def _object_panels(fig, ax_mod, ax_phase, out):
    index = densest_slice(np.abs(out["sample_ret"]) ** 2)
    plane = "" if index is None else f", plane {index} of axis 0"
    obj = central_slice(out["sample_ret"], index)
    support = central_slice(out["support"], index) > 0.5
    im = ax_mod.imshow(np.abs(obj), cmap="viridis")
    fig.colorbar(im, ax=ax_mod, shrink=0.8, label="|o| (data amplitude units)")
    ax_mod.set_title(f"retrieved object |o|{plane}", fontsize=9)
    # phase is noise where the object is empty: shown where |o| is above PHASE_SHOWN of its
    # peak, as in the 3D planes
    visible = support & (np.abs(obj) > PHASE_SHOWN * np.abs(obj).max())
    phase = np.where(visible, np.angle(obj), np.nan)
    im = ax_phase.imshow(phase, cmap="twilight", vmin=-np.pi, vmax=np.pi)
    fig.colorbar(im, ax=ax_phase, shrink=0.8, label="phase (rad)")
    ax_phase.set_title(f"phase where |o| > {PHASE_SHOWN:.0%} of its peak", fontsize=9)
    for ax in (ax_mod, ax_phase):
        ax.set_xlabel("x (pixels, real space)")
        ax.set_ylabel("y (pixels)")


def _amplitude_panel(fig, ax, out):
    index = densest_slice(~np.asarray(out["input_mask"]))
    plane = "" if index is None else f", plane {index}"
    measured = central_slice(out["input_amp"], index)
    model = central_slice(out["diffraction_amp"], index)
    mask = central_slice(out["input_mask"], index)
    half = measured.shape[1] // 2
    both = np.where(mask, np.nan, measured)
    both[:, half:] = model[:, half:]
    im = ax.imshow(np.log10(np.maximum(both, 1e-3 * np.nanmax(both))), cmap="magma")
    fig.colorbar(im, ax=ax, shrink=0.8, label="log10 amplitude (data units)")
    ax.axvline(half - 0.5, color="w", lw=0.8)
    ax.set_title(f"input (left, masked blank) | model (right){plane}", fontsize=9)
    ax.set_xlabel("q (pixels)")
    ax.set_ylabel("q (pixels)")


def _curve_panel(ax, mean, per_repeat, title, final=None, estimate=None, free=None):
    if per_repeat is not None and np.ndim(per_repeat) == 2 and len(per_repeat) > 1:
        for row in per_repeat:
            ax.semilogy(row, color="0.8", lw=0.5)
    ax.semilogy(np.maximum(mean, 1e-12), color="C0", lw=1.2,
                label="mean over merged repeats" if estimate is None else
                "of the iterate (HIO, RAAR, DM explore: it climbs)")
    if estimate is not None and np.isfinite(estimate).any():
        # the iterate of HIO, RAAR or DM is not the answer: its eMod climbs while they
        # explore; the support-constrained estimate's is the one that reads as progress
        at = np.flatnonzero(np.isfinite(estimate))
        ax.semilogy(at, np.maximum(np.asarray(estimate)[at], 1e-12), "o-", color="C2", ms=3,
                    lw=0.8, label="of the support-constrained estimate")
    if free is not None and np.isfinite(free).any():
        ax.axhline(np.nanmedian(free), color="C1", ls=":", lw=1.0,
                   label=f"free eMod (pixels never fitted) {np.nanmedian(free):.4f}")
    if final is not None and np.isfinite(final).any():
        # HIO, RAAR or DM iterates fit worse than their support-constrained estimate: the
        # final eMod (of the estimate) is the number to quote
        ax.axhline(np.nanmedian(final), color="C3", ls="--", lw=0.8,
                   label=f"final eMod of the estimates {np.nanmedian(final):.4f}")
    ax.set_xlabel("iteration along the stream path")
    ax.set_ylabel("relative error")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)


def _prtf_panel(ax, out):
    radial = np.asarray(out["PRTF_radial"])
    ax.plot(radial, color="C2")
    ax.axhline(np.exp(-1), color="C3", ls="--", lw=0.8, label="1/e")
    if out["resolution_shell"] is not None:
        ax.axvline(out["resolution_shell"], color="C1", lw=0.8,
                   label=f"resolution shell {out['resolution_shell']} px")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("shell radius q (pixels from centre)")
    ax.set_ylabel("PRTF")
    ax.set_title(f"radial PRTF over {out.get('PRTF_repeats', out['merged'])} independent repeats",
                 fontsize=9)
    ax.legend(fontsize=8)
