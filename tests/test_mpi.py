"""MPI: 2 ranks under mpiexec give the 1-rank result, failures stop every rank, memory is flat."""
import json
import os
import subprocess
import sys
import time
import tracemalloc

import numpy as np
import pytest

from prnf_core import Runner, phmodel
from prnf_core.merge import MergeAccumulator
from prnf_core.parallel import mpiexec_path
from prnf_core.stream import Stream

from helpers import config, write_pattern

HERE = os.path.dirname(os.path.abspath(__file__))
MPIEXEC = mpiexec_path()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="no mpiexec (pip install '.[mpi]')")


def mpirun(ranks, *args, timeout=180):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    return subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture
def data(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path, photons=1e6, beamstop=1)
    return pattern, mask


def run_job(ranks, data, tmp_path, repeat, seed, *extra):
    out = tmp_path / f"out{ranks}.npz"
    proc = mpirun(ranks, os.path.join(HERE, "mpi_job.py"), *data, str(out), str(repeat), str(seed), *extra)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(out)


@needs_mpi
@pytest.mark.mpi
def test_two_ranks_give_the_one_rank_result(data, tmp_path):
    one = run_job(1, data, tmp_path, 4, 7)
    two = run_job(2, data, tmp_path, 2, 7)
    assert int(two["ranks"]) == 2 and int(two["merged"]) == 4
    np.testing.assert_array_equal(two["repeat_ids"], [0, 1, 2, 3])
    np.testing.assert_allclose(two["final_eMod"], one["final_eMod"], rtol=1e-6)
    for key in ("sample_ret", "PRTF", "support", "eMod"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-5, atol=1e-6)


@needs_mpi
@pytest.mark.mpi
def test_keep_best_across_ranks(data, tmp_path):
    one = run_job(1, data, tmp_path, 4, 3, "--keep-best", "2")
    two = run_job(2, data, tmp_path, 2, 3, "--keep-best", "2")
    assert int(two["merged"]) == 2
    np.testing.assert_allclose(np.sort(two["final_eMod"]), np.sort(one["final_eMod"]), rtol=1e-6)
    np.testing.assert_allclose(two["sample_ret"], one["sample_ret"], rtol=1e-5, atol=1e-6)


@needs_mpi
@pytest.mark.mpi
def test_failing_rank_stops_the_job_with_its_name(data, tmp_path):
    proc = mpirun(2, os.path.join(HERE, "mpi_job.py"), *data, str(tmp_path / "o.npz"), "2", "1",
                  "--fail-rank", "1", timeout=120)
    assert proc.returncode != 0
    assert "rank 1" in proc.stderr and "flaky" in proc.stderr and "injected failure" in proc.stderr


@needs_mpi
@pytest.mark.mpi
def test_cli_under_mpiexec(data, tmp_path):
    pattern, mask = data
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(20, 40, 0.9).after(inp))).dump_model(tmp_path / "m.json")
    proc = mpirun(2, "-m", "prnf_core.cli", "-q", "run", str(tmp_path / "m.json"), "--repeat", "2",
                  "--seed", "5", "--out", str(tmp_path / "r.h5"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "merged all 4 repeats over 2 rank(s)" in proc.stdout
    import h5py
    with h5py.File(tmp_path / "r.h5") as f:
        assert f.attrs["ranks"] == 2 and f["final_modulus_error"].shape == (4,)


def fake_stream(rng, shape=(32, 32, 32)):
    data = type("D", (), {"amplitude": np.ones(shape), "measured": np.ones(shape, bool),
                          "radial_bins": np.zeros(shape, int), "scale": 1.0,
                          "constrained": np.ones(shape, bool), "free": None})()
    x = np.zeros(shape, np.complex64)
    x[10:20, 12:18, 8:16] = rng.random((10, 6, 8))
    x = np.roll(x, tuple(rng.integers(-3, 3, 3)), (0, 1, 2))
    return Stream(data=data, x=x, support=np.abs(x) > 0, background=np.zeros(1),
                  emod=np.zeros(50), econ=np.zeros(50))


def test_merging_many_3d_repeats_keeps_memory_flat(rng):
    """The running merge holds sums, not solutions: peak memory after 40 repeats of a 32^3
    volume is that after 5 (each solution is 256 KiB; keeping them would add ~9 MiB)."""
    acc = MergeAccumulator()
    streams = [fake_stream(rng) for _ in range(2)]
    peaks = []
    tracemalloc.start()
    for count in (5, 40):
        tracemalloc.reset_peak()
        for k in range(count):
            acc.add(streams[k % 2], k)
        peaks.append(tracemalloc.get_traced_memory()[1])
    tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.2 + 512 * 1024, peaks
    assert acc.count == 45


@needs_mpi
@pytest.mark.mpi
def test_a_rank_failing_before_the_first_collective_stops_the_job(data, tmp_path):
    # `mpiexec -n 1 prnf run good.json : -n 1 prnf run missing.json` hung forever
    pattern, mask = data
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(50, 40, 0.9).after(inp))).dump_model(
        tmp_path / "good.json")
    cli = [sys.executable, "-m", "prnf_core.cli", "run"]
    start = time.monotonic()
    proc = subprocess.run([MPIEXEC, "-n", "1", *cli, str(tmp_path / "good.json"), "--repeat", "50",
                           "--out", str(tmp_path / "r.h5"), ":", "-n", "1", *cli,
                           str(tmp_path / "missing.json")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "on MPI rank 1 of 2: model file not found" in proc.stderr, proc.stderr[-2000:]
    assert time.monotonic() - start < 60
    assert not (tmp_path / "r.h5").exists()


@needs_mpi
@pytest.mark.mpi
def test_phase_under_mpiexec_gives_the_one_rank_result_and_resumes(data, tmp_path):
    pattern, mask = data
    common = ["-m", "prnf_core.cli", "-q", "phase", pattern, "--mask", mask, "--iterations", "100",
              "--seed", "3", "--keep-best", "2"]
    results = {}
    for ranks, repeat in ((1, 4), (2, 2)):
        out = tmp_path / f"r{ranks}.h5"
        proc = mpirun(ranks, *common, "--repeat", str(repeat), "--out", str(out),
                      "--checkpoint", str(tmp_path / f"ck{ranks}.h5"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "ranked by free eMod" in proc.stdout
        import h5py
        with h5py.File(out) as f:
            results[ranks] = (f["sample_retrieved"][()], json.loads(f.attrs["selection"]))
    np.testing.assert_allclose(results[2][0], results[1][0], rtol=1e-5, atol=1e-6)
    assert results[2][1] == results[1][1] and results[1][1]["of"] == 4
    again = mpirun(2, *common, "--repeat", "2", "--out", str(tmp_path / "again.h5"),
                   "--checkpoint", str(tmp_path / "ck2.h5"))      # every repeat read back
    assert again.returncode == 0, again.stderr[-3000:]
    import h5py
    with h5py.File(tmp_path / "again.h5") as f:
        np.testing.assert_array_equal(f["sample_retrieved"][()], results[2][0])


SCRIPT_FAULTS = {
    # a Runner in the user's own script, a fault on rank 1 only: rank 0 waited forever
    "pattern missing on rank 1": (["--missing-pattern-rank", "1"], "rank 1: DataFileError: file not found"),
    "mask of another shape on rank 1": (["--bad-mask-rank", "1"], "rank 1: ConfigError: mask shape (8, 8)"),
    # MPMD-style: ranks given different settings; rank 0's seed was used silently
    "seed per rank": (["--seed-per-rank"], "seed: rank 0 1, rank 1 2"),
    "precision per rank": (["--precision-per-rank"], "precision: rank 0 'single', rank 1 'double'"),
}


@needs_mpi
@pytest.mark.mpi
@pytest.mark.parametrize("case", SCRIPT_FAULTS, ids=list(SCRIPT_FAULTS))
def test_a_fault_on_one_rank_of_a_script_stops_every_rank(data, tmp_path, case):
    extra, words = SCRIPT_FAULTS[case]
    start = time.monotonic()
    proc = mpirun(2, os.path.join(HERE, "mpi_job.py"), *data, str(tmp_path / "o.npz"), "2", "1",
                  *extra, timeout=120)
    assert proc.returncode != 0
    assert words in proc.stderr, proc.stderr[-3000:]
    assert time.monotonic() - start < 60 and not (tmp_path / "o.npz").exists()


def _rank_pid(marker, rank, timeout=60):
    """The pid of the process of MPI rank ``rank`` whose command line holds ``marker``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() not in f.read():
                        continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"PMI_RANK={rank}".encode() in f.read().split(b"\0"):
                        return int(entry)
            except (OSError, ValueError):
                continue
        time.sleep(0.2)
    raise AssertionError(f"no process of rank {rank} running {marker}")


@needs_mpi
@pytest.mark.mpi
def test_sigterm_to_one_rank_stops_the_whole_job(data, tmp_path):
    # rank 1 printed its message and exited 143 without MPI_Abort; rank 0 waited forever
    import signal
    pattern, mask = data
    inp = phmodel.pInput(config(pattern, mask))
    model_path = str(tmp_path / "sigterm-model.json")
    Runner([inp], phmodel.pOutput().after(phmodel.HIO(200, 40, 0.9).after(inp))).dump_model(model_path)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(HERE), HERE]))
    proc = subprocess.Popen([MPIEXEC, "-n", "2", sys.executable, "-m", "prnf_core.cli", "run",
                             model_path, "--repeat", "100000", "--out", str(tmp_path / "r.h5")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    from test_cli_faults import watchdog
    watchdog(proc, 120)
    try:
        seen = ""
        while "repeat 1 of 100000 done" not in seen:    # the ranks are phasing (handlers set)
            line = proc.stderr.readline()
            assert line, seen
            seen += line
        os.kill(_rank_pid(model_path, 1), signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "terminated by SIGTERM on MPI rank 1 of 2" in err and "MPI_Abort" in err, err[-2000:]
    assert not (tmp_path / "r.h5").exists()


@needs_mpi
@pytest.mark.mpi
def test_two_ranks_refuse_a_checkpoint_of_one(data, tmp_path):
    pattern, mask = data
    inp = phmodel.pInput(config(pattern, mask))
    Runner([inp], phmodel.pOutput().after(phmodel.ERA(5, 40).after(inp))).dump_model(tmp_path / "m.json")
    (tmp_path / "ck.h5").write_bytes(b"")          # a single process's checkpoint
    proc = mpirun(2, "-m", "prnf_core.cli", "-q", "run", str(tmp_path / "m.json"),
                  "--checkpoint", str(tmp_path / "ck.h5"), "--out", str(tmp_path / "r.h5"), timeout=120)
    assert proc.returncode != 0
    assert "written by a single process" in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "ck.rank0.h5").exists() and not (tmp_path / "r.h5").exists()
