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
        np.testing.assert_array_equal(f["entry_1/data_1/data"][()], out["sample_ret"])
        process = f["entry_1/image_1/process_1"]
        assert process["program"][()] == b"PRNF"
        assert json.loads(process["configuration"][()])["format"] == "prnf-model"
        assert f["entry_1/process_1/command"][()]
        described = []
        f["entry_1"].visititems(lambda name, obj: described.append(
            isinstance(obj, h5py.Group) or name.endswith(("program", "version", "command",
                                                          "configuration", "seed", "data_type",
                                                          "data_space", "is_fft_shifted",
                                                          "program_name"))
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
