"""The data stream that flows along the edges of a phasing network, one per repeat."""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.fft as sfft

from .data import PreparedData

#: iterations between two measurements of the estimate's eMod (one forward FFT of the
#: estimate each, and that iteration's fused forward FFT made again) and of the progress
#: reports
ESTIMATE_EVERY = 50

PRECISIONS = {"single": (np.float32, np.complex64), "double": (np.float64, np.complex128)}


@dataclasses.dataclass
class Stream:
    """One phasing attempt in flight.

    Attributes
    ----------
    data : PreparedData
        The measured amplitude, mask and geometry this stream is phased against.
    x : ndarray, complex
        Current estimate (support-constrained), real space, same shape as the pattern.
    support : ndarray, bool
        Current support.
    background : ndarray, float, shape (data.n_bins,)
        Radial background amplitude ``b`` per shell.
    emod, econ : ndarray, float64
        Error history along the executed path, one value per iteration. ``emod`` is
        measured on the modulus projection's input: the iterate, which for HIO, RAAR or DM
        is not the support-constrained estimate and climbs while they explore.
    emod_estimate : ndarray, float64
        eMod of the support-constrained estimate (the answer a node would hand on), sampled
        every :data:`ESTIMATE_EVERY` iterations and at a node's last one, NaN elsewhere (and
        for nodes that do not measure it).
    disposable : bool
        Set by the runner when the node about to run on this stream is its last user: the
        node may then drop ``x`` and ``support`` once it has copied them (the engine does:
        the incoming volume was held through all of the node's iterations).
    path : list of str
        Names of the algorithm nodes executed so far (branches joined with ``|``).
    """

    data: PreparedData
    x: np.ndarray
    support: np.ndarray
    background: np.ndarray
    emod: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    econ: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    path: list = dataclasses.field(default_factory=list)
    emod_estimate: np.ndarray = None
    disposable: bool = False

    def __post_init__(self):
        if self.emod_estimate is None:         # not measured: NaN beside every eMod
            self.emod_estimate = np.full(len(self.emod), np.nan)

    def model_amplitude(self):
        """``sqrt(|FFT(x)|^2 + b^2)`` of the estimate in units of ``data.scale`` (squares
        stay finite whatever the data's units), in the estimate's precision, FFT layout."""
        d = self.data
        spectrum = sfft.fftn(np.divide(self.x, d.scale, dtype=self.x.dtype), overwrite_x=True)
        model = np.abs(spectrum)
        del spectrum
        b = (self.background / d.scale).astype(model.dtype)
        for i in range(model.shape[0]):       # slab by slab: no second volume
            np.hypot(model[i], b[d.radial_bins[i]], out=model[i])
        return model

    def estimate_emod(self, pixels=None, model=None):
        """eMod of the estimate itself (one FFT) over the constrained pixels (or ``pixels``):
        the quality of the answer a node hands on.

        The per-iteration curve is measured on the modulus projection's input, which for HIO,
        RAAR or DM is the iterate, not the support-constrained estimate.
        """
        d = self.data
        pixels = d.constrained if pixels is None else pixels
        model = self.model_amplitude() if model is None else model
        total = misfit = 0.0
        for i in range(model.shape[0]):       # slab by slab: temporaries of one slab only
            a = d.amplitude[i][pixels[i]] / d.scale
            total += float(np.sum(a * a))
            misfit += float(np.sum((model[i][pixels[i]] - a) ** 2))
        return float(np.sqrt(misfit / total)) if total > 0 else 0.0

    def free_errors(self, model=None):
        """(free eMod, free Poisson deviance per pixel) on the free pixels, the misfit on data
        the phasing never saw (NaN without free pixels; the deviance only for counts);
        ``model``: the :meth:`model_amplitude` when already made."""
        d = self.data
        if d.free is None or not d.free.any():
            return float("nan"), float("nan")
        model = self.model_amplitude() if model is None else model
        emod = self.estimate_emod(d.free, model)
        if not d.counts:
            return emod, float("nan")
        counts = np.square(d.amplitude[d.free], dtype=np.float64).round()
        # in double precision: single-precision squares overflow for data in large units
        expected = np.maximum((model[d.free].astype(np.float64) * d.scale) ** 2, 1e-12)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_term = np.where(counts > 0, counts * np.log(counts / expected), 0.0)
        return emod, float(np.mean(2 * (expected - counts + log_term)))

    def ranking_error(self):
        """What ranks repeats: the free eMod when free pixels are on, else the eMod."""
        free = self.free_errors()[0]
        return free if np.isfinite(free) else self.estimate_emod()

    def release(self):
        """Drop ``x`` and ``support`` if this stream is :attr:`disposable` (nobody else will
        read them); the rest (data, background, curves, path) stays."""
        if self.disposable:
            self.x = self.support = None

    def record(self, name, emod, econ, emod_estimate=None):
        """Append one node's error curves and name to the history (``emod_estimate``: the
        estimate's sampled eMod, NaN where not measured; all NaN when not given)."""
        emod = np.asarray(emod, np.float64)
        estimate = (np.full(emod.shape, np.nan) if emod_estimate is None
                    else np.asarray(emod_estimate, np.float64))
        self.emod = np.concatenate([self.emod, emod])
        self.econ = np.concatenate([self.econ, np.asarray(econ, np.float64)])
        self.emod_estimate = np.concatenate([self.emod_estimate, estimate])
        self.path = self.path + [name]


@dataclasses.dataclass
class RunContext:
    """What a node needs besides its input streams: precision, threads and progress, and
    ``run_iterations``: the iterations of all the run's algorithm nodes over all its
    repeats on every rank (None when unknown), for work that pays back over a run (FFT
    planning)."""

    precision: str = "single"
    threads: int | None = None
    progress: object = None   # callable(node, iterations_done, total, emod, repeat) or None
    repeat: int = 0
    run_iterations: int | None = None

    @property
    def real_dtype(self):
        return PRECISIONS[self.precision][0]

    @property
    def complex_dtype(self):
        return PRECISIONS[self.precision][1]

    def report(self, node, done, total, emod):
        if self.progress is not None:
            self.progress(node, done, total, emod, self.repeat)
