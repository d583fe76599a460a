"""OSS: oversampling smoothness (Rodriguez, Xu, Chen, Huang, Miao, J. Appl. Cryst. 46, 312 (2013)).

HIO, whose region outside the support is smoothed every iteration by a Gaussian filter in
reciprocal space, ``W(q) = exp(-q^2 / (2 alpha^2))``; ``alpha`` (in pixels of q) steps down
linearly from the array size to 1 over ``steps`` equal stages, so the outside is first left
almost free and finally forced smooth, which suppresses the high-frequency noise HIO pumps
into it.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

from prnf_algorithms import IterativeProjection
from prnf_core import check_range


class OSS(IterativeProjection):
    """OSS phasing node.

    Parameters
    ----------
    iteration : int
        Iterations to run.
    support_size : int
        Pixels in the shrinkwrapped support.
    gamma : float
        HIO feedback in (0, 1] (0.9 in the paper).
    steps : int
        Number of filter stages (10 in the paper).
    name : str, optional
    """

    algorithm = "OSS"
    feedback_on_violation = True

    def __init__(self, iteration, support_size, gamma=0.9, steps=10, name=None, **options):
        check_range("gamma", gamma, 0.0, 1.0, low_open=True)
        check_range("steps", steps, 1, 10_000)
        super().__init__(iteration, support_size, name=name,
                         params={"gamma": gamma, "steps": int(steps)}, **options)

    def rule(self, settled):
        return (0.0, 1.0, 1.0, -self.params["gamma"]), -1.0

    def alpha(self, iteration, iterations, size):
        """Filter width in q-pixels for this iteration: from ``size`` down to 1 in stages."""
        steps = self.params["steps"]
        stage = min(steps - 1, iteration * steps // max(iterations, 1))
        return size + (1.0 - size) * stage / max(steps - 1, 1)

    def after_update(self, loop, iteration, iterations):
        shape = loop.shape
        alpha = self.alpha(iteration, iterations, max(shape))
        x = loop.x.reshape(shape)
        outside = ~loop.support.reshape(shape)
        smooth = sfft.ifftn(sfft.fftn(x) * _gaussian(shape, alpha))   # the paper filters all of x
        x[outside] = smooth[outside]
        loop.next_input[:] = loop.x        # pre_out is 1: the next FFT input is x itself


def _gaussian(shape, alpha):
    q2 = sum(np.fft.fftfreq(n, 1.0 / n).reshape([-1 if i == k else 1 for i in range(len(shape))]) ** 2
             for k, n in enumerate(shape))
    return np.exp(-0.5 * q2 / alpha ** 2)
