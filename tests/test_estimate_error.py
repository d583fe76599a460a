"""The eMod of the support-constrained estimate beside the iterate's (issue 30: the eMod of
RAAR's iterate climbs to 0.8-1.0 during the main stage and reads as divergence)."""
import numpy as np
import pytest

from prnf_algorithms import engine
from prnf_core import Runner, phmodel

from helpers import config, write_pattern


def run(tmp_path, precision, node=lambda: phmodel.RAAR(120, 100, 0.9)):
    pattern, mask, _ = write_pattern(tmp_path, shape=(48, 48), radius=5, photons=1e7)
    inp = phmodel.pInput(config(pattern, mask))
    runner = Runner([inp], phmodel.pOutput().after(node().after(inp)), precision=precision,
                    progress=False)
    return runner.run(1, seed=4)


@pytest.mark.parametrize("precision", ["single", "double"])
def test_the_estimate_is_measured_every_50_iterations_and_at_the_last(tmp_path, precision):
    out = run(tmp_path, precision)
    estimate = out["eMod_estimate"]
    assert estimate.shape == out["eMod"].shape == (120,)
    assert list(np.flatnonzero(np.isfinite(estimate))) == [49, 99, 119]
    # the last one is the eMod of the estimate the node handed on, measured in NumPy on the
    # stored result (one FFT of the merged object: a single repeat, the same object)
    assert estimate[-1] == pytest.approx(out["final_eMod"][0], rel=1e-3 if precision == "single"
                                         else 1e-9)
    assert out["eMod_estimate_per_repeat"].shape == (1, 120)


def test_raar_s_estimate_fits_better_than_its_iterate(tmp_path):
    out = run(tmp_path, "double")
    sampled = np.isfinite(out["eMod_estimate"])
    assert np.all(out["eMod_estimate"][sampled] < out["eMod"][sampled])


def test_measuring_the_estimate_leaves_the_iterations_as_they_were(tmp_path, monkeypatch):
    # the measurement borrows the iteration's buffer and refills it: the object must be the
    # same bit for bit as with the estimate measured at the last iteration only
    sampled = run(tmp_path, "single")
    monkeypatch.setattr(engine, "ESTIMATE_EVERY", 10 ** 9)
    once = run(tmp_path, "single")
    assert np.isfinite(once["eMod_estimate"]).sum() == 1
    np.testing.assert_array_equal(sampled["sample_ret"], once["sample_ret"])
    np.testing.assert_array_equal(sampled["eMod"], once["eMod"])


def test_a_node_that_does_not_measure_it_records_nan(tmp_path):
    from prnf_core.stream import Stream
    stream = Stream(data=None, x=np.zeros(4), support=np.ones(4, bool), background=np.zeros(1))
    stream.record("mine", [0.5, 0.4], [0.1, 0.1])
    stream.record("engine", [0.3, 0.2], [0.1, 0.1], [np.nan, 0.25])
    assert np.isnan(stream.emod_estimate[:3]).all() and stream.emod_estimate[3] == 0.25
