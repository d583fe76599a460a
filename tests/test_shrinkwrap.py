"""Threshold shrinkwrap, loose starts and support files: phasing from no support information."""
import logging

import numpy as np
import pytest
from scipy import ndimage

from prnf_algorithms import recipes, shrinkwrap
from prnf_core import ConfigError, Runner, phmodel
from prnf_core.data import check_config, loose_support, prepare
from prnf_core.simulate import object_nrmse, simulate_pattern


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 36), (12, 14, 10)])
def test_smoothing_matches_its_numpy_twin(dtype, shape):
    score = np.random.default_rng(1).random(shape).astype(dtype) ** 4
    twin = ndimage.gaussian_filter(np.sqrt(score.astype(np.float64)), 1.5, mode="wrap",
                                   truncate=8.0)
    smoothed = shrinkwrap.smooth_modulus(score, 1.5)
    assert smoothed.dtype == dtype
    # the transform of the continuous Gaussian, not of its samples: they differ by aliasing,
    # exp(-2 pi^2 sigma^2 / 4) = 1.5e-5 at Nyquist for sigma 1.5
    np.testing.assert_allclose(smoothed, twin, rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(40, 36), (12, 14, 10)])
def test_smoothed_score_and_its_reference_match_their_numpy_twin(dtype, shape):
    rng = np.random.default_rng(2)
    score = (rng.random(shape) ** 4).astype(dtype)
    score[rng.random(shape) < 0.3] = -1                 # off the fixed support
    support = rng.random(shape) < 0.2
    eligible = score >= 0
    twin = np.maximum(ndimage.gaussian_filter(np.sqrt(np.maximum(score, 0).astype(np.float64)),
                                              1.5, mode="wrap", truncate=8.0), 0)
    new = score.copy()
    on_support, on_eligible = shrinkwrap.smooth_score(new, 1.5, support=support)
    assert new.dtype == dtype
    np.testing.assert_array_equal(new[~eligible], -1)
    np.testing.assert_allclose(new[eligible], twin[eligible], rtol=1e-4, atol=2e-5)
    for stats, inside in ((on_support, support & eligible), (on_eligible, eligible)):
        values = new[inside].astype(np.float64)
        assert stats[2] == inside.sum()
        assert stats[0] == values.max()
        np.testing.assert_allclose(stats[1], np.sqrt(np.mean(values ** 2)), rtol=1e-12)
    level = 0.4 * on_support[0]
    assert shrinkwrap.smoothing.count_at_least(new.reshape(-1), level) == np.sum(new >= level)


@pytest.mark.parametrize("level", [0.3, 0.5000001, 0.9])
def test_a_threshold_support_is_marked_as_the_radix_select_would(level):
    """The pixels a threshold counted, marked in one pass (no radix select), are the ones the
    exact top-N selection of that many picks; a level between two float32 values included."""
    from prnf_algorithms.support import Selector, key_at_least
    rng = np.random.default_rng(5)
    score = rng.random(5000).astype(np.float32)
    score[rng.random(5000) < 0.2] = -1
    score[:50] = np.float32(0.5)                         # ties at a level
    count = int(np.count_nonzero(score >= level))
    marked = []
    for at_least in (None, level):
        state = np.zeros(5000, np.uint8)
        Selector(2, count).select(count, lambda: score.view(np.int32), state, True,
                                  at_least=at_least)
        marked.append(state >> 1)
    np.testing.assert_array_equal(marked[0], marked[1])
    assert marked[1].sum() == count
    assert np.float32(np.int32(key_at_least(level)).view(np.float32)) >= level


def test_the_threshold_reference_does_not_depend_on_the_thread_count():
    import numba
    rng = np.random.default_rng(3)
    score = (rng.random((96, 80)) ** 4).astype(np.float32)
    support = rng.random(score.shape) < 0.3
    results = []
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        results.append(shrinkwrap.smooth_score(score.copy(), 1.0, support=support))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert all(r == results[0] for r in results)


def test_threshold_keeps_what_is_above_it_and_guards_with_a_word(caplog):
    score = np.full((32, 32), -1.0, np.float32)
    score[4:28, 4:28] = 0.0
    score[10:14, 10:14] = 4.0                        # |y| = 2 on 16 pixels, 0 elsewhere
    support = np.zeros((32, 32), bool)
    support[8:16, 8:16] = True
    rule = shrinkwrap.ThresholdRule("HIO", 0.5, 0.0, None, 10, 576, key="t1")
    assert rule.rescore(score.copy(), support.copy(), 0.0) == 16
    tight = shrinkwrap.ThresholdRule("HIO", 0.5, 0.0, None, 10, 576 * 1000, key="t2")
    with caplog.at_level(logging.WARNING, logger="prnf.shrinkwrap"):
        assert tight.rescore(score.copy(), support.copy(), 0.0) == tight.low > 16
    assert "would collapse the support to 16 pixels" in caplog.text


def test_threshold_options_are_checked():
    with pytest.raises(ConfigError, match="support_size=None needs"):
        phmodel.HIO(10, None, 0.9)
    with pytest.raises(ConfigError, match="leave support_size None"):
        phmodel.HIO(10, 50, 0.9, support_threshold=0.2)
    with pytest.raises(ConfigError, match="support_threshold=1.5"):
        phmodel.ERA(10, None, support_threshold=1.5)
    with pytest.raises(ConfigError, match="sigma_end=1 applies to threshold"):
        phmodel.ERA(10, 40, sigma_end=1)


@pytest.mark.parametrize("shape,radius,seed", [((64, 64), 7, 4), ((96, 96), 8, 7),
                                               ((48, 48, 48), 5, 1), ((128, 128), 20, 3)])
def test_the_loose_start_contains_the_object(shape, radius, seed):
    # the autocorrelation start covered 2,859 of a 7,577-pixel object on real data
    intensity, mask, obj = simulate_pattern(shape, radius, photons=1e7, beamstop=4, gap=1, seed=seed)
    data = prepare(check_config({}), intensity, mask)
    start = loose_support(data.amplitude, data.measured)
    inside = (obj > 0).astype(float)
    overlap = np.fft.ifftn(np.conj(np.fft.fftn(inside)) * np.fft.fftn(start)).real
    assert overlap.max() >= inside.sum() - 0.5            # some translate of the object fits
    assert start.sum() < 0.35 * start.size                # loose, not everything


def recover(intensity, mask, iterations=600, repeats=4, seed=0, **extra):
    """The ``auto`` recipe (fewer RAAR iterations), best of ``repeats`` by free eMod."""
    inputs, output = recipes.auto({"pattern_path": "x.npy", **extra}, iterations=iterations)
    inputs[0].arrays = {"pattern": intensity, "mask": mask}
    return Runner(inputs, output).run(repeats, seed=seed, keep_best=1)


@pytest.mark.parametrize("shape,radius,iterations", [((64, 64), 7, 600), ((32, 32, 32), 4, 400)])
def test_objects_are_recovered_from_no_support_information(shape, radius, iterations):
    # no support, no size: a loose start from the data and threshold shrinkwrap, best of 4 by
    # free eMod. Measured: 2D NRMSE 0.004-0.05 (6 of 6 seeds), 3D 0.04-0.09 (6 of 6)
    errors = []
    for seed in range(5):
        intensity, mask, obj = simulate_pattern(shape, radius, photons=1e7, beamstop=2, gap=1,
                                                seed=seed)
        out = recover(intensity, mask, iterations, seed=seed)
        errors.append(object_nrmse(out["sample_ret"], obj))
    assert sum(e < 0.15 for e in errors) >= 4, errors


def test_a_support_file_as_the_fixed_support(tmp_path):
    intensity, mask, obj = simulate_pattern((64, 64), 7, photons=1e7, beamstop=2, gap=1, seed=2)
    bound = ndimage.binary_dilation(obj > 0, iterations=3)
    np.save(tmp_path / "support.npy", bound.astype(np.uint8))
    out = recover(intensity, mask, repeats=2, support_path=str(tmp_path / "support.npy"),
                  support_mode="fixed")
    assert not np.any(out["support"][~bound])              # shrinkwrap stayed inside
    assert object_nrmse(out["sample_ret"], obj) < 0.15


def test_free_pixels_never_reach_the_phasing():
    # the data on free pixels may be anything: the iterations must not see it
    intensity, mask, _ = simulate_pattern((48, 48), 5, photons=1e7, beamstop=2, gap=1, seed=1)
    inp = phmodel.pInput({"pattern_path": "x.npy", "free_pixels": 0.05, "background": False},
                         arrays={"pattern": intensity, "mask": mask})
    free = np.fft.fftshift(inp.prepared().free)        # centred like the pattern (N even)
    garbage = np.where(free, intensity * 7 + 3, intensity)
    outs = []
    for pattern in (intensity, garbage):
        node = phmodel.pInput({"pattern_path": "x.npy", "free_pixels": 0.05, "background": False},
                              arrays={"pattern": pattern, "mask": mask})
        runner = Runner([node], phmodel.pOutput().after(phmodel.HIO(30, 60, 0.9).after(node)),
                        precision="double")
        outs.append(runner.run(1, seed=4))
    np.testing.assert_allclose(outs[0]["eMod"], outs[1]["eMod"], rtol=1e-9)
    assert outs[0]["free_eMod"][0] != outs[1]["free_eMod"][0]


def test_sigma_end_zero_is_kept(tmp_path):
    node = phmodel.RAAR(10, None, 0.9, support_threshold=0.2, support_sigma=2.0, sigma_end=0.0)
    assert node.params["sigma_end"] == 0.0       # 0 is falsy: it was dropped, sigma stayed 2
    inp = phmodel.pInput({"pattern_path": "x.npy"})
    runner = Runner([inp], phmodel.pOutput().after(node.after(inp)))
    runner.dump_model(tmp_path / "m.json", skeleton=True)
    loaded = Runner(loadfile=tmp_path / "m.json")
    assert next(n for n in loaded.order if n.kind == "algorithm").params["sigma_end"] == 0.0


def test_support_floor_is_relative_to_the_incoming_support(caplog):
    # the array guard (1e-4 of the eligible pixels) fires only after a sparse object has
    # collapsed; support_floor bounds the shrink relative to the support the node began with
    score = np.zeros((64, 64), np.float32)
    score[30:34, 30:34] = 4.0                        # one bright spot of 16 pixels
    support = np.zeros((64, 64), bool)
    support[16:48, 16:48] = True                     # 1,024 pixels entering the node
    free = shrinkwrap.ThresholdRule("HIO", 0.5, 0.0, None, 10, 64 * 64, key="f1")
    free.begin(int(support.sum()))
    assert free.rescore(score.copy(), support.copy(), 0.0) == 16
    floored = shrinkwrap.ThresholdRule("HIO", 0.5, 0.0, None, 10, 64 * 64, key="f2", floor=0.5)
    floored.begin(int(support.sum()))
    with caplog.at_level(logging.WARNING, logger="prnf.shrinkwrap"):
        assert floored.rescore(score.copy(), support.copy(), 0.0) == 512
    assert "support_floor 0.5 of the support the node started with" in caplog.text


def test_a_node_with_support_floor_never_shrinks_below_it():
    intensity, mask, obj = simulate_pattern((64, 64), 6, photons=1e7, beamstop=1, gap=0, seed=3)
    inp = phmodel.pInput({"pattern_path": "x.npy", "start_support": "loose"},
                         arrays={"pattern": intensity, "mask": mask})
    node = phmodel.HIO(60, None, 0.9, support_threshold=0.9, support_every=5,
                       support_floor=0.6).after(inp)
    out = Runner([inp], phmodel.pOutput().after(node)).run(1, seed=2)
    kept = int(np.count_nonzero(out["support"]))
    loose = int(np.count_nonzero(loose_support(np.sqrt(np.fft.ifftshift(intensity)),
                                               np.fft.ifftshift(mask == 0))))
    assert kept >= int(0.6 * loose) - 1
