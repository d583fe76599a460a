"""ERA, HIO, DM, RAAR and HPR (ALGORITHMS.md section 3) as coefficient sets of one update.

With ``y = P_M z``, ``e = P_S y`` and ``S`` the support, each algorithm sets x <- a_in x + b_in e
on S and a_out x + b_out y off S (``rules.linear``). The estimate each node hands on is ``e``.
"""
from __future__ import annotations

from prnf_core import Param

from .engine import ProjectionAlgorithm

GAMMA = Param("gamma", kind="float", low=0.0, high=1.0, low_open=True,
              doc="Fienup's feedback (literature beta; 0.9 is usual)")


class ERA(ProjectionAlgorithm):
    """Error reduction, ``x <- P_S P_M x`` (Fienup, Appl. Opt. 21, 2758 (1982)).

    ``ERA(iteration, support_size, name=None, **options)``.
    """

    algorithm = "ERA"

    def coefficients(self, view):
        return dict(a_in=0.0, b_in=1.0, a_out=0.0, b_out=0.0)


class HIO(ProjectionAlgorithm):
    """Hybrid input-output (Fienup 1982): ``x <- y`` on S, ``x - gamma y`` off S.

    ``HIO(iteration, support_size, gamma, name=None, **options)``; ``gamma`` in (0, 1].
    """

    algorithm = "HIO"
    parameters = (GAMMA,)
    feedback_on_violation = True

    def coefficients(self, view):
        return dict(a_in=0.0, b_in=1.0, a_out=1.0, b_out=-self.values["gamma"])


class HPR(ProjectionAlgorithm):
    """Hybrid projection reflection (Bauschke, Combettes, Luke, JOSA A 20, 1025 (2003)).

    Like HIO, but once the support has settled (overlap of successive supports above
    ``hprcoff``, in (0, 1)) a support pixel keeps ``y`` only where ``(1 + gamma)|y| >= |x|``.
    ``HPR(iteration, support_size, gamma, hprcoff=0.5, name=None, **options)``.
    """

    algorithm = "HPR"
    parameters = (GAMMA, Param("hprcoff", 0.5, low=0.0, high=1.0, low_open=True, high_open=True,
                               doc="support overlap from which the HPR test applies"))
    feedback_on_violation = True

    def coefficients(self, view):
        return dict(a_in=0.0, b_in=1.0, a_out=1.0, b_out=-self.values["gamma"])

    def support_test(self, view):
        return self.values["gamma"] if view.settled > self.values["hprcoff"] else -1.0


class RAAR(ProjectionAlgorithm):
    """Relaxed averaged alternating reflections (Luke, Inverse Problems 21, 37 (2005)).

    ``x <- (beta/2)(R_S R_M + I) x + (1 - beta) P_M x``: ``y`` on S, ``beta x + (1 - 2 beta) y``
    off S; ``beta`` in [0, 1] (beta = 1 is Douglas-Rachford, HIO with gamma = 1).
    ``RAAR(iteration, support_size, beta, name=None, **options)``.
    """

    algorithm = "RAAR"
    parameters = (Param("beta", kind="float", low=0.0, high=1.0, doc="relaxation"),)

    def coefficients(self, view):
        beta = self.values["beta"]
        return dict(a_in=0.0, b_in=1.0, a_out=beta, b_out=1.0 - 2.0 * beta)


class DM(ProjectionAlgorithm):
    """Difference map (Elser, JOSA A 20, 40 (2003)), ``beta`` in (0, 1] (default 1).

    ``x <- x + beta (P_M f_S(x) - P_S f_M(x))`` with ``f_S(x) = P_S x + (P_S x - x)/beta`` and
    ``f_M(x) = P_M x - (P_M x - x)/beta``. For beta = 1: ``x <- x + P_M(2 P_S x - x) - P_S x``,
    one modulus projection, of ``z = 2 P_S x - x``: ``y`` on S, ``x + y`` off S. Otherwise,
    with ``y2 = P_M f_S(x)`` and ``y1 = P_M x`` (four FFTs): ``beta y2 + (1 - beta) y1`` on S,
    ``x + beta y2`` off S. Can be the first node.
    ``DM(iteration, support_size, name=None, *, beta=1.0, **options)``.
    """

    algorithm = "DM"
    parameters = (Param("beta", 1.0, low=0.0, high=1.0, low_open=True, keyword=True,
                        doc="step (1: the classic one-projection form)"),)

    @property
    def pre_out(self):               # f_S(x): x on S, -x / beta off S
        return -1.0 / self.values["beta"]

    def coefficients(self, view):
        return dict(a_in=0.0, b_in=1.0, a_out=1.0, b_out=self.values["beta"])

    def prepare_update(self, view):
        beta = self.values["beta"]
        if beta == 1.0:
            return
        # on the new support the update takes y = beta y2 + (1 - beta) y1 (then also the
        # estimate); off it x + beta y2
        on = view.new_support
        y = view.y
        y1 = view.modulus(view.x)
        y[on] = beta * y[on] + (1.0 - beta) * y1[on]


BUILTIN = [ERA, HIO, DM, RAAR, HPR]
