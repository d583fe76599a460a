"""The phase2d/phase3d project workflow: create, configure, run (1 and 2 processes), read."""
import configparser
import os
import re
import shlex
import subprocess

import h5py
import numpy as np
import pytest

from prnf_core import ConfigError, hookimpl, phase2d, phase3d
from prnf_core.cli import main
from prnf_core.project import Project, parse_schedule
from prnf_core.simulate import simulate_pattern

from test_mpi import needs_mpi


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONPATH", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    phase2d._workflow.current = phase3d._workflow.current = None


@pytest.fixture
def data(tmp_path):
    intensity, mask, _ = simulate_pattern((48, 48), 4, photons=1e7, beamstop=1, gap=0, seed=2)
    np.save(tmp_path / "pattern.npy", intensity)
    np.save(tmp_path / "mask.npy", mask)
    return str(tmp_path / "pattern.npy"), str(tmp_path / "mask.npy")


SMALL = {"phasing|iters": "30RAAR 20DM 20ERA", "phasing|repeats": 2,
         "phasing_parameters|support_size": 70, "input|outer_mask": 30}


def test_new_config_run_read_2d(tmp_path, data):
    folder = phase2d.new_project(*data, path=str(tmp_path), name="p2")
    assert folder == str(tmp_path / "p2")
    cfg = configparser.ConfigParser()
    cfg.read(tmp_path / "p2" / "config.ini")
    assert cfg["input"]["shape"] == "48,48" and cfg["phasing"]["iters"] == "100RAAR 200DM 200ERA"
    assert cfg["phasing_parameters"]["support_size"] == "200"
    phase2d.config_project(SMALL)
    result = phase2d.run_project(num_proc=1)
    with h5py.File(result) as f:
        assert f["sample_retrieved"].shape == (64, 64)          # padded to a power of 2
        assert f["modulus_error"].shape == (70,) and f.attrs["merged"] == 2
    assert os.path.getsize(tmp_path / "p2" / "result.png") > 10000
    assert os.path.isfile(tmp_path / "p2" / "model.json")
    # a changed schedule makes the old checkpoint stale: the rerun starts afresh, not refuses
    phase2d.config_project({"phasing|iters": "30HIO 10ERA"})
    with h5py.File(phase2d.run_project(num_proc=1)) as f:
        assert f["modulus_error"].shape == (40,)


@needs_mpi
def test_run_on_two_processes(tmp_path, data):
    phase2d.new_project(*data, path=str(tmp_path), name="mp")
    phase2d.config_project(SMALL)
    with h5py.File(phase2d.run_project(num_proc=2)) as f:
        assert f.attrs["ranks"] == 2 and f.attrs["merged"] == 4


def test_every_key_reaches_the_network(tmp_path, data):
    np.save(tmp_path / "start.npy", np.ones((64, 64)))
    phase2d.new_project(*data, path=str(tmp_path), name="keys")
    phase2d.config_project({
        "input|inner_mask": 3, "input|outer_mask": 20, "input|outer_outer_mask": 26,
        "input|mask_edges": True, "input|subtract_percentile": 10, "input|spherical_support": 12,
        "input|init_model": str(tmp_path / "start.npy"), "phasing|iters": "5HIO 6RAAR 7HPR 8ERA",
        "phasing_parameters|support_size": 77, "phasing_parameters|beta": 0.7,
        "phasing_parameters|gamma": 0.6, "phasing_parameters|background": False})
    (inp,), out = Project(tmp_path / "keys", 2).network()
    c = inp.params["config_dict"]
    assert np.load(c["pattern_path"]).shape == (64, 64) and c["center"] == [32, 32]
    assert np.load(c["mask_path"])[0, 0] == 1                   # padding floats
    assert c["center_mask"] == 3 and c["edge_remove"][0] == 20 and c["edge_mask"] == [20, 26]
    assert c["subtract_percentile"] == 10 and c["fixed_support_r"] == 12
    assert c["initial_model"] == str(tmp_path / "start.npy") and c["background"] is False
    chain, node = [], out.fathers[0]
    while node.kind == "algorithm":
        chain.append((type(node).__name__, node.params))
        node = node.fathers[0]
    chain.reverse()
    assert [(name, p["iteration"], p["support_size"]) for name, p in chain] == [
        ("HIO", 5, 77), ("RAAR", 6, 77), ("HPR", 7, 77), ("ERA", 8, 77)]
    assert chain[0][1]["gamma"] == 0.6 and chain[1][1]["beta"] == 0.7 and chain[2][1]["gamma"] == 0.6
    # the preparation steps, as pInput's keys (issue 32)
    phase2d.config_project({"input|photon_threshold": 2, "input|bin": "1,2",
                            "input|fft_size": "crop"})
    (inp,), _ = Project(tmp_path / "keys", 2).network()
    c = inp.params["config_dict"]
    assert c["photon_threshold"] == 2 and c["bin"] == [1, 2] and c["fft_size"] == "crop"
    with pytest.raises(ConfigError, match=re.escape("input|bin='two'")):
        phase2d.config_project({"input|bin": "two"})
    phase2d.config_project({"input|mask_edges": False, "input|padd_to_pow2": False})
    (inp,), _ = Project(tmp_path / "keys", 2).network()
    assert inp.params["config_dict"]["edge_mask"] is None
    assert np.load(inp.params["config_dict"]["pattern_path"]).shape == (48, 48)


def test_schedule_grammar_and_errors(tmp_path, data):
    assert parse_schedule("100RAAR 200DM 200ERA") == [(100, "RAAR"), (200, "DM"), (200, "ERA")]
    with pytest.raises(ConfigError, match="<iterations><ALGORITHM>"):
        parse_schedule("RAAR100")
    phase2d.new_project(*data, path=str(tmp_path), name="bad")
    with pytest.raises(ConfigError, match=r"unknown algorithm 'HOI'; installed: DM, ERA"):
        phase2d.config_project({"phasing|iters": "10HOI"})
    with pytest.raises(ConfigError, match="unknown project key 'phasing|voxel_number'"):
        phase2d.config_project({"phasing|voxel_number": 3})


def test_plugin_algorithms_work_in_schedules(tmp_path, data):
    pytest.importorskip("prnf_rrr")
    phase2d.new_project(*data, path=str(tmp_path), name="plug")
    phase2d.config_project({"phasing|iters": "10RRR 5ERA"})
    _, out = Project(tmp_path / "plug", 2).network()
    assert type(out.fathers[0].fathers[0]).__name__ == "RRR"


def test_cluster_writes_a_slurm_script_and_runs_nothing(tmp_path, data):
    phase2d.new_project(*data, path=str(tmp_path), name="hpc")
    phase2d.config_project(SMALL)
    script = phase2d.run_project(num_proc=4, cluster=True)
    text = open(script).read()
    assert text.startswith("#!/bin/bash") and "#SBATCH --ntasks=4" in text
    assert "srun --mpi=pmi2 -n 4" in text and "prnf_core.cli run" in text and "--repeat 2" in text
    assert not (tmp_path / "hpc" / "result.h5").exists()


def test_nohup_returns_at_once_and_logs(tmp_path, data):
    phase2d.new_project(*data, path=str(tmp_path), name="bg")
    phase2d.config_project(SMALL)
    proc = phase2d.run_project(nohup=True)
    assert proc.wait(timeout=300) == 0
    assert (tmp_path / "bg" / "result.h5").exists() and (tmp_path / "bg" / "run.log").exists()


def test_use_project_and_3d_with_bin_data(tmp_path):
    intensity, mask, _ = simulate_pattern((16, 16, 16), 3, photons=0, beamstop=0, gap=0)
    intensity.astype("<f8").tofile(tmp_path / "volume.bin")
    folder = phase3d.new_project(str(tmp_path / "volume.bin"), path=str(tmp_path), name="vol")
    phase3d.config_project({"input|shape": "16,16,16", "phasing|iters": "10DM 5ERA",
                            "phasing|repeats": 1, "phasing_parameters|voxel_number": 40})
    phase3d._workflow.current = None
    assert phase3d.use_project(folder) == folder
    with pytest.raises(ConfigError, match="3D project; use phase3d"):
        phase2d.use_project(folder)
    with h5py.File(phase3d.run_project()) as f:
        assert f["sample_retrieved"].shape == (16, 16, 16)


def test_shell_commands(tmp_path, data, capsys):
    assert main(["project", "new", data[0], "--mask", data[1], "--path", str(tmp_path), "--name", "sh"]) == 0
    assert main(["project", "config", "phasing|iters=20HIO 10ERA", "phasing|repeats=1",
                 "phasing_parameters|support_size=70"]) == 0
    assert main(["project", "run", "--cluster"]) == 0
    assert (tmp_path / "sh" / "job.slurm").exists()
    assert main(["project", "use", str(tmp_path / "sh")]) == 0
    assert "current project" in capsys.readouterr().out


def test_config_is_validated_before_it_is_written_and_keeps_comments(tmp_path, data):
    # a rejected value was written first, and input|shape=abc broke every later command
    folder = phase2d.new_project(*data, path=str(tmp_path), name="c")
    ini = tmp_path / "c" / "config.ini"
    ini.write_text("# my beam time, run 42\n" + ini.read_text().replace(
        "[phasing]", "[phasing]\n# schedule tried on 2 Dec"))
    before = ini.read_text()
    for bad, words in (({"input|shape": "abc"}, r"input\|shape='abc': give sizes"),
                       ({"phasing|iters": "10HOI"}, "unknown algorithm 'HOI'")):
        with pytest.raises(ConfigError, match=words):
            phase2d.config_project(bad)
        assert ini.read_text() == before
    phase2d.config_project({"phasing|iters": "20HIO 10ERA", "phasing|repeats": 1})
    text = ini.read_text()
    assert "# my beam time, run 42" in text and "# schedule tried on 2 Dec" in text
    assert Project(folder, 2).settings()["phasing|iters"] == "20HIO 10ERA"
    assert main(["project", "config", "phasing_parameters|support_size=70"]) == 0


@pytest.mark.parametrize("name", ["odd name $(touch pwned)", "two\nlines"])
def test_job_scripts_quote_every_path(tmp_path, data, name):
    # a newline in the project path was written unquoted into job.slurm and ran as a shell line
    folder = phase2d.new_project(*data, path=str(tmp_path), name=name)
    phase2d.config_project(SMALL)
    if "\n" in name:
        with pytest.raises(ConfigError, match="holds a line break"):
            phase2d.run_project(num_proc=2, cluster=True)
        return
    text = open(phase2d.run_project(num_proc=2, cluster=True)).read()
    chdir = next(ln for ln in text.splitlines() if ln.startswith("#SBATCH --chdir="))
    assert shlex.split(chdir.split("=", 1)[1]) == [folder]
    subprocess.run(["bash", "-n", os.path.join(folder, "job.slurm")], check=True)
    command = text.splitlines()[-1]
    assert os.path.join(folder, "model.json") in shlex.split(command)


def test_a_seeded_project_reproduces_and_outer_mask_follows_the_pattern(tmp_path, data):
    # two identical invocations gave 7/10 and 9/10 recoveries: no seed reached the run
    folder = phase2d.new_project(*data, path=str(tmp_path), name="seeded")
    phase2d.config_project({**SMALL, "phasing|seed": 7})
    assert Project(folder, 2).command(1)[-2:] == ["--seed", "7"]
    with pytest.raises(ConfigError, match=r"phasing\|seed='x'"):
        phase2d.config_project({"phasing|seed": "x"})
    results = []
    for _ in range(2):
        with h5py.File(phase2d.run_project()) as f:
            results.append(f["sample_retrieved"][()])
        for name in os.listdir(folder):
            if name.startswith("checkpoint"):
                os.remove(os.path.join(folder, name))
    np.testing.assert_array_equal(results[0], results[1])
    # the default outer_mask is the edge of the data (48 -> padded 64: radius 32), not 64
    phase2d.new_project(*data, path=str(tmp_path), name="edge")
    cfg = Project(tmp_path / "edge", 2).input_config()
    assert cfg["edge_remove"][0] == 32


def test_a_plugins_declared_parameter_is_a_project_key(tmp_path, data, monkeypatch):
    """Every Param an installed algorithm declares is a phasing_parameters key: a required
    one (which the network asks for by that key) can be set, an optional one too."""
    from prnf_core import plugins
    from prnf_core.params import Param
    from prnf_algorithms.sdk import ProjectionAlgorithm

    class Damped(ProjectionAlgorithm):
        """HIO with a declared, required damping."""
        algorithm = "DAMPED"
        parameters = (Param("damping", low=0.0, high=1.0, doc="feedback"),
                      Param("extra", 2, kind="int", low=0))

        def coefficients(self, view):
            return 1.0, 0.0, 1.0, -self.values["damping"]

    class Plugin:
        @hookimpl
        def prnf_register_algorithms(self):
            return [Damped]

    pm = plugins.get_plugin_manager(autoload=True)
    pm.register(Plugin(), name="damped")
    monkeypatch.setattr(plugins, "get_registry", lambda: plugins.Registry(pm))
    phase2d.new_project(*data, path=str(tmp_path), name="p")
    with pytest.raises(ConfigError, match=r"DAMPED needs 'damping'.*set phasing_parameters\|damping"):
        phase2d.config_project({"phasing|iters": "10DAMPED 5ERA"})
    assert main(["project", "config", "phasing|iters=10DAMPED 5ERA",
                 "phasing_parameters|damping=0.3", "phasing_parameters|extra=4"]) == 0
    _, out = Project(tmp_path / "p", 2).network()
    node = out.fathers[0].fathers[0]
    assert type(node).__name__ == "Damped" and node.values["damping"] == 0.3
    assert node.values["extra"] == 4
    with pytest.raises(ConfigError, match=r"damping=1.5: give a number in \[0.0, 1.0\]"):
        phase2d.config_project({"phasing_parameters|damping": 1.5})
    with pytest.raises(ConfigError, match="unknown project key 'phasing_parameters|dampng'"):
        phase2d.config_project({"phasing_parameters|dampng": 0.3})
