# my_rrr/plugin.py
from prnf_algorithms.sdk import Param, ProjectionAlgorithm, hookimpl   # the plugin API


class RRR(ProjectionAlgorithm):
    """Relaxed reflect-reflect (Elser 2018): x <- x + beta (P_S(2 P_M x - x) - P_M x)."""

    algorithm = "RRR"                      # the name users write: phmodel.RRR(...)
    # one declaration per parameter: checks, model files, `prnf plugins`, project keys
    parameters = (Param("beta", 0.5, low=0.0, high=1.0, low_open=True, doc="step size"),)

    def coefficients(self, view):
        # the built-in linear rule: x <- c0 x + c1 e on the support S (e = P_S y, y = P_M x),
        # c2 x + c3 y off it; view.settled, view.iteration... are there when needed
        beta = self.values["beta"]
        return 1.0 - beta, beta, 1.0, -beta


@hookimpl
def prnf_register_algorithms():
    return [RRR]
