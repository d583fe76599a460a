"""Every Numba kernel against its NumPy twin (tests/naive.py), single and double precision."""
import pickle

import numpy as np
import pytest
from numba import njit

from prnf_algorithms import fft, kernels, rules
from prnf_algorithms.engine import ProjectionAlgorithm
from prnf_algorithms.kernels import modulus
from prnf_algorithms.support import Selector, select
from prnf_core import ConfigError
from prnf_core.simulate import simulate_pattern
from prnf_core.testing import make_stream, run_node

import naive

DTYPES = [(np.float32, np.complex64, 2e-5), (np.float64, np.complex128, 1e-12)]


def random_complex(rng, n, cdtype):
    return (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(cdtype)


LINEAR = rules.linear.kernels      # the built-ins' fused kernels


def no_map(shape, rdtype):
    """The pixel map of a rule that reads none, as the engine passes it."""
    return np.broadcast_to(np.zeros(1, rdtype), shape)


def execute_of(cdtype):
    return fft.library(cdtype).execute


def rows(a):
    return a.reshape(a.shape[0], -1)


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
def test_modulus_segment_matches_numpy(rng, rdtype, cdtype, tol):
    n = 300
    F = random_complex(rng, n, cdtype)
    F[5] = 0                                   # |F| = 0: amplitude with zero phase
    amp = rng.uniform(0, 3, n).astype(rdtype)
    measured = rng.random(n) > 0.2
    bpix = rng.uniform(0, 0.5, n).astype(rdtype)
    bpix[5] = 0
    want, want_err, want_ratio = naive.modulus_project(F.copy(), amp, measured, bpix)
    ratio = np.empty(n, rdtype)
    err = modulus.modulus_segment(F, amp, measured, bpix, ratio, rules.amplitude_ratio,
                                  (rdtype(0),))
    np.testing.assert_allclose(F, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(ratio, want_ratio, rtol=tol)
    assert err == pytest.approx(want_err, rel=1e-4 if tol > 1e-6 else 1e-10)


# (512, 40): several blocks of columns and a narrower last one; (6, 5, 7): odd sizes, unaligned
@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
@pytest.mark.parametrize("fit_bg", [False, True])
@pytest.mark.parametrize("nchunks", [1, 3])
@pytest.mark.parametrize("shape", [(512, 40), (6, 5, 7), (8, 16, 16)])
@pytest.mark.parametrize("bins_dtype", [np.uint8, np.uint16])
def test_split_modulus_projection_matches_numpy(rng, rdtype, cdtype, tol, fit_bg, nchunks, shape,
                                                bins_dtype):
    """Slab FFTs, column FFTs around the modulus projection, inverse slab FFTs: N P_M z."""
    n, nbins = int(np.prod(shape)), 7
    z = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(cdtype)
    amp = (rng.uniform(0, 3, shape) * np.sqrt(n)).astype(rdtype)
    measured = rng.random(shape) > 0.2
    bins = rng.integers(0, nbins, shape).astype(bins_dtype)
    bg = (rng.uniform(0, 0.5, nbins) * np.sqrt(n)).astype(rdtype) if fit_bg else np.zeros(0, rdtype)
    F, want_err, want_ratio = naive.modulus_project(np.fft.fftn(z), amp, measured,
                                                    bg[bins] if fit_bg else 0)
    want = np.fft.ifftn(F) * n
    split = fft.get_split(shape, cdtype)
    execute = split.execute
    buf = fft.aligned_empty((shape[0], n // shape[0]), cdtype)
    buf[...] = rows(z)
    err_part, shell_part = np.zeros(nchunks), np.zeros((kernels.SHELL_ROWS * nchunks, nbins))
    kernels.slabs_fft(execute, split.slab_forward, buf, nchunks)
    LINEAR["modulus"]((rdtype(0),), execute, split.plans, buf, split.blocked(amp), split.blocked(measured),
                            split.blocked(bins), bg, split.scratch(nchunks), err_part, shell_part)
    kernels.slabs_fft(execute, split.slab_inverse, buf, nchunks)
    scale = np.abs(want).max()
    np.testing.assert_allclose(buf, rows(want), atol=tol * 10 * scale)
    assert err_part.sum() == pytest.approx(want_err, rel=1e-4 if tol > 1e-6 else 1e-10)
    if fit_bg:
        counts = np.bincount(bins[measured], minlength=nbins)
        new_bg = bg.copy()
        kernels.refit_background(shell_part, counts, new_bg)
        np.testing.assert_allclose(new_bg, naive.projected_background(
            bins.ravel(), want_ratio.ravel(), measured.ravel(), bg), rtol=1e-4)


COEFS = {"ERA": ((0, 1, 0, 0), -1.0, 1.0, False), "HIO": ((0, 1, 1, -0.9), -1.0, 1.0, True),
         "RAAR": ((0, 1, 0.8, -0.6), -1.0, 1.0, False), "DM": ((0, 1, 1, 1), -1.0, -1.0, False),
         "HPR": ((0, 1, 1, -0.7), 0.7, 1.0, True)}


def clustered(rng, shape, cdtype, where):
    """Random complex values, larger in ``where``: the object, and with it the candidates and
    the support, is clustered, as in real data (other blocks of pixels are skipped)."""
    y = random_complex(rng, int(np.prod(shape)), cdtype).reshape(shape)
    y[where] *= 5
    return y


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
@pytest.mark.parametrize("algo", sorted(COEFS))
@pytest.mark.parametrize("constraint", [0, 1, 2])
@pytest.mark.parametrize("held", ["not", "held", "anywhere"])
@pytest.mark.parametrize("keep_estimate", [False, True])
def test_update_matches_numpy(rng, rdtype, cdtype, tol, algo, constraint, held, keep_estimate):
    """The update over rows of several blocks, some off both supports, with old and new
    support in the state's bits 0 and 1, and the old estimate where ``held`` says: x on the
    old support (``not``), in ``est`` and 0 off the old support (``held``: the blocks off
    both supports skip it), in ``est`` and nonzero anywhere (``anywhere``, an incoming
    estimate: cleared and counted off the supports). The estimate is compared once all held."""
    coef, hpr_gamma, pre_out, feedback = COEFS[algo]
    shape, scale, count = (40, 1200), rdtype(0.25), 600
    x, y, est = (random_complex(rng, 48000, cdtype).reshape(shape) for _ in range(3))
    old_support = np.zeros(shape, bool)
    old_support[10:30, 550:750] = rng.random((20, 200)) > 0.5
    flags = {"not": kernels.HELD_NOT, "held": kernels.HELD, "anywhere": kernels.HELD_ANYWHERE}
    if held != "anywhere":
        est[~old_support] = 0                 # as the update leaves it
    if held == "not":
        est[old_support] = x[old_support]     # only for the NumPy twin: the kernel reads x
    new_support = np.zeros(shape, bool)
    new_support[12:32, 600:700] = naive.top_n(rng.random(2000), count).reshape(20, 100)
    want_x, want_est, _, want_diff, want_norm = naive.update(
        x.copy(), y, new_support, scale, coef, hpr_gamma, constraint, est.copy(),
        np.ones(shape, bool), feedback=feedback)
    if held == "not":
        est = random_complex(rng, 48000, cdtype).reshape(shape)   # never read
    state, parts = (old_support + 2 * new_support).astype(np.uint8), np.zeros((3, 3))
    held_flags = np.full(kernels.held_shape(shape), flags[held], np.uint8)
    coef = tuple(rdtype(c) for c in coef)
    lean_rule = (not keep_estimate and rules.linear_keeps_e(coef) and hpr_gamma < 0
                 and not (feedback and constraint == 2))            # as the engine decides
    LINEAR["update"](coef, execute_of(cdtype), 0, x, y, scale, rdtype(hpr_gamma), constraint,
                     feedback, rdtype(pre_out), state, est, held_flags, lean_rule,
                     no_map(shape, rdtype), parts)
    np.testing.assert_array_equal(state, new_support)
    np.testing.assert_allclose(x, want_x, rtol=tol, atol=tol)
    next_input = np.where(new_support, want_x, pre_out * want_x)
    np.testing.assert_allclose(y, next_input, rtol=tol, atol=tol)
    assert parts[:, 0].sum() == pytest.approx(want_diff, rel=1e-4)
    assert parts[:, 1].sum() == pytest.approx(want_norm, rel=1e-4)
    assert parts[:, 2].sum() == np.count_nonzero(old_support & new_support)
    lean = not keep_estimate and (algo in ("ERA", "RAAR", "DM") or (algo == "HIO" and constraint < 2))
    touched = held_flags[10:32, 1]            # the blocks holding the supports
    assert np.all(touched == kernels.HELD_NOT) if lean else not np.any(touched == kernels.HELD_NOT)
    kernels.hold_estimate(x, state, est, held_flags, 3)
    np.testing.assert_allclose(est, want_est, rtol=tol, atol=tol)
    assert np.all(held_flags != kernels.HELD_NOT)


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
def test_update_then_slab_fft(rng, rdtype, cdtype, tol):
    """With a plan, the update leaves the slab FFTs of the next FFT input in ``y``."""
    shape = (4, 6, 10)
    x, y = (random_complex(rng, 240, cdtype) for _ in range(2))
    support = naive.top_n(rng.random(240), 50)
    split = fft.get_split(shape, cdtype)
    buf = fft.aligned_empty((4, 60), cdtype)
    buf[...] = rows(y.reshape(shape))
    state = (2 * support).astype(np.uint8)
    LINEAR["update"](tuple(rdtype(c) for c in (0, 1, 1, 1)), split.execute, split.slab_forward,
                     rows(x.reshape(shape)), buf, rdtype(0.5), rdtype(-1), 0, False, rdtype(-1),
                     rows(state.reshape(shape)), np.zeros((4, 60), cdtype),
                     np.zeros(kernels.held_shape((4, 60)), np.uint8), True, no_map((4, 60), rdtype),
                     np.zeros((2, 3)))
    np.testing.assert_array_equal(state, support)
    want = np.fft.fftn(np.where(support, x, -x).reshape(shape), axes=(1, 2))   # DM: pre_out -1
    np.testing.assert_allclose(buf, rows(want), atol=tol * 10 * np.abs(want).max())


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
@pytest.mark.parametrize("transform", [False, True])
def test_score_slabs_and_candidates_match_numpy(rng, rdtype, cdtype, tol, transform):
    """The candidates above the floor of the scores |0.5 y|^2 (after the inverse slab FFTs if
    asked), across blocks that are skipped or not; their keys are the scores' exact bits,
    as the score image pass computes them."""
    shape = (40, 20, 60)          # slabs dealt out to both chunks in groups (GROUP_BYTES)
    y = clustered(rng, shape, cdtype, (slice(None), slice(5, 8)))
    eligible = rng.random(shape) > 0.3
    split = fft.get_split(shape, cdtype)
    buf = fft.aligned_empty((40, 1200), cdtype)
    buf[...] = rows(y)
    plan = split.slab_inverse if transform else 0
    want_y = np.fft.ifftn(y, axes=(1, 2)) * 1200 if transform else y
    want = np.where(eligible, np.abs(0.5 * want_y) ** 2, -1.0).astype(np.float32)
    floor = np.float32(np.quantile(want, 0.99)).view(np.int32)      # about 480 candidates
    index, key, counts = np.zeros((2, 1001), np.int64), np.zeros((2, 1001), np.int32), np.zeros(2, np.int64)
    LINEAR["score"]((rdtype(0),), split.execute, plan, buf, rdtype(0.5), rows(eligible), floor,
                    index, key, counts, np.empty((1, 0), np.float32))
    score = np.empty((40, 1200), np.float32)
    LINEAR["score_image"]((rdtype(0),), buf, rdtype(0.5), rows(eligible), score, 2)
    np.testing.assert_allclose(score, rows(want), rtol=1e-5, atol=1e-6 * want.max())
    found = np.concatenate([index[c, :n] for c, n in enumerate(counts)])
    found_keys = np.concatenate([key[c, :n] for c, n in enumerate(counts)])
    keys = score.ravel().view(np.int32)
    np.testing.assert_array_equal(np.sort(found), np.nonzero(keys >= floor)[0])
    np.testing.assert_array_equal(found_keys, keys[found])
    assert 0 < found.size < 1000 and counts.min() > 0          # both chunks found some


@pytest.mark.parametrize("count", [5, 40])
def test_selector_stays_exact_while_scores_drift(rng, count):
    """The candidate shortcut and the radix fallback both mark naive top-N, iteration after
    iteration, including sudden drops of every score (the shortcut must then fall back)."""
    n = 400
    selector = Selector(2, count)
    y = random_complex(rng, n, np.complex64)
    eligible = np.ones((4, 100), bool)
    fallbacks = []

    def all_keys():
        fallbacks.append(step)
        score = np.empty((4, 100), np.float32)
        LINEAR["score_image"]((np.float32(0),), rows(y.reshape(4, 100)), np.float32(1), eligible,
                              score, 2)
        return score.ravel().view(np.int32)

    for step in range(12):
        y = (y * (1 + 0.05 * rng.normal(size=n))).astype(np.complex64)
        if step == 6:
            y *= np.float32(1e-3)
        selector.score(LINEAR["score"], (np.float32(0),), rows(y.reshape(4, 100)), np.float32(1),
                       eligible)
        state = (rng.random(n) > 0.5).astype(np.uint8)          # the old support: kept
        old = state.copy()
        selector.select(count, all_keys, state)
        np.testing.assert_array_equal(state & 1, old)
        np.testing.assert_array_equal(state >> 1, naive.top_n(naive.score(y, 1, True), count))
    assert 0 in fallbacks and 6 in fallbacks and len(fallbacks) < 6


@pytest.mark.parametrize("cdtype", [np.complex64, np.complex128])
def test_the_score_pass_stores_the_scores_when_asked(rng, cdtype):
    """An updating iteration's scores are stored by the score pass itself (issue 31), the
    same as the NumPy twin's, and the candidates are those of a pass that stores nothing."""
    from prnf_algorithms.support import Selector
    y = random_complex(rng, 400, cdtype).reshape(4, 100)
    eligible = rng.random((4, 100)) > 0.2
    image = np.full((4, 100), np.nan, np.float32)
    plain, storing = Selector(2, 30), Selector(2, 30)
    for selector in (plain, storing):
        selector.floor = np.float32(0.5).view(np.int32)
    scale = y.real.dtype.type(0.5)
    plain.score(LINEAR["score"], (scale * 0,), y, scale, eligible)
    storing.score(LINEAR["score"], (scale * 0,), y, scale, eligible, image=image)
    np.testing.assert_allclose(image, naive.score(y, 0.5, eligible), rtol=1e-6)
    assert np.array_equal(plain.cand_count, storing.cand_count)
    for c in range(2):
        n = plain.cand_count[c]
        assert np.array_equal(plain.cand_index[c, :n], storing.cand_index[c, :n])
        assert np.array_equal(plain.cand_key[c, :n], storing.cand_key[c, :n])


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("count", [1, 40, 300])
def test_candidates_threshold_takes_lowest_tied_indices_in_any_order(rng, ties, count):
    """Candidates come per chunk, slabs dealt out in turn: not in index order."""
    n = 300
    score = rng.random(n).astype(np.float32)
    if ties:
        score = np.round(score * 8).astype(np.float32) / 8
    order = rng.permutation(n)
    index, key = np.zeros((2, n), np.int64), np.zeros((2, n), np.int32)   # two chunks' rows
    index[0, :120], index[1, :180] = order[:120], order[120:]
    key[0, :120], key[1, :180] = score.view(np.int32)[order[:120]], score.view(np.int32)[order[120:]]
    state = np.zeros(n, np.uint8)
    threshold, last_tie = kernels.candidates_threshold(
        index, key, np.array([120, 180]), count, np.empty(n, np.int64), np.empty(n, np.int32), state)
    keys = score.view(np.int32)
    chosen = (keys > threshold) | ((keys == threshold) & (np.arange(n) <= last_tie))
    np.testing.assert_array_equal(chosen, naive.top_n(score, count))
    np.testing.assert_array_equal(state, 2 * chosen)


@pytest.mark.parametrize("count", [1, 17, 250, 299, 300, 1000])
@pytest.mark.parametrize("ties", [False, True])
def test_support_selection_is_exact_top_n(rng, count, ties):
    n = 300
    score = rng.random(n).astype(np.float32)
    if ties:
        score = np.round(score * 4).astype(np.float32) / 4     # few distinct values
    score[rng.random(n) < 0.1] = -1.0                          # outside the fixed support
    keys = score.view(np.int32)
    threshold, last_tie = select(keys, count, nchunks=3)
    state = (rng.random(n) > 0.5).astype(np.uint8)             # the old support: kept
    old = state.copy()
    kernels.mark_chosen(keys, np.int32(threshold), last_tie, state, 3)
    chosen = naive.top_n(score, count)
    np.testing.assert_array_equal(state, old + 2 * chosen)
    assert chosen.sum() == min(count, np.count_nonzero(score >= 0))


def test_wisdom_says_whether_it_was_kept(tmp_path, monkeypatch):
    # the planning message said "kept as wisdom in ..." even when the file could not be written
    from prnf_algorithms import fft
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path))
    assert fft.save_wisdom() is True and (tmp_path / "fftw_wisdom.json").is_file()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("PRNF_CACHE_DIR", str(tmp_path / "file" / "cache"))   # under a file
    assert fft.save_wisdom() is False


# Named constants (issue 33): one rule written both ways, the engine's results bit for bit
@njit(inline="always")
def _poisson_by_position(a, model, c):
    return (model + np.sqrt(model * model + c[4] * a * a)) * c[5] / model


@njit(inline="always")
def _poisson_by_name(a, model, c):
    return (model + np.sqrt(model * model + c.weight_term * a * a)) * c.half_step / model


BY_POSITION = rules.Rules("test_by_position", modulus=_poisson_by_position)
BY_NAME = rules.Rules("test_by_name", modulus=_poisson_by_name,
                      constants=("weight_term", "half_step"))


class _PoissonTwin(ProjectionAlgorithm):
    algorithm = "PoissonTwin"
    feedback_on_violation = True
    form = "tuple"

    def coefficients(self, view):
        w = 0.7
        values = 0.0, 1.0, 1.0, -0.9, 8 * w * (2 * w + 1), 1 / (2 * (2 * w + 1))
        return dict(zip(self.rules.constants, values)) if self.form == "names" else values


def test_named_constants_are_packed_in_the_declared_order():
    assert BY_NAME.constants == rules.LINEAR + ("weight_term", "half_step")
    assert BY_POSITION.constants == rules.LINEAR and BY_POSITION.named is None
    assert rules.linear.constants == rules.LINEAR and rules.linear.named is None
    names = dict(a_in=0, b_in=1, a_out=1, b_out=-0.5, weight_term=2, half_step=0.25)
    for dtype in (np.float32, np.float64):
        by_name = BY_NAME.pack(names, dtype)
        by_place = BY_NAME.pack((0, 1, 1, -0.5, 2, 0.25), dtype)   # the tuple form still works
        assert by_name == by_place and type(by_name) is BY_NAME.named
        assert by_name.weight_term == by_name[4] == 2 and type(by_name.half_step) is dtype
        plain = rules.linear.pack(dict(a_in=0, b_in=1, a_out=1, b_out=-0.5), dtype)
        assert type(plain) is tuple and plain == (0, 1, 1, -0.5)       # the built-ins' kernels
        a, model = dtype(3), dtype(1.5)
        assert (_poisson_by_name.py_func(a, model, by_name)
                == _poisson_by_position.py_func(a, model, tuple(by_place)))
    # Numba's disk cache keeps the class by module and name: it must be found again there
    assert pickle.loads(pickle.dumps(BY_NAME.named)) is BY_NAME.named
    with pytest.raises(ConfigError, match="lacks half_step; gives unknown half.*the constants: "
                                          "a_in, b_in, a_out, b_out, weight_term, half_step"):
        BY_NAME.pack({**{k: v for k, v in names.items() if k != "half_step"}, "half": 1}, float)
    with pytest.raises(ConfigError, match="gave 4 values for the 6 constants"):
        BY_NAME.pack((0, 1, 1, -0.5), float)
    unnamed = rules.Rules("unnamed", update=rules.linear_update)    # a rule of its own
    assert unnamed.constants is None and unnamed.pack([1, 2], float) == (1.0, 2.0)
    with pytest.raises(ConfigError, match="declare no constants.*constants=\\('w'\\)"):
        unnamed.pack({"w": 1}, float)
    with pytest.raises(ValueError, match="named twice: a_in"):
        rules.Rules("twice", modulus=_poisson_by_name, constants=("w", "a_in"))


@pytest.mark.parametrize("precision", ["single", "double"])
def test_named_constants_give_the_tuple_forms_results_bit_for_bit(precision):
    """A rule reading ``c.weight_term`` runs the same arithmetic as one reading ``c[4]``:
    float32/complex64 and float64/complex128, the background fitted, both coefficient forms
    on the named rules."""
    intensity, _, obj = simulate_pattern((32, 32), 4, photons=1e6, beamstop=1, gap=0, seed=1)
    start = obj + 0.3 * np.random.default_rng(2).random(obj.shape)
    runs = []
    for rule_set, form in ((BY_POSITION, "tuple"), (BY_NAME, "names"), (BY_NAME, "tuple")):
        stream, ctx = make_stream(intensity, x=start, support=obj > 0, precision=precision,
                                  background=True)
        node_class = type("Twin", (_PoissonTwin,), {"rules": rule_set, "form": form})
        runs.append(run_node(node_class(6, int(np.count_nonzero(obj)) + 20), stream, ctx))
    assert runs[0].x.dtype == ctx.complex_dtype
    for out in runs[1:]:
        np.testing.assert_array_equal(out.x, runs[0].x)
        np.testing.assert_array_equal(out.support, runs[0].support)
        np.testing.assert_array_equal(out.background, runs[0].background)
        np.testing.assert_array_equal(out.emod, runs[0].emod)
        np.testing.assert_array_equal(out.econ, runs[0].econ)
