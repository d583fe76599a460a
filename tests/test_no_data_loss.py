"""No output replaces an input or another output: the same path, or one file through a link,
is refused before any work with one line naming both (they once ended with exit status 0
and the user's data gone)."""
import os

import h5py
import numpy as np
import pytest

from prnf_core import Runner, phmodel
from prnf_core.cli import main

from helpers import config, write_pattern


@pytest.fixture
def files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pattern, mask, _ = write_pattern(tmp_path)
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["data"] = np.load(pattern)
    os.symlink(mask, tmp_path / "mask-link.npy")
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.ERA(2, 20).after(inp))).dump_model("m.json")
    return tmp_path


def contents(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


PHASE = ["phase", "pattern.npy", "--mask", "mask.npy", "--iterations", "2", "--repeat", "1", "-q"]
CASES = {
    "--out is the HDF5 pattern": (["phase", "in.h5:/data", "--out", "in.h5", "-q"], "--out 'in.h5'", "pattern"),
    "--out is the .npy pattern": (PHASE + ["--out", "pattern.npy"], "--out 'pattern.npy'", "pattern"),
    "--plot is the mask through a link": (PHASE + ["--plot", "mask-link.npy"], "--plot 'mask-link.npy'", "--mask 'mask.npy'"),
    "--dump-model is --out": (PHASE + ["--out", "r.h5", "--dump-model", "r.h5"], "--dump-model 'r.h5'", "--out 'r.h5'"),
    "--checkpoint is --out": (PHASE + ["--out", "r.h5", "--checkpoint", "./r.h5"], "--checkpoint './r.h5'", "--out 'r.h5'"),
    "--plot is --out": (PHASE + ["--out", "r.h5", "--plot", "r.h5"], "--plot 'r.h5'", "--out 'r.h5'"),
    "--support is --out": (["phase", "pattern.npy", "--support", "in.h5", "--out", "in.h5"], "--out 'in.h5'", "--support"),
    "run: --out is the model file": (["run", "m.json", "-q", "--out", "m.json"], "--out 'm.json'", "model file"),
    "run: --plot is the model's pattern": (["run", "m.json", "-q", "--plot", "pattern.npy"], "--plot 'pattern.npy'", "pattern_path of input"),
    "run: --checkpoint is a --data mask": (["run", "m.json", "-q", "--data", "pattern.npy,mask-link.npy",
                                            "--checkpoint", "mask.npy"], "--checkpoint 'mask.npy'", "mask_path"),
    "demo: --out is its own pattern": (["demo", "-q", "--keep-data", "--out", "demo_pattern.npy", "--repeat", "1"], "--out", "demo's pattern"),
    "simulate: --mask is --out": (["simulate", "--out", "s.npy", "--mask", "s.npy"], "--mask 's.npy'", "--out 's.npy'"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_an_output_naming_an_input_or_another_output_is_refused(files, capsys, case):
    argv, first, second = CASES[case]
    before = contents(files)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and first in err and second in err, err
    assert contents(files) == before            # not a byte changed, nothing written


def test_distinct_paths_still_run(files, capsys):
    assert main(PHASE + ["--out", "r.h5", "--plot", "r.png", "--dump-model", "d.json",
                         "--checkpoint", "ck.h5"]) == 0
    assert all((files / name).exists() for name in ("r.h5", "r.png", "d.json", "ck.h5"))


def test_project_data_inside_the_files_the_project_rewrites_is_refused(files, monkeypatch):
    # `project new p/input/pattern.npy --path . --name p` then `project config`: the padded
    # copy replaced the user's only pattern
    from prnf_core import ConfigError, phase2d
    monkeypatch.setenv("PRNF_CACHE_DIR", str(files / "cache"))
    (files / "p" / "input").mkdir(parents=True)
    data = files / "p" / "input" / "pattern.npy"
    data.write_bytes((files / "pattern.npy").read_bytes())
    with pytest.raises(ConfigError, match="project's own file 'input/pattern.npy'"):
        phase2d.new_project(str(data), path=str(files), name="p")
    assert not (files / "p" / "config.ini").exists()


def test_a_full_disk_keeps_the_projects_input_files_whole(files, monkeypatch):
    # `prnf project config` on a full disk left a half-written input/pattern.npy
    from prnf_core import fileutil
    original = np.arange(16.0)
    fileutil.save_npy(files / "keep.npy", original)
    real_save = np.save
    def full_disk(f, array, *a, **kw):
        f.write(b"\x93NUMPY half")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(np, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        fileutil.save_npy(files / "keep.npy", np.zeros(16))
    monkeypatch.setattr(np, "save", real_save)
    np.testing.assert_array_equal(np.load(files / "keep.npy"), original)
    assert not [p for p in os.listdir(files) if p.startswith(".tmp-")]
