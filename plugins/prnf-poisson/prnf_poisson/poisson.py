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
    """``r / rho`` of the step, with ``rho = model`` (constants come in through ``c``)."""
    return (model + np.sqrt(model * model + c.weight_term * a * a)) * c.half_step / model


# the linear update's a_in, b_in, a_out, b_out come first; then the step's own constants
rules = Rules("poisson", modulus=poisson_ratio, constants=("weight_term", "half_step"))


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
        return {"a_in": 0.0, "b_in": 1.0, "a_out": 1.0, "b_out": -self.values["gamma"],   # HIO
                "weight_term": 8 * w * (2 * w + 1), "half_step": 1 / (2 * (2 * w + 1))}
