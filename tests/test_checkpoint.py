"""Checkpoints: an interrupted run resumes to the uninterrupted result; mismatches refused."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from prnf_core import ConfigError, Runner, phmodel

from helpers import config, write_pattern


def network(cfg):
    inp = phmodel.pInput(cfg)
    node = phmodel.ERA(10, 40).after(phmodel.HIO(40, 40, 0.9).after(inp))
    return Runner([inp], phmodel.pOutput().after(node))


@pytest.fixture
def cfg(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path, photons=1e6, beamstop=1)
    return config(pattern, mask)


def test_interrupted_run_resumes_to_the_same_result(cfg, tmp_path):
    reference = network(cfg).run(5, seed=11)
    calls = []

    def interrupt(node, done, total, emod, repeat):
        calls.append(repeat)
        if repeat == 3 and not resuming:
            raise KeyboardInterrupt      # Ctrl-C in the middle of repeat 3

    runner = network(cfg)
    runner.progress = interrupt
    resuming = False
    with pytest.raises(KeyboardInterrupt):
        runner.run(5, seed=11, checkpoint=tmp_path / "run.h5")
    with h5py.File(tmp_path / "run.h5") as f:
        assert sorted(n for n in f if n.startswith("repeat-")) == ["repeat-0", "repeat-1", "repeat-2"]
    calls.clear()
    resuming = True
    resumed = runner.run(5, seed=None, checkpoint=tmp_path / "run.h5")   # seed from the file
    assert set(calls) == {3, 4}                                         # only the missing ones ran
    assert resumed["seed"] == 11
    np.testing.assert_array_equal(resumed["sample_ret"], reference["sample_ret"])
    np.testing.assert_array_equal(resumed["final_eMod"], reference["final_eMod"])


def test_checkpoint_of_another_network_or_seed_is_refused(cfg, tmp_path):
    network(cfg).run(1, seed=1, checkpoint=tmp_path / "run.h5")
    with pytest.raises(ConfigError, match="belongs to seed 1, not 2"):
        network(cfg).run(1, seed=2, checkpoint=tmp_path / "run.h5")
    inp = phmodel.pInput(cfg)
    other = Runner([inp], phmodel.pOutput().after(phmodel.ERA(5, 40).after(inp)))
    with pytest.raises(ConfigError, match="another network"):
        other.run(1, seed=1, checkpoint=tmp_path / "run.h5")


JOB = """
import sys, numpy as np
from prnf_core import Runner, phmodel
cfg = {{"pattern_path": {pattern!r}, "mask_path": {mask!r}, "background": False}}
inp = phmodel.pInput(cfg)
node = phmodel.ERA(50, 40).after(phmodel.HIO(400, 40, 0.9).after(inp))
runner = Runner([inp], phmodel.pOutput().after(node), threads=1)
out = runner.run(6, seed=5, checkpoint=sys.argv[1] if len(sys.argv) > 1 else None)
np.save({out!r}, out["sample_ret"])
"""


def test_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    pattern, mask, _ = write_pattern(tmp_path, shape=(48, 48), photons=1e6, beamstop=1)
    script = tmp_path / "job.py"
    script.write_text(JOB.format(pattern=pattern, mask=mask, out=str(tmp_path / "out.npy")))
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, str(script)], check=True, env=env, timeout=300)
    uninterrupted = np.load(tmp_path / "out.npy")
    os.remove(tmp_path / "out.npy")

    checkpoint = tmp_path / "run.h5"
    proc = subprocess.Popen([sys.executable, str(script), str(checkpoint)], env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if finished_repeats(checkpoint) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the job ended before it could be killed"
    assert not (tmp_path / "out.npy").exists()
    subprocess.run([sys.executable, str(script), str(checkpoint)], check=True, env=env, timeout=300)
    np.testing.assert_array_equal(np.load(tmp_path / "out.npy"), uninterrupted)


def finished_repeats(path):
    try:
        with h5py.File(path, "r", locking=False) as f:
            return sum(name.startswith("repeat-") for name in f)
    except (OSError, KeyError):
        return 0
