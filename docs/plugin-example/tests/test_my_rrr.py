"""Tests of the my-rrr plugin: discovery, the true object as a fixed point, recovery of a
simulated object. Run them with ``pytest`` after ``pip install .``."""
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
import pytest

from prnf_core import Runner, get_registry, phmodel
from prnf_core.simulate import object_error, simulate_pattern
from prnf_core.testing import make_stream, run_node

from my_rrr.plugin import RRR


def test_discovered_through_its_entry_point():
    try:
        distribution("my-rrr")
    except PackageNotFoundError:
        pytest.skip("my-rrr is not installed (pip install .)")
    algo = get_registry().get("RRR")
    assert algo.cls is RRR and algo.distribution == "my-rrr"


def test_the_true_object_is_a_fixed_point():
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    stream, ctx = make_stream(intensity, x=obj, support=obj > 0, precision="double")
    out = run_node(RRR(20, int(np.count_nonzero(obj))), stream, ctx)
    np.testing.assert_allclose(out.x, obj, atol=1e-9)


def test_recovers_a_simulated_object(tmp_path):
    intensity, mask, obj = simulate_pattern((64, 64), 6, photons=1e7, beamstop=2, gap=1, seed=3)
    np.save(tmp_path / "pattern.npy", intensity)
    np.save(tmp_path / "mask.npy", mask)
    size = int(1.2 * np.count_nonzero(obj))
    inp = phmodel.pInput({"pattern_path": str(tmp_path / "pattern.npy"),
                          "mask_path": str(tmp_path / "mask.npy"), "background": False})
    rrr = RRR(300, size, 0.5, positivity=True, shrink_iterations=150).after(inp)
    era = phmodel.ERA(100, size, positivity=True).after(rrr)
    runner = Runner([inp], phmodel.pOutput().after(era))
    errors = [object_error(runner.run_once(k, seed=11).x, obj) for k in range(6)]
    assert sum(e < 0.01 for e in errors) >= 4, np.round(errors, 3)
