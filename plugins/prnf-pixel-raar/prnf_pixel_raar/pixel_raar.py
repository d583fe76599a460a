"""PixelRAAR: RAAR (Luke, Inverse Problems 21, 37 (2005)) whose relaxation ``beta`` is a map.

``y`` on the support, ``beta(r) x + (1 - 2 beta(r)) y`` off it: a larger ``beta`` where the
object is thought to end (a known shape, a beam-stop shadow) holds the iterate there, a
smaller one lets it move. The map is a parameter: model files store it. A pointwise rule,
fused by the engine into its update pass.
"""
from __future__ import annotations

from numba import njit

from prnf_algorithms.sdk import Param, ProjectionAlgorithm, Rules


@njit(inline="always")
def update(xr, xi, er, ei, yr, yi, inside, outside, c, m):
    # m: this pixel's beta; c.one = 1 (a literal 1 would make float32 arithmetic float64)
    off = c.one - m - m
    return (inside * er + outside * (m * xr + off * yr),
            inside * ei + outside * (m * xi + off * yi))


rules = Rules("pixel_raar", update=update, keeps_e=lambda c: True, pixel_map=True,
              constants=("one",))


class PixelRAAR(ProjectionAlgorithm):
    """``PixelRAAR(iteration, support_size, beta, name=None, **options)``; ``beta``: an array
    of the data's shape, values in [0, 1]."""

    algorithm = "PixelRAAR"
    parameters = (Param("beta", kind="array", low=0.0, high=1.0, doc="relaxation per pixel"),)
    rules = rules

    def coefficients(self, view):
        return {"one": 1.0}

    def pixel_map(self, data):
        return self.values["beta"]
