"""RRR: relaxed reflect-reflect (V. Elser, "Benchmark problems for phase retrieval",
SIAM J. Imaging Sci. 11, 2429 (2018); also Elser, Lan, Bendory, Notices AMS 65 (2018)).

``x <- x + beta (P_S(2 P_M x - x) - P_M x)``. With ``y = P_M x``, pixel-wise: on the support
``(1 - beta) x + beta y``, off it ``x - beta y``. beta = 1 is Douglas-Rachford (HIO with
gamma = 1); Elser recommends beta around 0.5 for hard instances.
"""
from __future__ import annotations

from prnf_algorithms.sdk import Param, ProjectionAlgorithm


class RRR(ProjectionAlgorithm):
    """RRR phasing node: ``RRR(iteration, support_size, beta=0.5, name=None, **options)``.

    The built-ins' linear update (``a_in x + b_in e`` on S, ``a_out x + b_out y`` off it)
    with RRR's coefficients.
    """

    algorithm = "RRR"
    parameters = (Param("beta", 0.5, low=0.0, high=1.0, low_open=True, doc="step size"),)

    def coefficients(self, view):
        beta = self.values["beta"]
        return {"a_in": 1.0 - beta, "b_in": beta, "a_out": 1.0, "b_out": -beta}
