"""Result files and plots: every dataset and attribute, atomic writes, headless PNG."""
import json

import h5py
import numpy as np
import pytest

from prnf_core import Runner, phmodel
from prnf_core.results import DATASETS, save_h5

from helpers import config, write_pattern


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("res")
    pattern, mask, _ = write_pattern(tmp, photons=1e6, beamstop=1)
    inp = phmodel.pInput(config(pattern, mask, background=True))
    node = phmodel.ERA(10, 40).after(phmodel.HIO(20, 40, 0.9).after(inp))
    runner = Runner([inp], phmodel.pOutput().after(node))
    return runner, runner.run(3, seed=9)


def test_h5_has_every_dataset_and_attribute(tmp_path, result):
    runner, out = result
    path = tmp_path / "r.h5"
    runner.save_h5(out, path)
    with h5py.File(path, "r") as f:
        for key, (name, *_) in DATASETS.items():             # the seed's names, as links
            np.testing.assert_array_equal(f[name][()], np.asarray(out[key]))
        assert f["sample_retrieved"].dtype.kind == "c"
        assert f["PRTF"].dtype.kind == "f"
        assert json.loads(f.attrs["stream_path"]) == ["HIO", "ERA"]
        assert json.loads(f.attrs["model_json"])["format"] == "prnf-model"
        assert f.attrs["seed"] == "9" and f.attrs["repeat"] == 3 and f.attrs["merged"] == 3
        assert "numpy" in json.loads(f.attrs["versions"])
    assert [p.name for p in tmp_path.iterdir()] == ["r.h5"]     # no temporary file left


def test_failed_write_leaves_no_file(tmp_path, result):
    _, out = result
    broken = dict(out, sample_ret=object())
    with pytest.raises(TypeError):           # h5py cannot store an object array
        save_h5(broken, tmp_path / "r.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("three_d", [False, True])
def test_plot_is_headless_png(tmp_path, result, three_d):
    runner, out = result
    if three_d:
        out = dict(out)
        for key in ("sample_ret", "support", "input_amp", "diffraction_amp", "input_mask"):
            out[key] = np.stack([out[key]] * 4)
    fig = runner.plot_result(out, tmp_path / "r.png")
    assert len(fig.axes) >= 6
    data = (tmp_path / "r.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    titles = " ".join(ax.get_title() for ax in fig.axes)
    for word in ("object", "phase", "model", "eCon", "eMod", "PRTF"):
        assert word in titles


def test_prtf_counts_every_repeat_and_stops_at_the_edge_of_the_data(tmp_path):
    # the resolution shell once came from corner shells beyond the data's edge ("shell 78" on
    # a 123^2 pattern whose edge is 61), and the PRTF from the kept best repeats only
    pattern, mask, _ = write_pattern(tmp_path, shape=(32, 30), photons=1e6, beamstop=1)
    inp = phmodel.pInput(config(pattern, mask))
    runner = Runner([inp], phmodel.pOutput().after(phmodel.HIO(20, 40, 0.9).after(inp)))
    out = runner.run(5, seed=2, keep_best=2)
    assert out["merged"] == 2 and out["PRTF_repeats"] == 5
    assert len(out["PRTF_radial"]) == 15             # shells 0..14: the centre (16, 15) is 14 from an edge
    assert out["resolution_shell"] is None or out["resolution_shell"] <= 14
    runner.save_h5(out, tmp_path / "r.h5")
    with h5py.File(tmp_path / "r.h5") as f:
        assert f.attrs["PRTF_repeats"] == 5


@pytest.mark.parametrize("suffix", [".cxi", ".h5"])
def test_results_follow_the_cxi_conventions(tmp_path, result, suffix):
    # the file was a flat bag of 14 datasets without attributes: neither silx nor PyNX's tools
    # showed anything useful
    runner, out = result
    path = tmp_path / f"r{suffix}"
    runner.save_h5(out, path)
    with h5py.File(path, "r") as f:
        assert f["cxi_version"][()] == 150
        assert f.attrs["default"] == "entry_1" and f["entry_1"].attrs["NX_class"] == "NXentry"
        image = f["entry_1/image_1"]
        assert image.attrs["NX_class"] == "NXdata" and image.attrs["signal"] == "data"
        np.testing.assert_array_equal(image["data"][()], out["sample_ret"])
        np.testing.assert_array_equal(image["mask"][()], out["support"])
        np.testing.assert_allclose(f["entry_1/data_1/data"][()], np.square(out["input_amp"]))
        process = f["entry_1/image_1/process_1"]
        assert process["program"][()] == b"PRNF"
        assert json.loads(process["configuration"][()])["format"] == "prnf-model"
        assert f["entry_1/process_1/command"][()]
        described = []
        f["entry_1"].visititems(lambda name, obj: described.append(
            isinstance(obj, h5py.Group) or name.endswith(("program", "version", "command",
                                                          "configuration", "seed", "data_type",
                                                          "data_space", "is_fft_shifted",
                                                          "program_name", "title",
                                                          "note"))
            or {"description", "units"} <= set(obj.attrs)))
        assert all(described)


def test_3d_pictures_show_planes_with_data():
    # the input panel was blank when the central plane was a masked gap
    from prnf_core.results import densest_slice
    mask = np.zeros((9, 8, 8), bool)
    mask[4] = True                                            # the central plane: a gap
    assert densest_slice(~mask) in (3, 5)
    obj = np.zeros((9, 8, 8))
    obj[2, 3:5, 3:5] = 1
    assert densest_slice(obj) == 2
    assert densest_slice(np.ones((8, 8))) is None


def _saved(tmp_path, out, name="r.h5", **extra):
    path = tmp_path / name
    save_h5(dict(out, **extra), path)
    return path


def test_every_nxdata_signal_is_what_it_says_and_has_pixel_axes(tmp_path, result):
    # issue 30: data_1 said signal=amplitude but held `data`, a link to the object
    _, out = result
    with h5py.File(_saved(tmp_path, out), "r") as f:
        groups = {name: group for name, group in f["entry_1"].items()
                  if isinstance(group, h5py.Group) and group.attrs.get("NX_class") == "NXdata"}
        assert set(groups) == {"image_1", "data_1", "data_2"}
        expected = {"image_1": out["sample_ret"], "data_1": np.square(out["input_amp"]),
                    "data_2": out["input_amp"]}
        for name, group in groups.items():
            signal = group[group.attrs["signal"]][()]
            np.testing.assert_allclose(signal, expected[name], err_msg=name)
            axes = list(group.attrs["axes"])
            assert len(axes) == signal.ndim
            for axis, axis_name in enumerate(axes):
                assert group.attrs[f"{axis_name}_indices"] == axis
                assert group[axis_name].shape == (signal.shape[axis],)
                assert group[axis_name].attrs["units"] == "pixel"
        n = out["sample_ret"].shape[1]
        np.testing.assert_array_equal(f["entry_1/image_1/x"][()], np.arange(n) - n // 2)
        np.testing.assert_array_equal(f["entry_1/data_1/qy"][()],
                                      np.arange(out["input_amp"].shape[0]) - out["center"][0])
        assert "real_space_pixel_size" not in f["entry_1/image_1"]    # no geometry given
        assert "instrument_1" not in f["entry_1"]


@pytest.mark.parametrize("suffix", [".cxi", ".h5"])
def test_a_result_given_as_input_reads_the_measured_pattern(tmp_path, result, suffix):
    # issue 30: `prnf phase result.cxi` read the object (data_1/data linked to it)
    from prnf_core.errors import DataFileError
    from prnf_core.io import cxi_mask, load_array
    _, out = result
    path = _saved(tmp_path, out, "r" + suffix)
    intensity = np.square(out["input_amp"])
    # a CXI file by its content (cxi_version), whatever its suffix: the default result.h5
    np.testing.assert_allclose(load_array(path), intensity)
    np.testing.assert_array_equal(cxi_mask(path), out["input_mask"])
    plain = tmp_path / "plain.h5"           # not CXI: it must name its dataset
    with h5py.File(plain, "w") as f:
        f["entry_1/data_1/data"] = intensity
    with pytest.raises(DataFileError, match=r"e\.g\. '.*plain\.h5:/entry_1/data_1/data'"):
        load_array(str(plain))
    np.testing.assert_allclose(load_array(f"{path}:/entry_1/data_1/data"), intensity)


def test_geometry_gives_the_real_space_pixel_size(tmp_path, result):
    from prnf_core.results import real_space_pixel_size
    _, out = result
    geometry = {"wavelength": 1.5e-10, "distance": 0.7, "pixel_size": 75e-6}
    shape = out["sample_ret"].shape
    with h5py.File(_saved(tmp_path, out, geometry=geometry), "r") as f:
        size = f["entry_1/image_1/real_space_pixel_size"]
        np.testing.assert_allclose(size[()], [1.5e-10 * 0.7 / (n * 75e-6) for n in shape])
        assert size.attrs["units"] == "m"
        np.testing.assert_allclose(f["entry_1/image_1/image_size"][()], size[()] * shape)
        assert f["entry_1/instrument_1/source_1/wavelength"][()] == 1.5e-10
        assert f["entry_1/instrument_1/detector_1/distance"][()] == 0.7
        assert f["entry_1/instrument_1/detector_1/x_pixel_size"][()] == 75e-6
        assert f["entry_1/instrument_1/detector_1/y_pixel_size"][()] == 75e-6
        assert f["entry_1/instrument_1/source_1/energy"][()] == pytest.approx(1.3244e-15, rel=1e-3)
    assert real_space_pixel_size(dict(out, geometry=dict(geometry, distance=None))) is None


def test_start_and_end_times_are_iso_8601(tmp_path, result):
    from datetime import datetime
    _, out = result
    path = _saved(tmp_path, out, start_time="2026-01-02T03:04:05+01:00",
                  end_time="2026-01-02T03:05:00+01:00")
    with h5py.File(path, "r") as f:
        assert f["entry_1/start_time"][()].decode() == "2026-01-02T03:04:05+01:00"
        assert f["entry_1/end_time"][()].decode() == "2026-01-02T03:05:00+01:00"
        assert datetime.fromisoformat(f.attrs["file_time"]).tzinfo is not None
    with h5py.File(_saved(tmp_path, out, "plain.h5"), "r") as f:    # Runner.run's own: none
        assert "start_time" not in f["entry_1"] and "end_time" not in f["entry_1"]


CORRECTIONS = {"phase_ramp": [0.21, 0.0, 0.01], "shift": [2, 0, -1], "phase_offset": 0.5,
               "orientation": "twin", "center": [16.5, 16.0, 15.75]}
SUMMARY = {"size": 1851, "bbox": [[10, 21], [9, 22], [11, 21]], "components": 1}


def test_corrections_and_the_support_summary_are_written_when_present(tmp_path, result):
    # issue 32: what was done to the merged object, and its support, in the file
    _, out = result
    path = _saved(tmp_path, out, corrections=CORRECTIONS, support_summary=SUMMARY)
    with h5py.File(path, "r") as f:
        process = f["entry_1/image_1/process_2"]
        assert process.attrs["NX_class"] == "NXprocess"
        for key, value in CORRECTIONS.items():
            stored = process[key][()]
            assert (stored.decode() if isinstance(stored, bytes) else list(np.atleast_1d(stored))
                    ) == (value if isinstance(value, str) else list(np.atleast_1d(value))), key
            assert {"description", "units"} <= set(process[key].attrs)
        assert process["phase_ramp"].attrs["units"] == "rad/pixel"
        result_1 = f["entry_1/result_1"]
        assert result_1["support_size"][()] == 1851 and result_1["support_components"][()] == 1
        np.testing.assert_array_equal(result_1["support_bbox"][()], SUMMARY["bbox"])
    # parts missing (the post-processing may leave some out): the others are written
    path = _saved(tmp_path, out, "part.h5", corrections={"orientation": "as found"},
                  support_summary={"size": 3})
    with h5py.File(path, "r") as f:
        assert set(f["entry_1/image_1/process_2"]) == {"program", "note", "orientation"}
        assert "support_size" in f["entry_1/result_1"]
        assert "support_bbox" not in f["entry_1/result_1"]
    bare = {k: v for k, v in out.items() if k not in ("corrections", "support_summary")}
    with h5py.File(_saved(tmp_path, bare, "bare.h5"), "r") as f:
        assert "process_2" not in f["entry_1/image_1"]
        assert "support_size" not in f["entry_1/result_1"]


def test_3d_pictures_slice_through_the_centre_of_mass_and_hide_blank_phase(tmp_path, result):
    # issue 32: a 3D result showed one plane of the amplitude and one of the phase
    from prnf_core.results import PHASE_SHOWN, slice_planes
    runner, out = result
    obj = np.zeros((12, 10, 14), np.complex64)
    obj[7:10, 2:5, 9:12] = 2 * np.exp(0.5j)               # centre of mass (8, 3, 10)
    obj[7, 2, 9] = 0.1                                    # below 10% of the peak: no phase
    assert [(name, index) for name, index, _ in slice_planes(obj)] == [("z", 8), ("y", 3),
                                                                         ("x", 10)]
    assert slice_planes(np.zeros((4, 4, 4)))[0][1] == 2   # empty: the array centre
    volume = dict(out, sample_ret=obj, support=np.abs(obj) > 0)
    for key in ("input_amp", "diffraction_amp", "input_mask"):
        volume[key] = np.stack([out[key]] * 4)
    fig = runner.plot_result(volume, tmp_path / "r.png")
    titles = {ax.get_title(): ax for ax in fig.axes}
    for name, index in (("z", 8), ("y", 3), ("x", 10)):
        amplitude = titles[f"object |o| at {name} = {index} (centre of mass)"]
        phase = next(ax for title, ax in titles.items() if title.startswith(f"phase at {name} = {index},"))
        np.testing.assert_allclose(amplitude.images[0].get_array(),
                                   np.abs(np.take(obj, index, axis="zyx".index(name))))
        shown = np.ma.filled(phase.images[0].get_array().astype(float), np.nan)
        plane = np.take(obj, index, axis="zyx".index(name))
        np.testing.assert_allclose(shown[np.abs(plane) > PHASE_SHOWN * 2], 0.5, rtol=1e-6)
        assert np.isnan(shown[np.abs(plane) <= PHASE_SHOWN * 2]).all()
        assert amplitude.get_xlabel() and amplitude.get_ylabel()
    assert titles["phase at z = 8, where |o| > 10% of its peak (grey: not shown)"]
    colour_bars = [ax for ax in fig.axes if ax.get_ylabel() in ("phase (rad)",
                                                                 "|o| (data amplitude units)")]
    assert len(colour_bars) == 6
    for word in ("model", "eCon", "eMod", "PRTF"):
        assert word in " ".join(titles)
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _filters_used(path):
    import h5py
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: found.__setitem__(name, item.compression)
                     if isinstance(item, h5py.Dataset) and item.size > 4096 else None)
    return found


def test_auto_compression_gzips_only_what_compresses(tmp_path):
    # gzip of every dataset took 51% of a 20-iteration run at 256^3 (issue 31): float volumes
    # compressed 1.1x, the support, mask and PRTF 13-400x (benchmarks/bench_save.py)
    from prnf_core.results import compresses
    rng = np.random.default_rng(0)
    noise = rng.random((64, 64, 8)).astype(np.float32)
    assert not compresses(noise) and compresses(np.zeros((64, 64, 8), np.float32))
    sparse = np.zeros((64, 64, 8), np.complex64)
    sparse[20:30, 20:30] = 1 + 1j
    assert compresses(sparse)
    out = _phased(tmp_path, shape=(96, 96))
    save_h5(out, tmp_path / "auto.h5")
    used = _filters_used(tmp_path / "auto.h5")
    assert used["entry_1/image_1/mask"] == "gzip"            # the support: mostly zeros
    assert used["entry_1/result_1/model_amplitude"] is None   # floats of every value
    save_h5(out, tmp_path / "gzip.h5", compression="gzip")
    assert set(_filters_used(tmp_path / "gzip.h5").values()) == {"gzip"}


@pytest.mark.parametrize("compression", ["zstd", "blosc2", "none"])
def test_other_compressions_round_trip(tmp_path, compression):
    import h5py
    import hdf5plugin  # noqa: F401  (readers of zstd and blosc2 need it)
    out = _phased(tmp_path, shape=(96, 96))
    save_h5(out, tmp_path / "r.h5", compression=compression)
    with h5py.File(tmp_path / "r.h5", "r") as f:
        np.testing.assert_array_equal(f["entry_1/image_1/data"][()], out["sample_ret"])


def test_an_unknown_compression_is_refused(tmp_path):
    from prnf_core import ConfigError
    with pytest.raises(ConfigError, match="compression 'lz4': give one of auto, gzip"):
        save_h5({}, tmp_path / "r.h5", compression="lz4")
    assert not (tmp_path / "r.h5").exists()


def _phased(tmp_path, shape):
    pattern, mask, _ = write_pattern(tmp_path, shape=shape, radius=8, photons=1e6)
    inp = phmodel.pInput(config(pattern, mask))
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(20, 200).after(inp)),
                    progress=False)
    return runner.run(1, seed=2)
