"""Whether a result is to be trusted, in words: a low eMod alone does not say so.

Two checks a scientist makes by eye, made for every result (ALGORITHMS.md section 2,
"judging a result"):

- **Agreement**: independent random starts that converge to one object agree after
  alignment (overlap ``|<o_k, o_best>| / (||o_k|| ||o_best||)``, see
  :func:`prnf_core.merge.agreement`). If no other repeat agrees with the merged one, there
  is no consistent solution, whatever the errors say.
- **Support against the data**: the support's own autocorrelation (every pixel pair) should
  cover a good part of where the data's autocorrelation stands above its noise (every
  difference of two object points). Measured with the true supports: 0.95
  (simulated 2D objects), 0.20 (the same behind a 3-pixel beam stop, whose masking widens
  the data's autocorrelation), 0.42 (a 10-pixel object in 48^2), 0.84 (the ESRF logo);
  0.14 for the ring PRNF phases from the Hawk data (real, masked centre; no true support);
  supports collapsed to a few pixels: 0.001-0.004 (the logo with a 0.2-of-maximum
  threshold). No upper bound: a support looser than the object is ordinary (spipy's
  example network with a support 1.2 times the object measured 1.67 with error 0.005).
"""
from __future__ import annotations

import numpy as np

from .merge import MIN_AGREEMENT

#: the support's autocorrelation below this fraction of the data's: collapsed (measured:
#: true supports 0.20-0.95, a phased real ring 0.14, collapsed ones 0.001-0.004)
EXTENT_LOW = 0.05


def support_extent(support, amplitude, measured):
    """Pixels covered by the autocorrelation of ``support`` (bool: every pixel pair) over
    those where the data's autocorrelation stands above its noise
    (:func:`data.autocorrelation_extent`, which smoothing and a masked beam stop widen)."""
    from scipy import fft as sfft       # single precision stays single (a 3D volume)
    from .data import autocorrelation_extent
    data_extent, _ = autocorrelation_extent(amplitude, measured)
    spectrum = np.abs(sfft.rfftn(support.astype(np.float32))) ** 2
    own = sfft.irfftn(spectrum, s=support.shape) > 0.5
    count = np.count_nonzero(data_extent)
    return float(np.count_nonzero(own)) / count if count else float("nan")


def verdict(out):
    """A dict: ``consistent`` (bool or None when untested), ``agreeing`` (merged repeats
    agreeing with the reference, itself included), ``repeats`` (run), ``support_pixels``,
    ``support_extent`` and ``words``, one line a user reads first."""
    agreements = np.asarray(out.get("agreement", []), dtype=float)
    repeats = int(out["repeat"]) * int(out["ranks"])
    agreeing = int(np.count_nonzero(agreements >= MIN_AGREEMENT))
    support = np.asarray(out["support"]) > 0.5
    extent = support_extent(support, out["input_amp"], ~np.asarray(out["input_mask"], bool))
    consistent = None if repeats < 2 else agreeing >= 2
    problems = []
    if consistent is False:
        problems.append(f"no consistent solution: no other of the {repeats} repeats agrees with "
                        f"the best after alignment (overlap >= {MIN_AGREEMENT:g}); run more "
                        "repeats or change the recipe before trusting this object")
    if extent < EXTENT_LOW:
        problems.append(f"support collapsed: its autocorrelation covers {extent:.2f} of the "
                        "data's (measured: true supports 0.20-0.95, a real ring phased 0.14); the "
                        "object is likely a fragment")
    if problems:
        words = "NOT TO BE TRUSTED: " + "; ".join(problems)
    elif consistent is None:
        words = (f"one repeat: agreement untested; support autocorrelation {extent:.2f} of "
                 "the data's")
    else:
        words = (f"consistent: {agreeing} of {repeats} repeats agree after alignment; support "
                 f"autocorrelation {extent:.2f} of the data's")
    return {"consistent": consistent, "trusted": not problems, "agreeing": agreeing,
            "repeats": repeats, "support_pixels": int(np.count_nonzero(support)),
            "support_extent": extent, "words": words}
