# my_rrr/plugin.py
from prnf_algorithms import IterativeProjection    # fused Numba kernels + split FFTW plans
from prnf_core import check_range, hookimpl


class RRR(IterativeProjection):
    """Relaxed reflect-reflect (Elser 2018): x <- x + beta (P_S(2 P_M x - x) - P_M x)."""

    algorithm = "RRR"                      # the name users write: phmodel.RRR(...)

    def __init__(self, iteration, support_size, beta=0.5, name=None, **options):
        check_range("beta", beta, 0.0, 1.0, low_open=True)
        super().__init__(iteration, support_size, name=name, params={"beta": beta}, **options)

    def rule(self, settled):
        # x <- a_in x + b_in y on the support S, a_out x + b_out y off it (y = P_M x).
        # settled: overlap |S_old & S_new| / |S_old | S_new| of the last support update (0
        # before the first); the second value is HPR's gamma, < 0 for no HPR test.
        beta = self.params["beta"]
        return (1.0 - beta, beta, 1.0, -beta), -1.0


@hookimpl
def prnf_register_algorithms():
    return [RRR]
