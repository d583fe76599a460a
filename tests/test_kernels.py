"""Every Numba kernel against its NumPy twin (tests/naive.py), single and double precision."""
import numpy as np
import pytest

from prnf_algorithms import kernels
from prnf_algorithms.support import Selector, select

import naive

DTYPES = [(np.float32, np.complex64, 2e-5), (np.float64, np.complex128, 1e-12)]


def random_complex(rng, n, cdtype):
    return (rng.normal(size=n) + 1j * rng.normal(size=n)).astype(cdtype)


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
@pytest.mark.parametrize("fit_bg", [False, True])
@pytest.mark.parametrize("nchunks", [1, 3])
def test_modulus_project_and_background_match_numpy(rng, rdtype, cdtype, tol, fit_bg, nchunks):
    n, nbins = 1000, 7
    F = random_complex(rng, n, cdtype)
    F[5] = 0                                   # |F| = 0: amplitude with zero phase
    amp = rng.uniform(0, 3, n).astype(rdtype)
    measured = rng.random(n) > 0.2
    bins = rng.integers(0, nbins, n).astype(np.uint16)
    bg = (rng.uniform(0, 0.5, nbins) * fit_bg).astype(rdtype)
    want, want_err, want_ratio = naive.modulus_project(F.copy(), amp, measured, bg[bins])
    bpix = np.empty(n if fit_bg else 0, rdtype)
    if fit_bg:
        kernels.expand_shells(bins, bg, bpix)
    ratio, err_part = np.empty(n if fit_bg else 0, rdtype), np.zeros(nchunks)
    kernels.modulus_project(F, amp, measured, bpix, ratio, err_part)
    np.testing.assert_allclose(F, want, rtol=tol, atol=tol)
    assert err_part.sum() == pytest.approx(want_err, rel=1e-4 if tol > 1e-6 else 1e-10)
    if fit_bg:
        np.testing.assert_allclose(bpix, bg[bins])
        np.testing.assert_allclose(ratio, want_ratio, rtol=tol)
        sums = np.zeros((4 * nchunks, nbins))
        kernels.shell_sums(bins, ratio, sums)
        counts = np.bincount(bins[measured], minlength=nbins)
        new_bg = bg.copy()
        kernels.refit_background(sums, counts, new_bg)
        np.testing.assert_allclose(new_bg, naive.projected_background(bins, want_ratio, measured, bg),
                                   rtol=1e-4)


COEFS = {"ERA": ((0, 1, 0, 0), -1.0, 1.0, False), "HIO": ((0, 1, 1, -0.9), -1.0, 1.0, True),
         "RAAR": ((0, 1, 0.8, -0.6), -1.0, 1.0, False), "DM": ((0, 1, 1, 1), -1.0, -1.0, False),
         "HPR": ((0, 1, 1, -0.7), 0.7, 1.0, True)}


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
@pytest.mark.parametrize("algo", sorted(COEFS))
@pytest.mark.parametrize("constraint", [0, 1, 2])
def test_update_matches_numpy(rng, rdtype, cdtype, tol, algo, constraint):
    coef, hpr_gamma, pre_out, feedback = COEFS[algo]
    n, scale, count = 500, 0.25, 60
    x, y, est = (random_complex(rng, n, cdtype) for _ in range(3))
    old_support = rng.random(n) > 0.5
    score = rng.random(n).astype(np.float32)
    new_support = naive.top_n(score, count)
    threshold, last_tie = select(score.view(np.int32), count, nchunks=2)
    want_x, want_est, _, want_diff, want_norm = naive.update(
        x.copy(), y, new_support, scale, coef, hpr_gamma, constraint, est.copy(),
        np.ones(n, bool), feedback=feedback)
    support, parts = old_support.copy(), np.zeros((3, 3))
    kernels.update(x, y, score.view(np.int32), np.int32(threshold), last_tie, rdtype(scale),
                   np.array(coef, rdtype), hpr_gamma, constraint, feedback, rdtype(pre_out),
                   support, est, parts)
    np.testing.assert_array_equal(support, new_support)
    np.testing.assert_allclose(x, want_x, rtol=tol, atol=tol)
    np.testing.assert_allclose(est, want_est, rtol=tol, atol=tol)
    next_input = np.where(new_support, want_x, pre_out * want_x)
    np.testing.assert_allclose(y, next_input, rtol=tol, atol=tol)
    assert parts[:, 0].sum() == pytest.approx(want_diff, rel=1e-4)
    assert parts[:, 1].sum() == pytest.approx(want_norm, rel=1e-4)
    assert parts[:, 2].sum() == np.count_nonzero(old_support & new_support)


@pytest.mark.parametrize("rdtype,cdtype,tol", DTYPES)
def test_shrinkwrap_score_and_candidates_match_numpy(rng, rdtype, cdtype, tol):
    y = random_complex(rng, 300, cdtype)
    eligible = rng.random(300) > 0.3
    score = np.empty(300, np.float32)
    floor = np.float32(0.5).view(np.int32)
    index, key, counts = np.zeros((2, 401), np.int64), np.zeros((2, 401), np.int32), np.zeros(2, np.int64)
    kernels.shrinkwrap_score(y, rdtype(0.5), eligible, score, floor, index, key, counts)
    want = np.where(eligible, np.abs(0.5 * y) ** 2, -1.0).astype(np.float32)
    np.testing.assert_allclose(score, want, rtol=1e-5)
    found = np.concatenate([index[c, :n] for c, n in enumerate(counts)])
    np.testing.assert_array_equal(found, np.nonzero(score >= 0.5)[0])


@pytest.mark.parametrize("count", [5, 40])
def test_selector_stays_exact_while_scores_drift(rng, count):
    """The candidate shortcut and the radix fallback both give naive top-N, iteration after
    iteration, including sudden drops of every score (the shortcut must then fall back)."""
    n = 400
    selector = Selector(n, 2, count)
    y = random_complex(rng, n, np.complex64)
    eligible = np.ones(n, bool)
    score = np.empty(n, np.float32)
    for step in range(12):
        y = (y * (1 + 0.05 * rng.normal(size=n))).astype(np.complex64)
        if step == 6:
            y *= np.float32(1e-3)
        selector.score(y, np.float32(1), eligible, score)
        threshold, last_tie = selector.threshold(score.view(np.int32), count)
        keys = score.view(np.int32)
        chosen = (keys > threshold) | ((keys == threshold) & (np.arange(n) <= last_tie))
        np.testing.assert_array_equal(chosen, naive.top_n(score, count))


@pytest.mark.parametrize("count", [1, 17, 250, 299, 300, 1000])
@pytest.mark.parametrize("ties", [False, True])
def test_support_selection_is_exact_top_n(rng, count, ties):
    n = 300
    score = rng.random(n).astype(np.float32)
    if ties:
        score = np.round(score * 4).astype(np.float32) / 4     # few distinct values
    score[rng.random(n) < 0.1] = -1.0                          # outside the fixed support
    threshold, last_tie = select(score.view(np.int32), count, nchunks=3)
    keys = score.view(np.int32)
    chosen = (keys > threshold) | ((keys == threshold) & (np.arange(n) <= last_tie))
    np.testing.assert_array_equal(chosen, naive.top_n(score, count))
    assert chosen.sum() == min(count, np.count_nonzero(score >= 0))
