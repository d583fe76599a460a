"""Input preparation: layout about the centre, masks, radii, percentile, file formats."""
import sys

import h5py
import numpy as np
import pytest
import scipy.io

from prnf_core import ConfigError, DataFileError
from prnf_core.data import INPUT_DEFAULTS, check_config, load_input_arrays, prepare
from prnf_core.io import load_array


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (5, 6, 7)])
def test_center_goes_to_index_zero(shape):
    center = tuple(n // 2 - 1 for n in shape)
    intensity = np.ones(shape)
    intensity[center] = 9.0
    d = prepare(check_config({"center": list(center)}), intensity)
    assert d.amplitude.flat[0] == 3.0
    np.testing.assert_array_equal(d.centred(d.amplitude)[center], 3.0)


def test_default_center_is_half_size_and_odd_sizes_are_exact():
    intensity = np.zeros((123, 123))
    intensity[61, 61] = 4.0
    d = prepare(check_config({}), intensity)
    assert d.center == (61, 61) and d.amplitude[0, 0] == 2.0


def test_masks_and_radii():
    shape = (32, 32)
    mask = np.zeros(shape, np.uint8)
    mask[0, 0] = 1
    cfg = check_config({"center_mask": 2, "edge_mask": [10, 11], "edge_remove": [14, 15]})
    d = prepare(cfg, np.ones(shape), mask)
    bad = d.centred(~d.measured)
    r = np.hypot(*np.ogrid[-16:16, -16:16])
    np.testing.assert_array_equal(bad, (r < 2) | ((r >= 10) & (r <= 11)) | (np.arange(32)[:, None] + np.arange(32) == 0))
    amp = d.centred(d.amplitude)
    assert np.all(amp[(r >= 14) & (r <= 15)] == 0) and amp[16, 16 + 5] == 1


def test_subtract_percentile_is_0_to_100():
    intensity = np.arange(100, dtype=float).reshape(10, 10)
    d = prepare(check_config({"subtract_percentile": 50}), intensity)
    assert d.centred(d.amplitude ** 2).min() == 0 and d.centred(d.amplitude ** 2).max() == pytest.approx(99 - 49.5)


def test_non_finite_and_negative_values_warn_with_counts():
    intensity = np.ones((8, 8))
    intensity[0, :3] = np.nan
    intensity[1, 0] = -2
    with pytest.warns(UserWarning) as caught:
        d = prepare(check_config({}), intensity)
    messages = " ".join(str(w.message) for w in caught)
    assert "3 NaN or infinite pixels" in messages and "1 negative intensities" in messages
    assert np.count_nonzero(~d.measured) == 3 and np.all(np.isfinite(d.amplitude))


def test_every_seed_key_has_a_default():
    seed_keys = {"pattern_path", "mask_path", "center", "center_mask", "edge_mask", "edge_remove",
                 "subtract_percentile", "fixed_support_r", "background", "initial_model"}
    assert seed_keys <= set(INPUT_DEFAULTS)
    with pytest.raises(ConfigError, match=r"unknown input config key\(s\) \['centre'\]"):
        check_config({"centre": [1, 2]})


def test_file_formats(tmp_path):
    a = np.arange(12.0).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    a.astype("<f8").tofile(tmp_path / "a.bin")
    scipy.io.savemat(tmp_path / "a.mat", {"pattern": a})
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["entry/data"] = a
    for path, kw in [("a.npy", {}), ("a.bin", {"shape": (3, 4)}), ("a.mat", {}), ("a.h5:/entry/data", {})]:
        np.testing.assert_array_equal(load_array(str(tmp_path / path), **kw), a)


@pytest.mark.parametrize("make,words", [
    (lambda p: load_array(p / "missing.npy"), "file not found"),
    (lambda p: load_array(p / "a.bin"), "shape is needed"),
    (lambda p: load_array(p / "a.bin", shape=(5, 5)), "holds 12 values"),
    (lambda p: load_array(p / "a.h5"), "holds no 2D or 3D dataset"),
    (lambda p: load_array(p / "a.h5:/nope"), "no dataset '/nope'"),
    (lambda p: load_array(p / "obj.npy"), "pickle"),
    (lambda p: load_array(p / "a.txt"), "unsupported file type"),
])
def test_file_errors(tmp_path, make, words):
    np.arange(12.0).tofile(tmp_path / "a.bin")
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = np.zeros(3)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "a.txt").write_text("1 2 3")
    with pytest.raises(DataFileError, match=words):
        make(tmp_path)


@pytest.mark.parametrize("cfg,pattern,mask,words", [
    ({"center": [40, 3]}, (32, 32), None, r"center=\[40, 3\] lies outside"),
    ({"center_mask": -1}, (32, 32), None, "center_mask=-1"),
    ({"edge_mask": [9, 3]}, (32, 32), None, "inner <= outer"),
    ({"subtract_percentile": 0.0}, (32, 32), None, r"\(0, 100\]"),
    ({}, (32, 32), np.zeros((30, 30)), r"mask shape \(30, 30\) differs"),
    ({}, (32, 32), np.full((32, 32), 2), "not binary"),
    ({}, (32, 32), np.ones((32, 32)), "every pixel is masked"),
    ({"background": "yes"}, (32, 32), None, "background='yes'"),
])
def test_bad_config_values(cfg, pattern, mask, words):
    with pytest.raises(ConfigError, match=words):
        prepare(check_config(cfg), np.ones(pattern), mask)


def test_mat_files_with_several_variables_name_one(tmp_path):
    # the alphabetically first variable was read: a file with 'mask' and 'pattern' phased the mask
    pattern, mask = np.arange(12.0).reshape(3, 4), np.eye(3, 4)
    scipy.io.savemat(tmp_path / "both.mat", {"pattern": pattern, "mask": mask})
    with pytest.raises(DataFileError, match=r"several variables \['mask', 'pattern'\].*both.mat:mask"):
        load_array(str(tmp_path / "both.mat"))
    np.testing.assert_array_equal(load_array(str(tmp_path / "both.mat:pattern")), pattern)
    np.testing.assert_array_equal(load_array(str(tmp_path / "both.mat:mask")), mask)
    with pytest.raises(DataFileError, match=r"no variable 'nope'; it has \['mask', 'pattern'\]"):
        load_array(str(tmp_path / "both.mat:nope"))


def test_mat_v73_files_are_read_as_hdf5(tmp_path):
    # MATLAB v7.3 writes HDF5 with a 512-byte header block, arrays in column-major order
    pattern = np.arange(12.0).reshape(3, 4)
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w", userblock_size=512) as f:
        f["pattern"] = pattern.T
        f.create_group("#refs#")
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Wed Dec  2 2026 HDF5 schema 1.00 .")
    np.testing.assert_array_equal(load_array(str(path)), pattern)
    np.testing.assert_array_equal(load_array(str(path) + ":pattern"), pattern)


def test_detector_files_edf_tiff_and_cxi(tmp_path, monkeypatch):
    import fabio
    import tifffile
    pattern = np.arange(12.0).reshape(3, 4)
    fabio.edfimage.EdfImage(data=pattern.astype(np.float32)).write(str(tmp_path / "p.edf"))
    tifffile.imwrite(tmp_path / "p.tif", pattern.astype(np.float32))
    with h5py.File(tmp_path / "p.cxi", "w") as f:
        f["cxi_version"] = 150
        f["entry_1/data_1/data"] = pattern
        f["entry_1/data_1/mask"] = np.where(np.eye(3, 4), 4, 0)     # CXI: non-zero = bad
    for name in ("p.edf", "p.tif", "p.cxi"):
        np.testing.assert_array_equal(load_array(str(tmp_path / name)), pattern)
    arrays = load_input_arrays(check_config({"pattern_path": str(tmp_path / "p.cxi")}))
    np.testing.assert_array_equal(arrays["mask"], np.eye(3, 4))
    monkeypatch.setitem(sys.modules, "tifffile", None)                 # not installed
    with pytest.raises(DataFileError, match=r"needs the 'tifffile' package: pip install 'prnf\[detectors\]'"):
        load_array(str(tmp_path / "p.tif"))


def test_an_hdf5_file_without_a_dataset_lists_its_images(tmp_path):
    # the example was the file's first dataset: 'ring.h5:/detector_distance', a number
    with h5py.File(tmp_path / "ring.h5", "w") as f:
        f["detector_distance"] = 0.7
        f["entry/data"] = np.zeros((98, 98, 1))
        f["entry/mask"] = np.zeros((98, 98), np.uint8)
        f["wavelength"] = np.zeros(3)
    path = tmp_path / "ring.h5"
    with pytest.raises(DataFileError) as caught:
        load_array(path)
    assert str(caught.value) == (
        f"'{path}' is HDF5: name the dataset, e.g. '{path}:/entry/data'; its 2D and 3D "
        "datasets: /entry/data (98, 98, 1), /entry/mask (98, 98)")
    with h5py.File(tmp_path / "numbers.h5", "w") as f:
        f["detector_distance"] = 0.7
        f["wavelength"] = np.zeros(3)
    with pytest.raises(DataFileError, match=r"holds no 2D or 3D dataset to phase; its "
                       r"datasets: /detector_distance \(\), /wavelength \(3,\)"):
        load_array(tmp_path / "numbers.h5")


def test_singleton_axes_are_dropped_with_a_note(tmp_path, caplog):
    # a (98, 98, 1) frame was refused: "pattern shape (98, 98, 1) is too small"
    intensity = np.ones((12, 12))
    intensity[6, 6] = 9.0
    with h5py.File(tmp_path / "frame.h5", "w") as f:
        f["data"] = intensity[..., None]
    np.save(tmp_path / "mask.npy", np.zeros((1, 12, 12)))
    cfg = check_config({"pattern_path": f"{tmp_path / 'frame.h5'}:/data",
                        "mask_path": str(tmp_path / "mask.npy")})
    a = load_input_arrays(cfg)
    with caplog.at_level("INFO", logger="prnf_core.data"):
        d = prepare(cfg, a["pattern"], a["mask"])
    assert d.shape == (12, 12) and d.amplitude[0, 0] == 3.0
    assert (f"pattern '{tmp_path / 'frame.h5'}:/data' has shape (12, 12, 1): its singleton "
            "axes dropped, read as (12, 12)") in caplog.text
    assert "mask" in caplog.text and "(1, 12, 12)" in caplog.text
    with pytest.raises(ConfigError, match="too small"):     # a 2D pattern stays as given
        prepare(check_config({}), np.ones((12, 1)))


# --- photon_threshold, bin and fft_size (issue 32) ---

def test_photon_threshold_sets_low_intensities_to_measured_zeros():
    intensity = np.arange(64.0).reshape(8, 8)
    d = prepare(check_config({"photon_threshold": 10}), intensity)
    np.testing.assert_allclose(d.centred(d.amplitude ** 2), np.where(intensity < 10, 0, intensity))
    assert d.measured.all()                        # zeros that constrain, not floating pixels
    assert d.preparation == {"photon_threshold": {"threshold": 10.0, "zeroed": 9, "shape": [8, 8]}}
    assert prepare(check_config({}), intensity).preparation == {}


def test_bin_sums_blocks_and_a_block_with_a_bad_pixel_floats():
    rng = np.random.default_rng(0)
    intensity = rng.integers(0, 100, (64, 48)).astype(float)
    mask = np.zeros((64, 48), np.uint8)
    mask[10, 7] = 1
    d = prepare(check_config({"bin": 2}), intensity, mask)
    expected = intensity.reshape(32, 2, 24, 2).sum(axis=(1, 3))
    bad = np.zeros((32, 24), bool)
    bad[5, 3] = True
    assert d.shape == (32, 24) and d.center == (16, 12)
    np.testing.assert_array_equal(d.centred(~d.measured), bad)
    np.testing.assert_allclose(d.centred(d.amplitude ** 2)[~bad], expected[~bad])
    assert d.counts                                  # sums of counts are counts
    assert d.preparation["bin"] == {"factors": [2, 2], "shape_before": [64, 48], "shape": [32, 24],
                                    "center": [16, 12], "first_pixel": [0, 0]}


def test_bin_per_axis_in_3d_lays_an_odd_block_about_the_centre():
    intensity = np.random.default_rng(1).random((8, 10, 12))
    d = prepare(check_config({"bin": [2, 1, 3]}), intensity)     # centre (4, 5, 6)
    # axis 2: the centre's block is pixels 5, 6, 7; whole blocks from pixel 2 to 10
    expected = intensity[:, :, 2:11].reshape(4, 2, 10, 1, 3, 3).sum(axis=(1, 3, 5))
    assert d.shape == (4, 10, 3) and d.center == (2, 5, 1)
    np.testing.assert_allclose(d.centred(d.amplitude ** 2), expected)
    assert d.preparation["bin"]["first_pixel"] == [0, 0, 2]


def _largest_fast_len(n):
    import scipy.fft
    return max(m for m in range(1, n + 1) if scipy.fft.next_fast_len(m) == m)


@pytest.mark.parametrize("shape", [(97, 250), (37, 41, 29)])
def test_fft_size_crop_keeps_the_centre_at_the_middle(shape):
    intensity = np.random.default_rng(2).random(shape)
    d = prepare(check_config({"fft_size": "crop"}), intensity)
    new = tuple(_largest_fast_len(n) for n in shape)
    assert d.shape == new and d.center == tuple(m // 2 for m in new) and d.measured.all()
    window = tuple(slice(n // 2 - m // 2, n // 2 - m // 2 + m) for n, m in zip(shape, new))
    np.testing.assert_allclose(d.centred(d.amplitude ** 2), intensity[window])
    assert d.preparation["fft_size"] == {"mode": "crop", "shape_before": list(shape),
                                         "shape": list(new), "center": [m // 2 for m in new]}


@pytest.mark.parametrize("shape", [(97, 250), (37, 41, 29)])
def test_fft_size_pad_masks_the_padding(shape):
    import scipy.fft
    intensity = np.random.default_rng(3).random(shape) + 1.0
    d = prepare(check_config({"fft_size": "pad"}), intensity)
    new = tuple(scipy.fft.next_fast_len(n) for n in shape)
    assert d.shape == new and d.center == tuple(m // 2 for m in new)
    window = tuple(slice(m // 2 - n // 2, m // 2 - n // 2 + n) for n, m in zip(shape, new))
    inside = np.zeros(new, bool)
    inside[window] = True
    np.testing.assert_array_equal(d.centred(d.measured), inside)     # padding floats
    np.testing.assert_allclose(d.centred(d.amplitude ** 2)[window], intensity)


def test_the_initial_model_and_support_follow_the_reshaping():
    obj = np.zeros((62, 62), complex)
    obj[27:35, 29:33] = 1.0 + 0.5j
    intensity = np.fft.fftshift(np.abs(np.fft.fftn(np.fft.ifftshift(obj))) ** 2)
    support = (np.abs(obj) > 0).astype(np.uint8)
    for cfg, tol in (({"fft_size": "crop"}, 1e-9), ({"fft_size": "pad"}, 1e-9), ({"bin": 2}, 0.2)):
        d = prepare(check_config(cfg), intensity, None, obj, support)
        assert d.initial_model.shape == d.start_support.shape == d.shape != (62, 62)
        model = np.abs(np.fft.fftn(np.fft.ifftshift(d.initial_model)))
        err = np.linalg.norm((model - d.amplitude)[d.measured]) / np.linalg.norm(d.amplitude)
        # exact for crop and pad (the model's spectrum is cropped or padded as the data);
        # binning sums intensities over blocks, which no one object's spectrum samples exactly
        # (measured 0.12 here; 0.5 if the model were not scaled by sqrt(4) as the sums are)
        assert err < tol, (cfg, err)
    # crop and pad resample the support to the new real-space pixel size
    for mode, size in (("crop", 60), ("pad", 64)):
        d = prepare(check_config({"fft_size": mode}), intensity, None, None, support)
        expected = 32 * (size / 62) ** 2
        assert abs(np.count_nonzero(d.start_support) - expected) <= 0.25 * expected, mode
    # binning keeps the pixel size and halves the field of view: the support is cropped
    # about its centre (62 // 2 = 31 goes to 31 // 2 = 15)
    d = prepare(check_config({"bin": 2}), intensity, None, None, support)
    np.testing.assert_array_equal(d.start_support, support[16:47, 16:47].astype(bool))


def test_each_step_logs_one_line(caplog):
    intensity = np.ones((64, 62))
    with caplog.at_level("INFO", logger="prnf_core.data"):
        prepare(check_config({"photon_threshold": 0.5, "bin": 2, "fft_size": "crop"}), intensity)
    steps = ["photon_threshold 0.5: 0 measured pixels below it set to 0",
             "binned 2x2: 64x62 -> 32x31, centre (16, 15)",
             "cropped to FFT-friendly 32x31 -> 32x30, centre (16, 15) -> (16, 15)"]
    assert [r.getMessage() for r in caplog.records if r.getMessage() in steps] == steps


@pytest.mark.parametrize("cfg,words", [
    ({"photon_threshold": -1}, r"photon_threshold=-1: give an intensity >= 0"),
    ({"photon_threshold": "2"}, r"photon_threshold='2': give an intensity"),
    ({"photon_threshold": float("nan")}, r"photon_threshold=nan"),
    ({"bin": 0}, r"bin=0: give an integer >= 1 for every axis or one per axis, e.g. 2 or \[2, 2\]"),
    ({"bin": 2.5}, r"bin=2.5: give an integer"),
    ({"bin": True}, r"bin=True: give an integer"),
    ({"bin": [2, 0]}, r"bin=\[2, 0\]: give an integer"),
    ({"bin": []}, r"bin=\[\]: give an integer"),
    ({"fft_size": "fast"}, r"fft_size='fast': give one of \['crop', 'pad'\]"),
    ({"fft_size": True}, r"fft_size=True: give one of"),
])
def test_bad_preparation_values_are_refused_by_check_config(cfg, words):
    with pytest.raises(ConfigError, match=words):
        check_config(cfg)


@pytest.mark.parametrize("cfg,words", [
    ({"bin": [2, 2, 2]}, r"bin=\[2, 2, 2\] has 3 factors for a pattern of 2 axes \(32, 32\): give "
                         "one per axis"),
    ({"bin": 9}, r"bin=9 leaves fewer than 4 pixels on an axis of the pattern \(32, 32\): give a "
                 "smaller bin"),
    ({"bin": 4, "center": [0, 16]}, r"the centre \(0, 16\) is too near the edge of the pattern \(32, 32\) for a whole 4-pixel block"),
    ({"photon_threshold": 5}, r"no measured pixel has a positive intensity \(after the pattern "
                              r"itself, photon_threshold=5"),
])
def test_bad_preparation_values_for_the_pattern_are_refused(cfg, words):
    with pytest.raises(ConfigError, match=words):
        prepare(check_config(cfg), np.ones((32, 32)))


def test_a_binned_pattern_phases_the_simulated_object(tmp_path):
    """96 x 96, radius 4, bin 2 -> 48 x 48 (oversampling 6): ERA on the true support (given
    at the pattern's shape, so it must follow the binning) recovers the object as well as on
    a 48 x 48 pattern sampled directly. Measured object errors (scale fitted) over seeds
    1-8: 0.13-0.26 (seed 1: 0.13); unbinned 48 x 48, seeds 1-2: 0.12, 0.20; the support
    filled uniformly: 0.62."""
    from scipy import ndimage
    from prnf_core import Runner, phmodel
    from prnf_core.simulate import object_nrmse, simulate_pattern
    intensity, _, obj = simulate_pattern((96, 96), 4, photons=0, beamstop=0, gap=0, seed=3)
    support = ndimage.binary_dilation(obj > 0, iterations=1)
    np.save(tmp_path / "p.npy", intensity)
    np.save(tmp_path / "s.npy", support.astype(np.uint8))
    inp = phmodel.pInput({"pattern_path": str(tmp_path / "p.npy"), "background": False, "bin": 2,
                          "support_path": str(tmp_path / "s.npy"), "support_mode": "fixed"})
    era = phmodel.ERA(200, int(support.sum()), positivity=True).after(inp)
    out = Runner([inp], phmodel.pOutput().after(era)).run(3, seed=1)
    assert out["sample_ret"].shape == (48, 48)
    assert inp.prepared().preparation["bin"]["shape"] == [48, 48]
    assert object_nrmse(out["sample_ret"], obj[24:72, 24:72]) < 0.3
