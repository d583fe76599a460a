"""Recipes: phasing networks that need nothing but the data (``prnf phase``).

A recipe is an ordinary network (it can be dumped, edited and rerun with ``prnf run``); it
only chooses settings a scientist with a new pattern cannot know, the object's support and
its size in pixels among them.
"""
from __future__ import annotations

from prnf_core import pInput, pOutput

from .algorithms import ERA, RAAR

#: The ``auto`` recipe's settings, each with the reason for it.
AUTO = {
    # start: random values on a loose support from the halved autocorrelation, which
    # contains the object (the thresholded autocorrelation itself often does not)
    "start_support": "loose",
    # 3% of the measured pixels, in islands, are never fitted: their misfit ranks repeats
    "free_pixels": 0.03,
    # an incoherent background absorbs misfit the object should explain unless there is one
    "background": False,
}
#: RAAR (Luke 2005) with beta 0.9, as Hawk's ring example; then ERA to settle the estimate.
ITERATIONS, ERA_ITERATIONS, BETA = 2000, 200, 0.9
#: Threshold shrinkwrap (Marchesini 2003): 20% of the smoothed modulus' maximum, the
#: smoothing narrowing from 3 to 0.5 pixel (ending at 1 pixel recovered 3 of 6 simulated 2D
#: objects and 1 of 6 in 3D where 0.5 recovered 6 of 6), the support updated every 10
#: iterations.
THRESHOLD, SIGMA_START, SIGMA_END, EVERY = 0.2, 3.0, 0.5, 10
#: Detwinning (PyNX's DetwinSupport): after this fraction of the RAAR iterations, this many
#: RAAR iterations on the support cut at its centre of mass along the first axis, then the
#: support restored. A random start stagnates in an object/twin mixture as often as not on
#: some data; measured over 60 simulated complex 256^2 objects per case, single repeats
#: succeeded (error < 0.2) 56/60 (no beam stop) and 58/60 (3-pixel beam stop) against 54/60
#: and 52/60 without it; 128^3, 6 objects: median error 0.131 against 0.152. Cutting 2 axes
#: in 3D measured worse (0.188 against 0.172, both with a fixed final support).
DETWIN_AT, DETWIN_ITERATIONS = 0.25, 10


def auto(config, iterations=ITERATIONS, positivity=False):
    """Loose autocorrelation support, RAAR with threshold shrinkwrap and a detwinning step,
    then ERA, free pixels; 8 repeats, the best 4 by free eMod merged if within 10% of the
    best and the same solution."""
    shrinkwrap = {"support_threshold": THRESHOLD, "support_every": EVERY, "positivity": positivity}
    inp = pInput({**AUTO, **config}, name="pattern")
    early = max(1, int(round(iterations * DETWIN_AT)))
    # the smoothing narrows over all RAAR iterations as in one node: the second node starts
    # where the first ended
    sigma_mid = SIGMA_START + (SIGMA_END - SIGMA_START) * early / iterations
    raar = RAAR(early, None, BETA, support_sigma=SIGMA_START, sigma_end=sigma_mid,
                **shrinkwrap).after(inp)
    detwin = RAAR(DETWIN_ITERATIONS, None, BETA, support_rule="detwin", positivity=positivity,
                  name="detwin").after(raar)
    raar = RAAR(max(1, iterations - early), None, BETA, support_sigma=sigma_mid,
                sigma_end=SIGMA_END, **shrinkwrap).after(detwin)
    era = ERA(ERA_ITERATIONS, None, support_sigma=SIGMA_END, **shrinkwrap).after(raar)
    return [inp], pOutput().after(era)


auto.run_options = {"repeat": 8, "keep_best": 4, "match": 0.1}

RECIPES = {"auto": auto}
