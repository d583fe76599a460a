"""VTK export (issue 32): the object's amplitude, phase and support round-trip through a
.vti file, read back with NumPy and with VTK's own reader (pyevtk writes, it does not read)."""
import re
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

from prnf_core.errors import PRNFError
from prnf_core.export import write_vti

from helpers import write_pattern

pytest.importorskip("pyevtk", reason="pip install 'prnf[vtk]'")

VTK_TYPES = {"Float32": "<f4", "Float64": "<f8", "Int32": "<i4", "Int64": "<i8", "UInt8": "u1"}


def read_vti(path):
    """``({name: array in NumPy's (z, y, x) order}, spacing, origin)`` of an uncompressed
    .vti file with raw appended data, as pyevtk writes it (VTK's x fastest)."""
    raw = open(path, "rb").read()
    start = raw.index(b"<AppendedData")
    start = raw.index(b"_", start) + 1                 # the data follow the underscore
    root = ET.fromstring(raw[:raw.index(b"<AppendedData")] + b"</VTKFile>")   # the XML part
    assert root.get("byte_order") == "LittleEndian" and root.get("header_type") == "UInt64"
    image = root.find("ImageData")
    lo_hi = [int(v) for v in image.get("WholeExtent").split()]
    counts = [lo_hi[2 * k + 1] - lo_hi[2 * k] + 1 for k in range(3)]      # x, y, z
    arrays = {}
    for array in image.iter("DataArray"):
        at = start + int(array.get("offset"))
        nbytes = int(np.frombuffer(raw, "<u8", 1, at)[0])
        values = np.frombuffer(raw, VTK_TYPES[array.get("type")], offset=at + 8,
                               count=nbytes // np.dtype(VTK_TYPES[array.get("type")]).itemsize)
        arrays[array.get("Name")] = values.reshape(counts[::-1])        # z, y, x
    floats = lambda key: [float(v) for v in image.get(key).split()]
    return arrays, floats("Spacing"), floats("Origin")


def _out(shape, seed=0, **extra):
    rng = np.random.default_rng(seed)
    obj = (rng.random(shape) * np.exp(1j * rng.uniform(-np.pi, np.pi, shape))).astype(np.complex64)
    return {"sample_ret": obj, "support": (rng.random(shape) > 0.5).astype(np.float32), **extra}


def test_a_3d_object_round_trips_with_its_voxel_spacing(tmp_path):
    geometry = {"wavelength": 1.5e-10, "distance": 0.7, "pixel_size": 75e-6}
    out = _out((5, 6, 7), geometry=geometry)
    assert write_vti(out, tmp_path / "o.vti") == str(tmp_path / "o.vti")
    arrays, spacing, origin = read_vti(tmp_path / "o.vti")
    obj = out["sample_ret"]
    np.testing.assert_array_equal(arrays["amplitude"], np.abs(obj))
    np.testing.assert_array_equal(arrays["phase"], np.angle(obj))
    np.testing.assert_array_equal(arrays["support"], out["support"])
    assert arrays["amplitude"].dtype == np.float32
    pixel = [1.5e-10 * 0.7 / (n * 75e-6) for n in obj.shape]         # z, y, x
    np.testing.assert_allclose(spacing, pixel[::-1], rtol=1e-6)        # VTK: x, y, z
    np.testing.assert_allclose(origin, [-(n // 2) * p for n, p in zip(obj.shape, pixel)][::-1],
                               rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["o.vti"]           # no temporary left


def test_a_2d_object_is_one_plane_in_pixels(tmp_path):
    out = _out((6, 9), seed=1)
    write_vti(out, tmp_path / "o.vti")
    arrays, spacing, origin = read_vti(tmp_path / "o.vti")
    np.testing.assert_array_equal(arrays["amplitude"][0], np.abs(out["sample_ret"]))
    np.testing.assert_array_equal(arrays["phase"][0], np.angle(out["sample_ret"]))
    assert spacing == [1.0, 1.0, 1.0] and origin == [-4.0, -3.0, 0.0]


def test_a_missing_library_or_a_wrong_suffix_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(PRNFError, match=r"give a path ending in \.vti"):
        write_vti(_out((4, 4)), tmp_path / "o.vtk")
    monkeypatch.setitem(sys.modules, "pyevtk", None)                  # as if not installed
    with pytest.raises(PRNFError, match=re.escape("pip install 'prnf[vtk]'")):
        write_vti(_out((4, 4)), tmp_path / "o.vti")
    assert list(tmp_path.iterdir()) == []


def test_phase_writes_vtk_through_the_output_checks(tmp_path, capsys, monkeypatch):
    from prnf_core.cli import main
    write_pattern(tmp_path, photons=1e7, beamstop=2)
    monkeypatch.chdir(tmp_path)
    quick = ["-q", "--repeat", "1", "--iterations", "20", "--keep-best", "all", "--seed", "1"]
    assert main(["phase", "pattern.npy", "--mask", "mask.npy", *quick, "--out", "r.h5",
                 "--vtk", "r.vti"]) == 0
    assert "wrote r.h5 and r.vti" in capsys.readouterr().out
    arrays, _, _ = read_vti("r.vti")
    with h5py.File("r.h5") as f:
        obj = f["sample_retrieved"][()]
    np.testing.assert_allclose(arrays["amplitude"][0], np.abs(obj))
    np.testing.assert_allclose(arrays["phase"][0], np.angle(obj))
    # the output checks: not onto an input (here through a hard link), nor onto another
    # output, nor a name that is not .vti
    import os
    os.link("pattern.npy", "pattern.vti")
    for out, vtk, words in (("r2.h5", "pattern.vti", "is the same file as the pattern"),
                            ("r2.vti", "r2.vti", "are the same file"),
                            ("r2.h5", "r.vtk", "give a path ending in .vti")):
        assert main(["phase", "pattern.npy", *quick, "--out", out, "--vtk", vtk]) == 1
        assert words in capsys.readouterr().err, vtk
        assert not os.path.exists(out)
    np.testing.assert_array_equal(np.load("pattern.vti", allow_pickle=False),
                                  np.load("pattern.npy"))          # the input untouched
    monkeypatch.setitem(sys.modules, "pyevtk", None)
    assert main(["phase", "pattern.npy", *quick, "--out", "r3.h5", "--vtk", "r3.vti"]) == 1
    assert "pip install 'prnf[vtk]'" in capsys.readouterr().err
    assert not (tmp_path / "r3.h5").exists()                           # refused before the run


def test_vtk_s_own_reader_opens_the_file_as_paraview_would(tmp_path):
    # pyevtk only writes: VTK's XML image reader (what ParaView and napari's VTK readers
    # use) must read the same amplitude, phase, spacing and origin back
    vtk = pytest.importorskip("vtk", reason="VTK's reader: pip install vtk (in the test extra)")
    from vtk.util.numpy_support import vtk_to_numpy
    geometry = {"wavelength": 1.5e-10, "distance": 0.7, "pixel_size": 75e-6}
    out = _out((5, 6, 7), seed=2, geometry=geometry)
    write_vti(out, tmp_path / "o.vti")
    reader = vtk.vtkXMLImageDataReader()
    reader.SetFileName(str(tmp_path / "o.vti"))
    reader.Update()
    image = reader.GetOutput()
    assert image.GetDimensions() == (7, 6, 5)                          # x, y, z
    points = image.GetPointData()
    obj = out["sample_ret"]
    for name, expected in (("amplitude", np.abs(obj)), ("phase", np.angle(obj))):
        read = vtk_to_numpy(points.GetArray(name)).reshape(obj.shape)  # x fastest: C order
        np.testing.assert_array_equal(read, expected)
    pixel = [1.5e-10 * 0.7 / (n * 75e-6) for n in obj.shape]
    np.testing.assert_allclose(image.GetSpacing(), pixel[::-1], rtol=1e-6)
    np.testing.assert_allclose(image.GetOrigin(),
                               [-(n // 2) * p for n, p in zip(obj.shape, pixel)][::-1], rtol=1e-6)
