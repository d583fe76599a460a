"""OSS: oversampling smoothness (Rodriguez, Xu, Chen, Huang, Miao, J. Appl. Cryst. 46, 312 (2013)).

HIO, whose region outside the support is smoothed every iteration by a Gaussian filter in
reciprocal space, ``W(q) = exp(-q^2 / (2 alpha^2))``; ``alpha`` (in pixels of q) steps down
linearly from the array size to 1 over ``steps`` equal stages, so the outside is first left
almost free and finally forced smooth, which suppresses the high-frequency noise HIO pumps
into it. A whole-array step (``after_update``) on the public iteration view, with the SDK's
cached FFTW pair.
"""
from __future__ import annotations

import functools

import numpy as np

from prnf_algorithms.sdk import Param, ProjectionAlgorithm, fft_pair


class OSS(ProjectionAlgorithm):
    """OSS phasing node: ``OSS(iteration, support_size, gamma=0.9, steps=10, name=None,
    **options)``."""

    algorithm = "OSS"
    parameters = (Param("gamma", 0.9, low=0.0, high=1.0, low_open=True, doc="HIO feedback"),
                  Param("steps", 10, "int", low=1, high=10_000, doc="filter stages"))
    feedback_on_violation = True

    def coefficients(self, view):
        return {"a_in": 0.0, "b_in": 1.0, "a_out": 1.0, "b_out": -self.values["gamma"]}   # HIO

    def alpha(self, iteration, iterations, size):
        """Filter width in q-pixels for this iteration: from ``size`` down to 1 in stages."""
        steps = self.values["steps"]
        stage = min(steps - 1, iteration * steps // max(iterations, 1))
        return size + (1.0 - size) * stage / max(steps - 1, 1)

    def after_update(self, view):
        x = view.x
        alpha = self.alpha(view.iteration, view.iterations, max(view.shape))
        pair = fft_pair(view.shape, x.dtype, view.threads)
        np.copyto(pair.buf, x)
        pair.fft()                                   # the paper filters all of x
        pair.buf *= _gaussian(view.shape, alpha, x.real.dtype.str)
        pair.ifft_unscaled()
        np.copyto(x, pair.buf, where=~view.support)


@functools.lru_cache(maxsize=4)
def _gaussian(shape, alpha, dtype):
    """``W(q)`` divided by the array size (the inverse FFT is unnormalised)."""
    q2 = sum(np.fft.fftfreq(n, 1.0 / n).reshape([-1 if i == k else 1 for i in range(len(shape))]) ** 2
             for k, n in enumerate(shape))
    return (np.exp(-0.5 * q2 / alpha ** 2) / np.prod(shape)).astype(dtype)
