"""The prnf command end to end on small settings."""
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest

from prnf_core import Runner, phmodel
from prnf_core.cli import main

from prnf_core.simulate import object_nrmse, simulate_pattern

from helpers import config, write_pattern


def test_run_writes_h5_and_png(tmp_path, capsys):
    pattern, mask, _ = write_pattern(tmp_path)
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(20, 40, 0.9).after(inp))).dump_model(tmp_path / "m.json")
    code = main(["run", str(tmp_path / "m.json"), "--repeat", "2", "--seed", "3", "--out",
                 str(tmp_path / "r.h5"), "--plot", str(tmp_path / "r.png"), "--precision", "double"])
    assert code == 0
    captured = capsys.readouterr()
    assert "merged all 2 repeats" in captured.out and "HIO" in captured.err   # progress on stderr
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["sample_retrieved"].dtype == np.complex128
    assert (tmp_path / "r.png").stat().st_size > 10000


def test_errors_exit_nonzero_with_a_message(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.json")]) == 1
    assert "model file not found" in capsys.readouterr().err


def test_plugins_lists_builtins(capsys):
    main(["plugins"])
    out = capsys.readouterr().out
    for name in ("ERA", "HIO", "DM", "RAAR", "HPR"):
        assert name in out
    assert "from prnf" in out and "gamma" in out
    # each algorithm's own parameters under it, the shared options once, the support rules
    assert "HPR(iteration, support_size, gamma, hprcoff=0.5, name=None)" in out
    assert "hprcoff: a number in (0.0, 1.0), default 0.5" in out
    assert out.count("support_threshold: a number in (0.0, 1.0) or None") == 1
    assert ("support rules (support_rule=...): detwin (from prnf), fixed (from prnf), "
            "size (from prnf), threshold (from prnf)") in out


def test_simulate_writes_pattern_and_mask(tmp_path):
    main(["simulate", "--shape", "32,32", "--out", str(tmp_path / "p.npy"), "--mask", str(tmp_path / "m.npy")])
    assert np.load(tmp_path / "p.npy").shape == np.load(tmp_path / "m.npy").shape == (32, 32)


def test_demo_end_to_end(tmp_path):
    # the simulated pattern and mask stayed in the working folder: now in a temporary one,
    # removed at the end
    work, scratch = tmp_path / "work", tmp_path / "tmp"
    work.mkdir()
    scratch.mkdir()
    import os
    proc = subprocess.run([sys.executable, "-m", "prnf_core.cli", "-q", "demo", "--repeat", "2",
                           "--out", "result.h5", "--plot", "result.png"], cwd=work,
                          env={**os.environ, "TMPDIR": str(scratch)},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "error against the known object" in proc.stdout
    # a right result is not called untrusted: its support, 1.2 times the object, measured
    # 1.67 of the data's autocorrelation, which an upper bound of 1.5 called "loose"
    assert "verdict: consistent: 2 of 2 repeats agree" in proc.stdout, proc.stdout
    assert sorted(p.name for p in work.iterdir()) == ["result.h5", "result.png"]
    assert list(scratch.iterdir()) == []
    assert (f"result: {work / 'result.h5'} (picture: {work / 'result.png'}); the simulated "
            "pattern and mask were temporary (--keep-data keeps them beside the result)") in proc.stdout


def test_demo_keeps_its_data_beside_the_result_when_asked(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "-q", "--keep-data", "--out", "demo_pattern.npy"]) == 1
    err = capsys.readouterr().err
    assert "the demo's pattern" in err and "--out 'demo_pattern.npy' are the same file" in err
    (tmp_path / "out").mkdir()
    assert main(["demo", "-q", "--keep-data", "--repeat", "1", "--keep-best", "all",
                 "--out", "out/r.h5", "--plot", ""]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "demo_mask.npy", "demo_pattern.npy", "r.h5"]
    assert ("the simulated pattern and mask are beside it: demo_pattern.npy, demo_mask.npy"
            in capsys.readouterr().out)


def test_phase_needs_only_the_data_and_its_network_reruns(tmp_path, capsys):
    # the pattern's centre is off the array centre; nothing about the object is given
    intensity, mask, obj = simulate_pattern((64, 64), 7, photons=1e7, beamstop=2, gap=1, seed=1)
    np.save(tmp_path / "p.npy", np.roll(intensity, (2, -1), (0, 1)))
    np.save(tmp_path / "m.npy", np.roll(mask, (2, -1), (0, 1)))
    code = main(["phase", str(tmp_path / "p.npy"), "--mask", str(tmp_path / "m.npy"), "-q",
                 "--repeat", "4", "--seed", "1", "--out", str(tmp_path / "r.h5"),
                 "--dump-model", str(tmp_path / "recipe.json")])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ranked by free eMod" in printed and "free eMod, on pixels never fitted" in printed
    with h5py.File(tmp_path / "r.h5") as f:
        assert list(f.attrs["center"]) == [34, 31]            # the centre of symmetry
        assert object_nrmse(f["sample_retrieved"][()], obj) < 0.15
        selection = json.loads(f.attrs["selection"])
        assert selection["repeat_ids"] == [0, 1, 2, 3] and len(selection["errors"]) == 4
        assert f["free_modulus_error"].shape == (selection["kept"],)
    assert main(["run", str(tmp_path / "recipe.json"), "-q", "--repeat", "1", "--seed", "2",
                 "--out", str(tmp_path / "again.h5")]) == 0


def test_phase_help_explains_the_recipe_and_plugins_list_it(capsys):
    with pytest.raises(SystemExit):
        main(["phase", "--help"])
    text = capsys.readouterr().out
    for words in ("centre of symmetry", "loose support", "threshold shrinkwrap", "free pixels",
                  "--dump-model"):
        assert words in text
    main(["plugins"])
    assert "recipe auto:" in capsys.readouterr().out
    assert main(["phase", "x.npy", "--recipe", "nope"]) == 1
    assert "unknown recipe 'nope'; installed: auto" in capsys.readouterr().err


def test_command_line_habits(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("prnf ")
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "(default: result.h5)" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pattern.npy").write_bytes(b"my data")       # simulate once replaced it
    assert main(["simulate", "--shape", "16,16"]) == 1
    assert "pattern.npy exist(s)" in capsys.readouterr().err
    assert (tmp_path / "pattern.npy").read_bytes() == b"my data"
    assert main(["simulate", "--shape", "16,16", "--force"]) == 0


def test_an_option_before_its_subcommand_says_where_it_belongs(capsys):
    # argparse took the option's value for the subcommand: "invalid choice: '2'"
    with pytest.raises(SystemExit) as stop:
        main(["--repeat", "2", "run", "m.json"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice" not in err
    assert ("--repeat is an option of 'prnf run', not of prnf itself: write it after the "
            "subcommand: prnf run --repeat 2 m.json") in err
    with pytest.raises(SystemExit):
        main(["-q", "--seed=3", "--out", "r.h5", "demo"])
    assert ("--seed and --out are options of 'prnf demo', not of prnf itself: write them "
            "after the subcommand: prnf -q demo --seed=3 --out r.h5") in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--keep-best", "2"])
    assert ("--keep-best is an option of 'prnf run', 'prnf phase', 'prnf demo', not of prnf "
            "itself: write it after the subcommand: prnf run --keep-best 2 ...") in capsys.readouterr().err


def test_an_output_in_a_missing_folder_is_refused_naming_it(tmp_path, capsys, monkeypatch):
    # a typo in the folder made the whole path silently; the result looked lost
    monkeypatch.chdir(tmp_path)
    for option, target in (("--out", "p.npy"), ("--mask", "m.npy")):
        assert main(["simulate", "--shape", "16,16", option, f"typo/deeper/{target}"]) == 1
        assert (f"{option} 'typo/deeper/{target}': the folder 'typo/deeper' does not exist; "
                "create it first (mkdir -p typo/deeper)") in capsys.readouterr().err
    assert main(["demo", "--out", "results/r.h5"]) == 1
    assert "the folder 'results' does not exist" in capsys.readouterr().err
    assert not (tmp_path / "typo").exists() and not (tmp_path / "results").exists()


def test_plugins_into_a_closed_pipe_ends_quietly():
    # `prnf plugins | head` once ended in a BrokenPipeError traceback: here the reader is gone
    code = ("import os, sys; r, w = os.pipe(); os.close(r); os.dup2(w, 1); "
            "from prnf_core.cli import main; sys.exit(main(['plugins']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "BrokenPipe" not in proc.stderr, proc.stderr


def test_a_cold_kernel_cache_is_announced(tmp_path, monkeypatch, caplog):
    # the first run was silent for about 50 s while Numba compiled
    from prnf_algorithms import engine
    monkeypatch.setattr(engine, "_announced", False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))       # empty: nothing cached
    with caplog.at_level("INFO", logger="prnf_algorithms.engine"):
        engine.announce_compilation()
        engine.announce_compilation()                          # once per process
    assert caplog.text.count("compiling the kernels (first run only") == 1


def test_a_warm_kernel_cache_is_not_announced(tmp_path, monkeypatch, caplog):
    # "compiling the kernels (first run only)" was said on every run
    import os
    from prnf_algorithms import engine, kernels
    # the index Numba keeps for a cached kernel, named as Numba names it, where it puts it
    # under NUMBA_CACHE_DIR (a folder per source folder: kernels_<hash of its path>)
    name = os.path.basename(kernels.refit_background._cache._cache_file._index_path)
    (tmp_path / "kernels_0123abcd").mkdir()
    (tmp_path / "kernels_0123abcd" / name).write_bytes(b"")
    monkeypatch.setattr(engine, "_announced", False)
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    with caplog.at_level("INFO", logger="prnf_algorithms.engine"):
        engine.announce_compilation()
    assert "compiling the kernels" not in caplog.text


def test_batch_logs_get_one_line_per_repeat():
    from prnf_core.cli import Progress
    import io
    stream = io.StringIO()                                     # not a terminal
    progress = Progress(stream=stream)
    progress.begin(2, 100)
    # the estimate's eMod is said (0.125), not the last iterate's (0.25)
    fake = type("S", (), {"emod": np.array([0.5, 0.25]), "path": ["RAAR", "ERA"],
                          "emod_estimate": np.array([np.nan, 0.125])})()
    progress.repeat_done(0, fake)
    progress.repeat_done(1, fake)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "repeat 1 of 2 done (id 0, RAAR -> ERA, eMod 0.1250)" in lines[0]
    assert "about 0 s left" in lines[1]


def test_the_eta_leaves_out_the_first_report_which_includes_compiling():
    # "about 494 s left" after the first repeat, done 7 s later: the first iterations
    # included the kernels' compilation
    from prnf_core.cli import Progress
    import io
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream=stream, clock=lambda: now[0])
    progress.begin(3, 100)
    node = type("N", (), {"id": 1, "name": "RAAR"})()
    fake = type("S", (), {"emod": np.array([0.5]), "path": ["RAAR"]})()
    for repeat, times in enumerate(((50.0, 50.5), (51.0, 51.5))):
        for done, t in zip((50, 100), times):
            now[0] = t
            progress(node, done, 100, 0.5, repeat)
        progress.repeat_done(repeat, fake)
    lines = stream.getvalue().splitlines()
    assert "50.5 s, about 2 s left" in lines[0]           # 100 it/s after the first report
    assert "51.5 s, about 1 s left" in lines[1]


def test_the_terminal_bar_is_tqdm_auto_and_its_rate_starts_after_the_first_report():
    import io
    import time
    from tqdm.auto import tqdm
    from prnf_core.cli import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    progress = Progress(stream=Terminal())
    progress.begin(1, 150)
    assert isinstance(progress.bar, tqdm)                 # a notebook gets the widget
    node = type("N", (), {"id": 1, "name": "RAAR"})()
    time.sleep(1.0)                                       # "compiling"
    progress(node, 50, 150, 0.5)
    time.sleep(0.15)
    progress(node, 100, 150, 0.5)
    rate = progress.bar.format_dict["rate"]
    # 50 it in 0.15 s: 333 it/s (less on a loaded machine); with the compile's 1 s still in
    # tqdm's smoothed rate it was about 100 it/s
    assert rate is not None and rate > 170, rate
    assert progress.bar.format_dict["elapsed"] >= 1.1     # the elapsed time from the start
    progress(node, 150, 150, 0.5)
    progress.repeat_done(0, None)


def test_run_gives_data_to_a_skeleton_model(tmp_path, capsys):
    pattern, mask, _ = write_pattern(tmp_path)
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(10, 40, 0.9).after(inp))).dump_model(
        tmp_path / "skeleton.json", skeleton=True)
    other = tmp_path / "other"
    other.mkdir()
    pattern2, mask2, _ = write_pattern(other, seed=5, beamstop=2)
    assert np.load(mask2).any()
    assert main(["run", str(tmp_path / "skeleton.json"), "-q", "--data", f"{pattern2},{mask2}",
                 "--out", str(tmp_path / "r.h5")]) == 0
    with h5py.File(tmp_path / "r.h5") as f:
        np.testing.assert_array_equal(f["input_mask"][()], np.load(mask2).astype(bool))
    assert main(["run", str(tmp_path / "skeleton.json"), "-q", "--data", f"99={pattern2}",
                 "--out", str(tmp_path / "r2.h5")]) == 1
    assert "names input '99', which is not an input" in capsys.readouterr().err


def _phase_dumping(tmp_path, monkeypatch, *extra):
    """``prnf phase`` on a small pattern, started in tmp_path with relative paths, its recipe
    dumped to models/m.json; returns the model file's path."""
    write_pattern(tmp_path, photons=1e7, beamstop=2)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    assert main(["phase", "pattern.npy", "--mask", "mask.npy", "-q", "--iterations", "20",
                 "--dump-model", "models/m.json", "--out", "phase.h5", *extra]) == 0
    return tmp_path / "models" / "m.json"


def test_run_replays_the_recipe_dumped_by_phase_from_another_folder(tmp_path, monkeypatch, caplog):
    # --dump-model wrote the network only: prnf run phased once, single precision, merging
    # every repeat, and the pattern path was relative to where prnf phase was started
    model = _phase_dumping(tmp_path, monkeypatch, "--repeat", "3", "--keep-best", "2",
                           "--match", "0.5", "--precision", "double", "--seed", "4")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    with caplog.at_level("INFO", logger="prnf"):
        assert main(["run", str(model), "-q", "--out", "run.h5"]) == 0
    assert ("run options from the model file: repeat 3, keep-best 2, match 0.5, precision "
            "double, seed 4") in caplog.text
    with h5py.File(tmp_path / "phase.h5") as f, h5py.File("run.h5") as g:
        for key in ("repeat", "precision", "keep_best", "seed", "selection"):
            assert g.attrs[key] == f.attrs[key], key
        assert json.loads(g.attrs["selection"])["match"] == 0.5
        np.testing.assert_array_equal(g["sample_retrieved"][()], f["sample_retrieved"][()])


def test_run_options_given_override_the_model_files(tmp_path, monkeypatch, caplog):
    model = _phase_dumping(tmp_path, monkeypatch, "--repeat", "3", "--keep-best", "all",
                           "--precision", "double", "--seed", "4")
    doc = json.loads(model.read_text())
    assert doc["meta"]["run_options"] == {
        "repeat": 3, "keep_best": 1.0, "match": 0.1, "precision": "double", "seed": 4}
    inputs = [n["params"]["config_dict"] for n in doc["nodes"] if n["class"] == "pInput"]
    assert [(c["pattern_path"], c["mask_path"]) for c in inputs] == [("../pattern.npy", "../mask.npy")]
    with caplog.at_level("INFO", logger="prnf"):
        assert main(["run", str(model), "-q", "--repeat", "2", "--match", "off", "--seed", "5",
                     "--out", "run.h5"]) == 0
    assert "run options from the model file: keep-best 1.0, precision double\n" in caplog.text
    with h5py.File("run.h5") as f:
        assert f.attrs["repeat"] == 2 and f.attrs["seed"] == "5"
        assert f.attrs["precision"] == "double"
        selection = json.loads(f.attrs["selection"])
        assert selection["match"] is None and selection["kept"] == 2    # all, none left out


def test_a_bad_run_option_in_a_model_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    model = _phase_dumping(tmp_path, monkeypatch, "--repeat", "1")
    doc = json.loads(model.read_text())
    doc["meta"]["run_options"]["repeat"] = 0
    model.write_text(json.dumps(doc))
    assert main(["run", str(model), "-q", "--out", "run.h5"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and 'meta.run_options: "repeat": 0 is not valid; give an integer >= 1' in err
    assert not (tmp_path / "run.h5").exists()


def _quick_phase(*args):
    """``prnf phase`` on few iterations and one repeat: its exit code."""
    return main(["phase", *args, "-q", "--repeat", "1", "--iterations", "20", "--keep-best",
                 "all", "--seed", "1"])


def test_phase_records_the_geometry_and_the_run_times(tmp_path, capsys, monkeypatch):
    # issue 30: wavelength, distance and pixel size give the object's pixel size
    from datetime import datetime
    write_pattern(tmp_path, photons=1e7, beamstop=2)
    monkeypatch.chdir(tmp_path)
    assert _quick_phase("pattern.npy", "--mask", "mask.npy", "--out", "r.h5", "--wavelength",
                        "1.5e-10", "--distance", "0.7", "--pixel-size", "75e-6") == 0
    assert ("object pixel size: 43.7 nm x 43.7 nm (wavelength * distance / (pixels * pixel "
            "size), per axis)") in capsys.readouterr().out
    with h5py.File("r.h5") as f:
        np.testing.assert_allclose(f["entry_1/image_1/real_space_pixel_size"][()], [4.375e-8] * 2)
        assert f["entry_1/instrument_1/detector_1/distance"][()] == 0.7
        start, end = (datetime.fromisoformat(f[f"entry_1/{k}_time"][()].decode())
                      for k in ("start", "end"))
    assert start.tzinfo is not None and start <= end
    assert _quick_phase("pattern.npy", "--out", "r2.h5", "--wavelength", "1.5e-10") == 1
    assert ("--distance, --pixel-size missing: --wavelength, --distance and --pixel-size go "
            "together") in capsys.readouterr().err
    assert not (tmp_path / "r2.h5").exists()
    with pytest.raises(SystemExit):
        main(["phase", "pattern.npy", "--distance", "-1"])
    assert "'-1': give a length in metres > 0" in capsys.readouterr().err


def test_a_result_file_phases_its_own_measured_pattern_again(tmp_path, capsys, monkeypatch):
    # issue 30: `prnf phase result.cxi` read entry_1/data_1/data, a link to the object
    write_pattern(tmp_path, photons=1e7, beamstop=2)
    monkeypatch.chdir(tmp_path)
    assert _quick_phase("pattern.npy", "--mask", "mask.npy", "--out", "r.cxi") == 0
    assert _quick_phase("r.cxi", "--out", "again.cxi") == 0
    with h5py.File("r.cxi") as f, h5py.File("again.cxi") as g:
        np.testing.assert_array_equal(g["entry_1/data_1/data"][()], f["entry_1/data_1/data"][()])
        np.testing.assert_array_equal(g["input_mask"][()], f["input_mask"][()])
    pattern = np.load("pattern.npy") * (1 - np.load("mask.npy"))
    with h5py.File("again.cxi") as f:
        np.testing.assert_allclose(f["entry_1/data_1/data"][()], pattern, rtol=1e-5)
    import shutil
    shutil.copy("r.cxi", "r.h5")       # the default name of a result: CXI by its content
    assert _quick_phase("r.h5", "--out", "other.h5") == 0
    with h5py.File("r.h5") as f, h5py.File("other.h5") as g:
        np.testing.assert_array_equal(g["entry_1/data_1/data"][()], f["entry_1/data_1/data"][()])


def test_the_summary_tells_the_support_and_the_corrections():
    # issue 32: the finished object's support and what was done to it, in words
    from prnf_core.cli import finished_lines
    out = {"support_summary": {"size": 1851, "bbox": [[10, 21], [9, 22], [11, 21]],
                               "components": 1},
           "corrections": {"phase_ramp": [0.21, -0.001, 0.01], "shift": [2, 0, -1],
                           "phase_offset": 0.5, "orientation": "twin", "center": [1, 2, 3]}}
    assert finished_lines(out) == [
        "support: 1,851 px in 1 piece, box 12x14x11",
        "corrections: phase ramp removed (0.21, -0.001, 0.01 rad/px), centred by (2, 0, -1) px, "
        "phase offset 0.50 rad removed, orientation: twin of the found one"]
    out["support_summary"]["components"] = 3
    out["corrections"] = {"phase_ramp": [0.0, 0.0], "shift": [0, 0], "orientation": "as found"}
    lines = finished_lines(out)
    assert lines[0] == "support: 1,851 px in 3 pieces, box 12x14x11"
    assert lines[1].startswith("warning: the support is in 3 separate pieces")
    assert lines[2] == "corrections: no phase ramp, already centred, orientation: as found"
    # prnf demo's ramp, rounding-level: it read "removed (3e-09, 1.9e-09 rad/px)"
    out["corrections"]["phase_ramp"] = [3e-9, 1.9e-9]
    assert finished_lines(out)[2].startswith("corrections: no phase ramp,")
    assert finished_lines({}) == []
    assert finished_lines({"support_summary": {"size": 7}}) == ["support: 7 px"]


def test_phase_prints_the_finished_objects_support_and_corrections(tmp_path, capsys, monkeypatch):
    pytest.importorskip("prnf_core.postprocess")
    write_pattern(tmp_path, photons=1e7, beamstop=2)
    monkeypatch.chdir(tmp_path)
    assert _quick_phase("pattern.npy", "--mask", "mask.npy", "--out", "r.h5") == 0
    printed = capsys.readouterr().out
    assert "\nsupport: " in printed and " px in 1 piece, box " in printed
    assert "\ncorrections: " in printed and "orientation: " in printed
    with h5py.File("r.h5") as f:
        assert f"support: {f['entry_1/result_1/support_size'][()]:,} px" in printed
        assert "orientation" in f["entry_1/image_1/process_2"]


def test_center_max_is_passed_to_the_input(tmp_path, capsys):
    from prnf_core.cli import _phase_config, build_parser
    parse = lambda *a: _phase_config(build_parser().parse_args(["phase", "p.npy", *a]))
    assert parse("--center", "max")["center"] == "max"
    assert parse("--center", "MAX")["center"] == "max"
    assert parse()["center"] == "auto"
    assert parse("--center", "3,4")["center"] == [3, 4]
    assert main(["phase", str(tmp_path / "p.npy"), "--center", "brightest", "--out",
                 str(tmp_path / "r.h5")]) == 1
    assert "give pixel indices like 61,61, or one of auto, max" in capsys.readouterr().err


def test_phase_prepares_the_data_as_asked_and_records_it(tmp_path):
    # issue 32: photon threshold, binning and FFT-friendly sizes as prnf phase options,
    # each recorded in the result
    import h5py
    import json as _json
    from prnf_core.simulate import simulate_pattern
    intensity, mask, _ = simulate_pattern((78, 78), 4, photons=1e6, beamstop=0, gap=0, seed=1)
    np.save(tmp_path / "p.npy", intensity)
    out = tmp_path / "r.h5"
    assert main(["phase", str(tmp_path / "p.npy"), "-q", "--iterations", "60", "--repeat", "2",
                 "--seed", "1", "--photon-threshold", "1", "--bin", "2", "--fft-size", "crop",
                 "--out", str(out)]) == 0
    with h5py.File(out, "r") as f:
        steps = _json.loads(f["entry_1/image_1/process_1/data_preparation"][()])
        assert list(steps) == ["photon_threshold", "bin", "fft_size"]
        assert steps["bin"]["shape"] == [39, 39] and steps["fft_size"]["shape"] == [36, 36]
        assert f["entry_1/image_1/data"].shape == (36, 36)
    assert main(["phase", str(tmp_path / "p.npy"), "-q", "--bin", "two",
                 "--out", str(tmp_path / "s.h5")]) == 1
