"""ERA, HIO, DM, RAAR and HPR (ALGORITHMS.md section 3) as coefficient sets of one update.

With ``y = P_M z`` and ``S`` the support, each algorithm sets x <- a_in x + b_in y on S and
a_out x + b_out y off S. The estimate each node hands on is ``P_S y``.
"""
from __future__ import annotations

from prnf_core import check_range

from .engine import IterativeProjection


class ERA(IterativeProjection):
    """Error reduction, ``x <- P_S P_M x`` (Fienup, Appl. Opt. 21, 2758 (1982)).

    Parameters
    ----------
    iteration : int
        Iterations to run (>= 0).
    support_size : int
        Pixels in the shrinkwrapped support (>= 1, at most the array size).
    name : str, optional
    """

    algorithm = "ERA"

    def __init__(self, iteration, support_size, name=None, **options):
        super().__init__(iteration, support_size, name=name, **options)

    def rule(self, settled):
        return (0.0, 1.0, 0.0, 0.0), -1.0


class HIO(IterativeProjection):
    """Hybrid input-output (Fienup 1982): ``x <- y`` on S, ``x - gamma y`` off S.

    ``gamma`` in (0, 1] is Fienup's feedback parameter (literature beta; 0.9 is usual).
    """

    algorithm = "HIO"
    feedback_on_violation = True

    def __init__(self, iteration, support_size, gamma, name=None, **options):
        check_range("gamma", gamma, 0.0, 1.0, low_open=True)
        super().__init__(iteration, support_size, name=name, params={"gamma": gamma}, **options)

    def rule(self, settled):
        return (0.0, 1.0, 1.0, -self.params["gamma"]), -1.0


class HPR(IterativeProjection):
    """Hybrid projection reflection (Bauschke, Combettes, Luke, JOSA A 20, 1025 (2003)).

    Like HIO, but once the support has settled (overlap of successive supports above
    ``hprcoff``, in (0, 1)) a support pixel keeps ``y`` only where ``(1 + gamma)|y| >= |x|``.
    """

    algorithm = "HPR"
    feedback_on_violation = True

    def __init__(self, iteration, support_size, gamma, hprcoff=0.5, name=None, **options):
        check_range("gamma", gamma, 0.0, 1.0, low_open=True)
        check_range("hprcoff", hprcoff, 0.0, 1.0, low_open=True, high_open=True)
        super().__init__(iteration, support_size, name=name,
                         params={"gamma": gamma, "hprcoff": hprcoff}, **options)

    def rule(self, settled):
        gamma = self.params["gamma"]
        return (0.0, 1.0, 1.0, -gamma), (gamma if settled > self.params["hprcoff"] else -1.0)


class RAAR(IterativeProjection):
    """Relaxed averaged alternating reflections (Luke, Inverse Problems 21, 37 (2005)).

    ``x <- (beta/2)(R_S R_M + I) x + (1 - beta) P_M x``: ``y`` on S, ``beta x + (1 - 2 beta) y``
    off S; ``beta`` in [0, 1] (beta = 1 is Douglas-Rachford, HIO with gamma = 1).
    """

    algorithm = "RAAR"

    def __init__(self, iteration, support_size, beta, name=None, **options):
        check_range("beta", beta, 0.0, 1.0)
        super().__init__(iteration, support_size, name=name, params={"beta": beta}, **options)

    def rule(self, settled):
        beta = self.params["beta"]
        return (0.0, 1.0, beta, 1.0 - 2.0 * beta), -1.0


class DM(IterativeProjection):
    """Difference map (Elser, JOSA A 20, 40 (2003)), ``beta`` in (0, 1] (default 1).

    ``x <- x + beta (P_M f_S(x) - P_S f_M(x))`` with ``f_S(x) = P_S x + (P_S x - x)/beta`` and
    ``f_M(x) = P_M x - (P_M x - x)/beta``. For beta = 1: ``x <- x + P_M(2 P_S x - x) - P_S x``,
    one modulus projection, of ``z = 2 P_S x - x``: ``y`` on S, ``x + y`` off S. Otherwise,
    with ``y2 = P_M f_S(x)`` and ``y1 = P_M x`` (four FFTs): ``beta y2 + (1 - beta) y1`` on S,
    ``x + beta y2`` off S. Can be the first node.
    """

    algorithm = "DM"

    def __init__(self, iteration, support_size, name=None, beta=1.0, **options):
        check_range("beta", beta, 0.0, 1.0, low_open=True)
        super().__init__(iteration, support_size, name=name,
                         params={"beta": beta} if beta != 1.0 else None, **options)
        self.beta = float(beta)
        self.pre_out = -1.0 / self.beta        # f_S(x): x on S, -x / beta off S

    def rule(self, settled):
        return (0.0, 1.0, 1.0, self.beta), -1.0

    def before_update(self, loop, threshold, last_tie):
        if self.beta == 1.0:
            return
        # on the new support the update takes y = beta y2 + (1 - beta) y1 (then also the
        # estimate); off it x + beta y2. Both buffers hold N P_M(...), unscaled alike.
        y1 = loop.modulus_of(loop.x)
        on = loop.new_support()
        loop.next_input[on] = self.beta * loop.next_input[on] + (1.0 - self.beta) * y1[on]


BUILTIN = [ERA, HIO, DM, RAAR, HPR]
