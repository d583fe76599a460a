"""prnf-poisson: discovery, the step against its formula, HIO as the large-weight limit, the
true object as a fixed point, recovery from few photons."""
import numpy as np
import pytest

pytest.importorskip("prnf_poisson", reason="pip install plugins/prnf-poisson")

from prnf_core import Runner, get_registry, phmodel  # noqa: E402
from prnf_core.simulate import object_error, simulate_pattern  # noqa: E402
from prnf_core.testing import make_stream, run_node  # noqa: E402
from prnf_poisson import PoissonHIO  # noqa: E402
from prnf_poisson.poisson import poisson_ratio, rules  # noqa: E402


def test_discovered_through_its_entry_point():
    assert get_registry().get("PoissonHIO").cls is PoissonHIO


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_step_minimises_its_objective(dtype):
    w, a, rho = 0.7, dtype(3.0), dtype(1.5)
    c = rules.pack(PoissonHIO(1, 1, 0.9, weight=w).coefficients(None), dtype)
    r = rho * poisson_ratio.py_func(a, rho, c)
    grid = np.linspace(0.01, 6, 200001)
    objective = w * (grid ** 2 - a ** 2 * np.log(grid ** 2)) + (grid - rho) ** 2 / 2
    assert r == pytest.approx(grid[np.argmin(objective)], abs=1e-4)
    assert rho * poisson_ratio.py_func(a, rho, rules.pack(PoissonHIO(
        1, 1, 0.9, weight=1e6).coefficients(None), dtype)) == pytest.approx(a, rel=1e-5)


def test_a_large_weight_is_hio():
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    start = obj + 0.3 * np.random.default_rng(2).random(obj.shape)
    stream, ctx = make_stream(intensity, x=start, support=obj > 0, precision="double")
    size = int((obj > 0).sum()) + 10
    ours = run_node(PoissonHIO(15, size, 0.9, weight=1e9), stream, ctx)
    hio = run_node(phmodel.HIO(15, size, 0.9), stream, ctx)
    np.testing.assert_allclose(ours.x, hio.x, atol=1e-6 * np.abs(hio.x).max())


def test_true_object_is_a_fixed_point():
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    stream, ctx = make_stream(intensity, x=obj, support=obj > 0, precision="double")
    out = run_node(PoissonHIO(20, int((obj > 0).sum()), 0.9, weight=0.5), stream, ctx)
    np.testing.assert_allclose(out.x, obj, atol=1e-9)


def test_recovers_a_simulated_object(tmp_path):
    intensity, mask, obj = simulate_pattern((64, 64), 6, photons=1e7, beamstop=2, gap=1, seed=3)
    np.save(tmp_path / "p.npy", intensity)
    np.save(tmp_path / "m.npy", mask)
    size = int(1.2 * np.count_nonzero(obj))
    inp = phmodel.pInput({"pattern_path": str(tmp_path / "p.npy"),
                          "mask_path": str(tmp_path / "m.npy"), "background": False})
    node = PoissonHIO(300, size, 0.9, weight=2.0, positivity=True, shrink_iterations=150).after(inp)
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(100, size, positivity=True).after(node)))
    errors = [object_error(runner.run_once(k, 11).x, obj) for k in range(6)]
    assert sum(e < 0.02 for e in errors) >= 3, np.round(errors, 3)
