"""prnf-pixel-raar: discovery, RAAR's twin, the true object as a fixed point, recovery, the
map in model files, refused maps."""
import numpy as np
import pytest

pytest.importorskip("prnf_pixel_raar", reason="pip install plugins/prnf-pixel-raar")

from prnf_core import ConfigError, Runner, get_registry, phmodel  # noqa: E402
from prnf_core.simulate import object_error, simulate_pattern  # noqa: E402
from prnf_core.testing import make_stream, run_node  # noqa: E402
from prnf_pixel_raar import PixelRAAR  # noqa: E402


def test_discovered_through_its_entry_point():
    algo = get_registry().get("PixelRAAR")
    assert algo.cls is PixelRAAR and algo.distribution == "prnf-pixel-raar"


@pytest.mark.parametrize("precision,tol", [("single", 1e-4), ("double", 1e-10)])
def test_a_uniform_map_is_raar(precision, tol):
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    rng = np.random.default_rng(2)
    start = obj + 0.3 * rng.random(obj.shape)
    stream, ctx = make_stream(intensity, x=start, support=obj > 0, precision=precision)
    size = int((obj > 0).sum()) + 10
    ours = run_node(PixelRAAR(15, size, np.full(obj.shape, 0.8)), stream, ctx)
    raar = run_node(phmodel.RAAR(15, size, 0.8), stream, ctx)
    np.testing.assert_allclose(ours.x, raar.x, atol=tol * np.abs(raar.x).max())


def test_true_object_is_a_fixed_point():
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    stream, ctx = make_stream(intensity, x=obj, support=obj > 0, precision="double")
    beta = np.random.default_rng(0).random(obj.shape)
    out = run_node(PixelRAAR(20, int((obj > 0).sum()), beta), stream, ctx)
    np.testing.assert_allclose(out.x, obj, atol=1e-9)


def test_recovers_and_stores_its_map(tmp_path):
    intensity, mask, obj = simulate_pattern((64, 64), 6, photons=1e7, beamstop=2, gap=1, seed=3)
    np.save(tmp_path / "p.npy", intensity)
    np.save(tmp_path / "m.npy", mask)
    size = int(1.2 * np.count_nonzero(obj))
    r = np.hypot(*np.ogrid[-32:32, -32:32])
    beta = np.fft.ifftshift(np.where(r < 12, 0.8, 0.95))     # hold the far field harder
    inp = phmodel.pInput({"pattern_path": str(tmp_path / "p.npy"),
                          "mask_path": str(tmp_path / "m.npy"), "background": False})
    node = PixelRAAR(300, size, beta, positivity=True, shrink_iterations=150).after(inp)
    runner = Runner([inp], phmodel.pOutput().after(phmodel.ERA(100, size, positivity=True).after(node)))
    errors = [object_error(runner.run_once(k, 11).x, obj) for k in range(6)]
    assert sum(e < 0.01 for e in errors) >= 3, np.round(errors, 3)
    runner.dump_model(tmp_path / "pixel.json")
    loaded = next(n for n in Runner(loadfile=tmp_path / "pixel.json").order if type(n) is PixelRAAR)
    np.testing.assert_array_equal(loaded.values["beta"], beta)


def test_bad_maps_are_refused():
    with pytest.raises(ConfigError, match=r"beta=array of shape \(4, 4\).*\[0.0, 1.0\]"):
        PixelRAAR(10, 5, np.full((4, 4), 1.5))
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=0, beamstop=0, gap=0, seed=1)
    stream, ctx = make_stream(intensity)
    with pytest.raises(ConfigError, match="shape"):
        run_node(PixelRAAR(2, 20, np.full((8, 8), 0.5)), stream, ctx)
