"""The command line under faults: unwritable outputs, a full disk, SIGTERM, Ctrl-C, umask."""
import os
import pathlib
import signal
import subprocess
import sys

import h5py
import pytest

from prnf_core import Runner, phmodel
from prnf_core.cli import main

from helpers import config, write_pattern
from test_checkpoint import finished_repeats


def model(tmp_path, iterations=20, shape=(32, 32)):
    pattern, mask, _ = write_pattern(tmp_path, shape=shape)
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(iterations, 40, 0.9).after(inp))).dump_model(
        tmp_path / "m.json")
    return str(tmp_path / "m.json")


def prnf(*args, env=None, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "prnf_core.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})},
                            **kwargs)


def watchdog(proc, seconds=300):
    """Kill ``proc`` after ``seconds``: a read of its output must never wait forever."""
    import threading
    timer = threading.Timer(seconds, proc.kill)
    timer.daemon = True
    timer.start()
    return timer


def leftovers(folder):
    return [p.name for p in pathlib.Path(folder).rglob(".tmp-*")]


@pytest.mark.parametrize("bad", ["folder", "under a file"])
def test_unwritable_outputs_are_refused_before_the_first_iteration(tmp_path, capsys, bad):
    # they raised raw tracebacks after the run, which was lost
    path = model(tmp_path)
    (tmp_path / "plain.txt").write_text("x")
    out = {"folder": tmp_path, "under a file": tmp_path / "plain.txt" / "r.h5"}[bad]
    assert main(["run", path, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"--out '{out}'" in err and "repeat" not in err       # no iteration ran


def test_a_result_that_cannot_be_saved_is_kept_elsewhere(tmp_path, capsys, monkeypatch):
    path = model(tmp_path)
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path / "cache"))
    from prnf_core import results
    real = results.atomic_write
    def full_disk(target, content):
        if "cache" not in str(target):
            raise OSError(28, "No space left on device")
        return real(target, content)
    monkeypatch.setattr(results, "atomic_write", full_disk)
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5")]) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "the result is kept in" in err
    rescued = list((tmp_path / "cache" / "rescued").glob("r-*.h5"))
    assert len(rescued) == 1
    with h5py.File(rescued[0]) as f:
        assert f["sample_retrieved"].shape == (32, 32)


def _small_disk(folder):
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs",
                                            str(folder)], capture_output=True, timeout=30).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")


def test_a_full_disk_is_an_error_not_a_crash(tmp_path):
    # HDF5 writing onto a full disk ended in a segmentation fault (exit 139) and lost the run
    path = model(tmp_path)
    disk = tmp_path / "disk"
    _small_disk(disk)
    try:
        (disk / "filler").write_bytes(b"\0" * 60 * 1024)
        proc = prnf("run", path, "-q", "--out", str(disk / "r.h5"),
                    env={"PRNF_CACHE_DIR": str(tmp_path / "cache")})
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 1, err
        assert "No space left on device" in err and "the result is kept in" in err
        assert leftovers(disk) == [] and not (disk / "r.h5").exists()
    finally:
        subprocess.run(["umount", str(disk)], timeout=30)


@pytest.mark.parametrize("sig,code,words", [(signal.SIGTERM, 143, "terminated by SIGTERM"),
                                            (signal.SIGINT, 130, "interrupted")])
def test_signals_end_cleanly_and_the_run_resumes(tmp_path, sig, code, words):
    # SIGTERM left .tmp-* files and printed nothing
    path = model(tmp_path, iterations=400, shape=(64, 64))
    checkpoint = tmp_path / "ck.h5"
    args = ("run", path, "--repeat", "5000", "--seed", "1", "--checkpoint", str(checkpoint),
            "--out", str(tmp_path / "r.h5"))
    proc = prnf(*args)
    watchdog(proc)
    seen = ""
    while "repeat 2 of 5000 done" not in seen:       # batch-log progress: repeats are saved
        line = proc.stderr.readline()
        assert line, seen                            # the run must not end by itself
        seen += line
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert words in err and "run the same command again to resume" in err
    assert leftovers(tmp_path) == [] and not (tmp_path / "r.h5").exists()
    assert finished_repeats(checkpoint) >= 1


def test_ctrl_c_during_the_save_finishes_the_file_then_exits_nonzero(tmp_path, capsys,
                                                                     monkeypatch):
    # a Ctrl-C inside the save was swallowed and the program exited 0
    path = model(tmp_path)
    from prnf_core import results
    real = results.atomic_write
    def interrupted(target, content):
        os.kill(os.getpid(), signal.SIGINT)       # arrives while the file is being written
        return real(target, content)
    monkeypatch.setattr(results, "atomic_write", interrupted)
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5")]) == 130
    err = capsys.readouterr().err
    # it said "nothing was saved" though the file was complete
    assert "interrupted" in err and "nothing was saved" not in err
    assert f"the result was written completely before stopping: '{tmp_path / 'r.h5'}'" in err
    with h5py.File(tmp_path / "r.h5") as f:             # written completely first
        assert f["sample_retrieved"].shape == (32, 32)
    assert leftovers(tmp_path) == []


def test_files_follow_the_umask(tmp_path):
    # result, model and config files were 0600 whatever the umask
    old = os.umask(0o022)
    try:
        path = model(tmp_path)
        assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5"),
                     "--plot", str(tmp_path / "r.png")]) == 0
    finally:
        os.umask(old)
    for name in ("m.json", "r.h5", "r.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o644, name


def test_paths_given_as_pathlib_objects_work_to_the_end(tmp_path):
    # a pathlib.Path in the config raised a raw traceback after the run (the model JSON)
    pattern, mask, _ = write_pattern(tmp_path)
    inp = phmodel.pInput(config(pathlib.Path(pattern), pathlib.Path(mask)))
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(5, 40).after(inp)))
    out = runner.run(1, seed=0)
    runner.save_h5(out, tmp_path / "r.h5")
    runner.dump_model(tmp_path / "m.json", skeleton=True)
    assert Runner(loadfile=tmp_path / "m.json").inputs[0].params["config_dict"]["pattern_path"] == pattern


def test_project_config_files_follow_the_umask(tmp_path, monkeypatch):
    from prnf_core import phase2d
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path / "cache"))      # the current project
    pattern, mask, _ = write_pattern(tmp_path)
    old = os.umask(0o002)
    try:
        folder = phase2d.new_project(pattern, mask, path=str(tmp_path), name="shared")
    finally:
        os.umask(old)
    assert os.stat(os.path.join(folder, "config.ini")).st_mode & 0o777 == 0o664


def test_a_checkpoint_on_a_full_disk_is_one_line_naming_what_is_kept(tmp_path, capsys, monkeypatch):
    # a raw h5py traceback
    path = model(tmp_path)
    from prnf_core import checkpoint
    def full_disk(self, repeat_id, stream, inputs):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(checkpoint.Checkpoint, "_save", full_disk)
    assert main(["run", path, "-q", "--checkpoint", str(tmp_path / "ck.h5"),
                 "--out", str(tmp_path / "r.h5")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "cannot write repeat 0 to checkpoint" in err and "No space left on device" in err
    assert "run the same command again to resume" in err and not (tmp_path / "r.h5").exists()


def test_a_plot_on_a_full_disk_is_one_line_and_the_result_is_kept(tmp_path, capsys, monkeypatch):
    path = model(tmp_path)
    from prnf_core import results
    def full_disk(out, save_file=None):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(results, "plot_result", full_disk)
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5"),
                 "--plot", str(tmp_path / "r.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write --plot" in err, err
    assert f"the result itself was saved in '{tmp_path / 'r.h5'}'" in err
    with h5py.File(tmp_path / "r.h5") as f:
        assert f["sample_retrieved"].shape == (32, 32)


def test_node_names_from_a_model_file_are_printed_escaped(tmp_path, capsys):
    # ANSI escapes and newlines in a name cleared the terminal and forged log lines
    import json
    path = model(tmp_path)
    doc = json.loads(pathlib.Path(path).read_text())
    next(n for n in doc["nodes"] if n["class"] == "HIO")["name"] = "\x1b[2J\nprnf: error: forged"
    pathlib.Path(path).write_text(json.dumps(doc))
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5")]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\nprnf: error: forged" not in out
    assert "path: \\x1b[2J\\nprnf: error: forged" in out


def test_a_bogus_fftw_effort_is_refused(tmp_path, capsys, monkeypatch):
    # accepted silently (planned as FFTW_MEASURE)
    path = model(tmp_path)
    monkeypatch.setenv("PRNF_FFTW_EFFORT", "BOGUS")
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5")]) == 1
    assert "PRNF_FFTW_EFFORT='BOGUS': give one of FFTW_ESTIMATE" in capsys.readouterr().err


@pytest.mark.parametrize("limit", ["abc", "0", "-2", "nan"])
def test_a_bad_fftw_planning_limit_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                              limit):
    path = model(tmp_path)
    monkeypatch.setenv("PRNF_FFTW_TIMELIMIT", limit)
    assert main(["run", path, "-q", "--out", str(tmp_path / "r.h5")]) == 1
    assert f"PRNF_FFTW_TIMELIMIT={limit!r}: give seconds per FFTW plan" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes everywhere")
def test_an_unwritable_cache_folder_is_said(tmp_path, caplog, monkeypatch):
    _unwritable_cache(tmp_path, caplog, monkeypatch)


def test_an_unwritable_cache_folder_is_said_even_to_root(tmp_path, caplog, monkeypatch):
    (tmp_path / "file").write_text("x")             # a folder under a file: nobody writes it
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path / "file" / "cache"))
    path = model(tmp_path)
    with caplog.at_level("WARNING"):
        Runner(loadfile=path)
    assert "cannot be written: FFTW plans are not kept" in caplog.text


def _unwritable_cache(tmp_path, caplog, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir(mode=0o500)
    monkeypatch.setenv("PRNF_CACHE_DIR", str(cache))
    with caplog.at_level("WARNING"):
        Runner(loadfile=model(tmp_path))
    assert "cannot be written" in caplog.text


def test_an_unknown_compression_is_refused_before_any_work(tmp_path, capsys):
    path = model(tmp_path)
    assert main(["run", path, "-q", "--compression", "lz4", "--out", str(tmp_path / "r.h5")]) == 1
    assert "compression 'lz4': give one of auto, gzip, zstd, blosc2, none" in capsys.readouterr().err
    assert not (tmp_path / "r.h5").exists()
