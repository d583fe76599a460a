"""PoissonHIO: HIO whose modulus projection is a proximal step on the Poisson likelihood.

For counts ``I = a^2`` and a model ``F`` of modulus ``rho``, the step minimises
``w (|u|^2 - I log |u|^2) + |u - F|^2 / 2`` (the Poisson negative log-likelihood, weight
``w``, kept near ``F``): ``u`` has ``F``'s phase and modulus
``r = (rho + sqrt(rho^2 + 8 w (2 w + 1) I)) / (2 (2 w + 1))``. ``w -> infinity`` gives the
projection ``r = a``; a finite ``w`` trusts faint pixels less than bright ones, as the
likelihood does (maximum-likelihood phasing, Thibault & Guizar-Sicairos, New J. Phys. 14,
063004 (2012)). The step is homogeneous in the data's scale. A pointwise rule, fused by the
engine into its modulus pass.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from prnf_algorithms.sdk import Param, ProjectionAlgorithm, Rules


@njit(inline="always")
def poisson_ratio(a, model, c):
    # c[4] = 8 w (2 w + 1), c[5] = 1 / (2 (2 w + 1)): constants come in through c
    return (model + np.sqrt(model * model + c[4] * a * a)) * c[5] / model


rules = Rules("poisson", modulus=poisson_ratio)


class PoissonHIO(ProjectionAlgorithm):
    """``PoissonHIO(iteration, support_size, gamma, weight=1.0, name=None, **options)``."""

    algorithm = "PoissonHIO"
    parameters = (Param("gamma", kind="float", low=0.0, high=1.0, low_open=True,
                        doc="HIO feedback"),
                  Param("weight", 1.0, low=0.0, low_open=True,
                        doc="likelihood weight w (large: the plain projection)"))
    rules = rules
    feedback_on_violation = True

    def coefficients(self, view):
        w = self.values["weight"]
        return 0.0, 1.0, 1.0, -self.values["gamma"], 8 * w * (2 * w + 1), 1 / (2 * (2 * w + 1))
