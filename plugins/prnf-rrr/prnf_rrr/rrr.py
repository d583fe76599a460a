"""RRR: relaxed reflect-reflect (V. Elser, "Benchmark problems for phase retrieval",
SIAM J. Imaging Sci. 11, 2429 (2018); also Elser, Lan, Bendory, Notices AMS 65 (2018)).

``x <- x + beta (P_S(2 P_M x - x) - P_M x)``. With ``y = P_M x``, pixel-wise: on the support
``(1 - beta) x + beta y``, off it ``x - beta y``. beta = 1 is Douglas-Rachford (HIO with
gamma = 1); Elser recommends beta around 0.5 for hard instances.
"""
from __future__ import annotations

from prnf_algorithms import IterativeProjection
from prnf_core import check_range


class RRR(IterativeProjection):
    """RRR phasing node.

    Parameters
    ----------
    iteration : int
    support_size : int
    beta : float
        Step size in (0, 1] (default 0.5).
    name : str, optional
    """

    algorithm = "RRR"

    def __init__(self, iteration, support_size, beta=0.5, name=None, **options):
        check_range("beta", beta, 0.0, 1.0, low_open=True)
        super().__init__(iteration, support_size, name=name, params={"beta": beta}, **options)

    def rule(self, settled):
        beta = self.params["beta"]
        return (1.0 - beta, beta, 1.0, -beta), -1.0
