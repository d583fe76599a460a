"""The embedded main job: a simulated single-particle pattern phased by spipy's example network."""
from __future__ import annotations

import os

import numpy as np

from .nodes import pInput, pMerge, pOutput
from .simulate import simulate_pattern

SHAPE, RADIUS, PHOTONS = (96, 96), 8, 1e7
#: the simulated data's file names in ``build``'s folder (``prnf demo``: a temporary folder,
#: or beside the result with --keep-data)
PATTERN, MASK = "demo_pattern.npy", "demo_mask.npy"


def build(workdir, make_runner):
    """Simulate the pattern into ``workdir`` (an existing folder; the inputs read the files
    from there, so it must outlive the run) and wire spipy's example network.

    Returns (runner, true object). Two inputs; HIO, ERA, RAAR branches; merge; DM; ERA; output
    (spipy's example with a final ERA, so that the answer is a clean projection).
    """
    from . import phmodel
    intensity, mask, truth = simulate_pattern(SHAPE, RADIUS, PHOTONS, beamstop=3, gap=1, seed=7)
    pattern_path = os.path.join(workdir, PATTERN)
    mask_path = os.path.join(workdir, MASK)
    np.save(pattern_path, intensity)
    np.save(mask_path, mask)
    support_size = int(1.2 * np.count_nonzero(truth))
    config = {"pattern_path": pattern_path, "mask_path": mask_path, "center": [n // 2 for n in SHAPE],
              "center_mask": None, "edge_mask": None, "subtract_percentile": False,
              "fixed_support_r": None, "initial_model": None,
              # the simulation has no incoherent background: a fitted one would only absorb
              # misfit (object error 0.010 with it, 0.005 without)
              "background": False}
    in0, in1 = pInput(config), pInput(config)
    first = {"positivity": True, "shrink_iterations": 100}   # shrink from the autocorrelation
    hio = phmodel.HIO(200, support_size, 0.9, **first).after(in0)
    era = phmodel.ERA(200, support_size, **first).after(in1)
    raar = phmodel.RAAR(200, support_size, 0.9, **first).after(in1)
    merge = pMerge().after(hio).after(era).after(raar)
    dm = phmodel.DM(100, support_size, positivity=True).after(merge)
    final = phmodel.ERA(200, support_size, positivity=True).after(dm)
    output = pOutput().after(final)
    return make_runner([in0, in1], output), truth
