"""The iteration loop every projection algorithm shares (one forward and one inverse FFT).

An algorithm is a set of coefficients for one fused update (ptypy's coefficient mixins):
``x <- a_in x + b_in y`` on the support, ``a_out x + b_out y`` off it, with ``y = P_M(z)``
and ``z = x`` on the support, ``pre_out * x`` off it (``pre_out = -1`` gives DM's
``2 P_S x - x``). The FFTs run in halves (``fft.SplitPlans``) with the work between them done
on data still in cache. Per iteration: column FFTs around the modulus projection (background,
eMod), inverse slab FFTs with the shrinkwrap score, the O(n) support selection, then one
update that applies the new support, writes the estimate, the eCon sums and the next FFT
input, and runs the next forward slab FFTs. Where the rule keeps ``y`` on the support (every
built-in algorithm, unless an HPR test or positivity feedback applies), the estimate there is
``x`` itself and is not stored until the node hands it on (``kernels.update_slabs``).
"""
from __future__ import annotations

import glob
import logging
import os

import numpy as np

from prnf_core import AlgorithmNode, ConfigError, check_range

from . import _threads, fft, kernels, rules, shrinkwrap, support

log = logging.getLogger(__name__)
#: Threshold shrinkwrap updates the support every this many iterations unless a node says.
DEFAULT_EVERY = 10


class _Workspace:
    """Per (data, precision) arrays, reused by every node: amplitude, mask and shells in the
    block order of the column pass, the fixed support as ``(n0, R)``."""

    def __init__(self, data, rdtype, split):
        # amplitudes in units of data.scale: the iterations never see the data's own units
        self.amp = split.blocked(np.asarray(data.amplitude / data.scale, dtype=rdtype))
        self.measured = split.blocked(data.constrained)     # free pixels float like masked ones
        # unsigned shells (no negative-index wrap-around checks in the kernels), as narrow as
        # they fit: the column pass streams them from memory with amplitude and mask
        self.bins = split.blocked(data.radial_bins.astype(np.min_scalar_type(data.n_bins - 1)))
        self.shell_counts = np.bincount(self.bins[self.measured], minlength=data.n_bins)
        self.sum_a2 = float(np.sum(self.amp.astype(np.float64)[self.measured] ** 2))
        fixed = data.fixed_support if data.fixed_support is not None else np.ones(data.shape, bool)
        self.eligible = np.ascontiguousarray(fixed).reshape(data.shape[0], -1)
        self.n_eligible = int(np.count_nonzero(self.eligible))


def overrides(node, method):
    return getattr(type(node), method) is not getattr(IterativeProjection, method)


def workspace(data, rdtype, split):
    cache = data.__dict__.setdefault("_workspaces", {})
    key = np.dtype(rdtype).str
    if key not in cache:
        cache[key] = _Workspace(data, rdtype, split)
    return cache[key]


class IterativeProjection(AlgorithmNode):
    """Base class of projection algorithms; subclasses define :meth:`rule`.

    A subclass passes its own parameters as ``params={"beta": beta}`` (they are stored,
    written to model files and given back to ``__init__`` on loading) and forwards
    ``**options``; an unknown keyword is a TypeError, never silently kept.

    Keyword options shared by every algorithm (defaults keep the seed's behaviour):
    ``positivity`` (real part >= 0 in the support), ``real`` (real object),
    ``support_sigma`` (Gaussian smoothing, in pixels, of ``|y|`` before shrinkwrap; 0 = none),
    ``shrink_iterations`` (over this many first iterations the support shrinks linearly from
    the incoming support's size to ``support_size``; 0 = exactly ``support_size`` throughout).
    """

    rules = rules.linear           # the pointwise rules the engine fuses (rules.py)
    pre_out = 1.0                  # FFT input off the support is pre_out * x (DM: -1)
    feedback_on_violation = False  # HIO-type: support pixels failing positivity get feedback

    def __init__(self, iteration, support_size, name=None, positivity=False, real=False,
                 support_sigma=0.0, shrink_iterations=0, support_threshold=None,
                 sigma_end=None, support_every=None, params=None):
        for flag, value in (("positivity", positivity), ("real", real)):
            if not isinstance(value, (bool, np.bool_)):   # 'no' is truthy: it switched it on
                raise ConfigError(f"{flag}={value!r}: give True or False")
        check_range("support_sigma", support_sigma, 0.0, 1e6)
        check_range("shrink_iterations", shrink_iterations, 0, 1e12)
        _check_threshold_options(support_size, support_threshold, sigma_end, support_every,
                                 shrink_iterations)
        extra = {k: v for k, v in (("positivity", positivity), ("real", real),
                                   ("support_sigma", support_sigma),
                                   ("shrink_iterations", shrink_iterations),
                                   ("support_threshold", support_threshold),
                                   ("support_every", support_every)) if v}
        if sigma_end is not None:           # 0 is a value: no smoothing at the end
            extra["sigma_end"] = sigma_end
        super().__init__(iteration, support_size, name=name, **(params or {}), **extra)
        self.constraint = 2 if positivity else (1 if real else 0)
        self.support_sigma = float(support_sigma)

    def rule(self, settled):
        """Return ``((a_in, b_in, a_out, b_out), hpr_gamma)`` for the next iteration.

        ``settled`` is the overlap |S_old and S_new| / |S_old or S_new| of the last support
        update (0 before the first). ``hpr_gamma < 0`` switches the HPR test off.
        """
        raise NotImplementedError

    def pixel_map(self, data):
        """A per-pixel value handed to the update rule as ``m`` (for rules declared with
        ``pixel_map=True``): an array of the data's shape, or None for zeros."""
        return None

    def before_update(self, loop, threshold, last_tie):
        """Hook for algorithms needing more than one modulus projection (default: nothing).

        Called once the new support is chosen and ``loop.next_input`` holds ``N P_M(z)``
        (unscaled); :meth:`_Loop.modulus_of` and :meth:`_Loop.new_support` help. Until the
        update, ``loop.support`` carries the selection's marks: read :meth:`_Loop.new_support`.
        """

    def after_update(self, loop, iteration, iterations):
        """Hook for plugins, called after each iteration's update (default: nothing).

        ``loop.x`` (the iterate), ``loop.support`` (bool) and ``loop.next_input`` (the next
        FFT input, ``x`` on the support and ``pre_out * x`` off it) are flat views of arrays
        of ``loop.shape``; change them in place to add a step (OSS smooths ``x`` off the
        support here). ``iteration`` counts from 0 to ``iterations - 1``.
        """

    _threads = 1      # FFT threads of the running loop's smoothing (set by the loop)

    def iterate(self, stream, ctx):
        self._threads = ctx.threads or 1
        loop = _Loop(self, stream, ctx)
        emod, econ = loop.run(self.params["iteration"])
        out = loop.result_stream(stream)
        out.record(self.name, emod, econ)
        return out

    def refine_score(self, score_image):
        """Shrinkwrap score hook: may change the score image (``|y|^2``, float32, -1 outside
        the fixed support) in place and return True. Default: Gaussian smoothing of ``|y|``
        when ``support_sigma > 0``."""
        if self.support_sigma <= 0:
            return False
        smoothed = shrinkwrap.smooth_modulus(score_image, self.support_sigma, self._threads)
        np.copyto(score_image, smoothed, where=score_image >= 0)
        return True


_announced = False


def announce_compilation():
    """Say, once per process, that the kernels are being compiled when Numba's disk cache of
    them is empty: the first run is silent for up to a minute otherwise."""
    global _announced
    if _announced:
        return
    _announced = True
    folder = (os.environ.get("NUMBA_CACHE_DIR")          # where Numba looks first
              or os.path.join(os.path.dirname(kernels.__file__), "__pycache__"))
    if not glob.glob(os.path.join(folder, "**", "kernels*.nbi"), recursive=True):
        log.info("compiling the kernels (first run only: up to a minute, then cached)")


def _pixel_map(node, data, rdtype, rows):
    """The node's pixel map as the update reads it, ``(n0, R)``; without one, zeros that take
    no memory (a rule that reads no map never loads them)."""
    pixel_map = node.pixel_map(data) if node.rules.pixel_map else None
    if pixel_map is None:
        return np.broadcast_to(np.zeros(1, rdtype), rows)
    pixel_map = np.asarray(pixel_map)
    if pixel_map.shape != data.shape or not np.all(np.isfinite(pixel_map)):
        raise ConfigError(f"{node.name}: pixel_map() gave an array of shape {pixel_map.shape}; "
                          f"give finite values of the data's shape {data.shape}")
    return np.ascontiguousarray(pixel_map, dtype=rdtype).reshape(rows)


def _threshold_rule(node, n_eligible, workers):
    p = node.params
    if p.get("support_threshold") is None:
        return None
    return shrinkwrap.ThresholdRule(node.name, p["support_threshold"], node.support_sigma,
                                    p.get("sigma_end"), p.get("support_every") or DEFAULT_EVERY,
                                    n_eligible, workers, key=node.id)


def _check_threshold_options(size, threshold, sigma_end, every, shrink_iterations):
    if threshold is None:
        if size is None:
            raise ConfigError("support_size=None needs a support rule that sets the size: give "
                              "support_threshold (e.g. 0.2) or a support_size")
        for name, value in (("sigma_end", sigma_end), ("support_every", every)):
            if value is not None:
                raise ConfigError(f"{name}={value!r} applies to threshold shrinkwrap: give "
                                  "support_threshold too")
        return
    check_range("support_threshold", threshold, 0.0, 1.0, low_open=True, high_open=True)
    if sigma_end is not None:
        check_range("sigma_end", sigma_end, 0.0, 1e6)
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ConfigError(f"support_every={every!r}: give an integer >= 1 (iterations between "
                          "support updates)")
    if size is not None or shrink_iterations:
        raise ConfigError("support_threshold sets the support's size: leave support_size None "
                          "and shrink_iterations 0")


class _Loop:
    """State of one node's run: arrays, plans and work buffers, then the iterations.

    Per iteration: column FFTs with the modulus projection between them, slab inverse FFTs
    with the shrinkwrap score, the support selection, then the update with the next
    iteration's slab FFTs (after the node's ``after_update`` hook when it has one).
    """

    def __init__(self, node, stream, ctx):
        announce_compilation()
        self.node, self.ctx = node, ctx
        self.nchunks = _threads.configure(ctx.threads or 1)
        cdtype, rdtype = ctx.complex_dtype, ctx.real_dtype
        data = stream.data
        self.split = fft.get_split(data.shape, cdtype)
        self.ws = workspace(data, rdtype, self.split)
        self.execute = self.split.execute
        self.shape, self.size = data.shape, int(np.prod(data.shape))
        self.rows = (data.shape[0], self.size // data.shape[0])
        self.hooked = overrides(node, "after_update")
        self.kernels = node.rules.kernels
        self.rdtype = rdtype
        self.coef = tuple(rdtype(c) for c in node.rule(0.0)[0])
        self.pmap = _pixel_map(node, data, rdtype, self.rows)
        self.refines = node.support_sigma > 0 or overrides(node, "refine_score")
        self.unit = data.scale          # x and the background iterate in units of data.scale
        self.x = (stream.x.astype(np.complex128) / self.unit).astype(cdtype).reshape(-1)
        self.est = self.x.copy()        # the incoming estimate: x, also off the support
        self.held = np.full(kernels.held_shape(self.rows), kernels.HELD_ANYWHERE, np.uint8)
        self.support = np.array(stream.support, dtype=bool).reshape(-1)
        # the old support in bit 0, the new one in bit 1 from the selection to the update
        self.state = self.support.view(np.uint8)
        self.bg = np.array(stream.background.astype(np.float64) / self.unit if data.background else [],
                           dtype=rdtype)
        self.score = np.empty(self.size, np.float32)   # filled only when needed (scores())
        self.scored = False
        self.support_count = self.start_count = int(np.count_nonzero(self.support))
        self.err_part = np.zeros(self.nchunks)
        self.shell_part = np.zeros((kernels.SHELL_ROWS * self.nchunks, data.n_bins))
        self.sums_part = np.zeros((self.nchunks, 3))
        self.selector = support.Selector(self.nchunks,
                                         node.params["support_size"] or self.support_count)
        self.threshold = _threshold_rule(node, self.ws.n_eligible, ctx.threads or 1)
        self.scale = rdtype(1.0 / self.size)
        self.pre_out = rdtype(node.pre_out)
        self.buf = fft.aligned_empty(self.rows, cdtype)
        self.scratch = self.split.scratch(self.nchunks)
        self.next_input = self.buf.reshape(-1)
        np.copyto(self.next_input, np.where(self.support, self.x, self.pre_out * self.x))

    def rows_of(self, flat):
        return flat.reshape(self.rows)

    def run(self, iterations):
        emod, econ = np.zeros(iterations), np.zeros(iterations)
        settled = 0.0
        self._slab_forward(self.buf)
        for it in range(iterations):
            coef, hpr_gamma = self.node.rule(settled)
            self.coef = tuple(self.rdtype(c) for c in coef)
            emod[it] = self._modulus(self.buf, self.err_part, self.shell_part)
            if self.fit_bg:
                kernels.refit_background(self.shell_part, self.ws.shell_counts, self.bg)
            threshold, last_tie = self._select(it, iterations)
            self.node.before_update(self, threshold, last_tie)
            more = it + 1 < iterations
            econ[it], settled = self._update(hpr_gamma, forward=more and not self.hooked)
            self.node.after_update(self, it, iterations)
            if more and self.hooked:
                self._slab_forward(self.buf)
            if (it + 1) % 50 == 0 or it + 1 == iterations:
                self.ctx.report(self.node, it + 1, iterations, emod[it])
        return emod, econ

    @property
    def fit_bg(self):
        return self.bg.size > 0

    def _slab_forward(self, buf):
        kernels.slabs_fft(self.execute, self.split.slab_forward, buf, self.nchunks)

    def _modulus(self, buf, err_part, shell_part):
        """Column FFTs around the modulus projection (background, eMod): ``buf`` must hold the
        slab FFTs of ``z``; afterwards it holds the slab FFTs of ``N P_M z``. Returns eMod."""
        ws = self.ws
        self.kernels["modulus"](self.coef, self.execute, self.split.plans, buf, ws.amp,
                                ws.measured, ws.bins, self.bg, self.scratch, err_part, shell_part)
        return np.sqrt(err_part.sum() / ws.sum_a2) if ws.sum_a2 > 0 else 0.0

    def _support_size(self, it):
        target = self.node.params["support_size"]
        ramp = self.node.params.get("shrink_iterations", 0)
        if it >= ramp or self.start_count <= target:
            return target
        return int(round(target + (self.start_count - target) * (1 - it / ramp)))

    def _select(self, it, iterations):
        """Slab inverse FFTs (the buffer then holds ``N P_M z``) with the shrinkwrap score,
        then the new support: the pixels of largest |y|^2 within the fixed support, as many
        as the size rule or the threshold says."""
        self.selector.score(self.kernels["score"], self.coef, self.buf, self.scale,
                            self.ws.eligible, plan=self.split.slab_inverse, execute=self.execute)
        self.scored = False
        rule = self.threshold
        if rule is None:
            count = self._support_size(it)
            rescored = self.refines and self.node.refine_score(self.scores().reshape(self.shape))
        elif not rule.updates(it):
            np.bitwise_or(self.state, (self.state & 1) << 1, out=self.state)   # S kept
            self.count = self.support_count
            return -1, -1
        else:
            support = self.support.reshape(self.shape).copy()   # bit 0 only, before the marks
            count = rule.rescore(self.scores().reshape(self.shape), support,
                                 rule.sigma_at(it, iterations))
            rescored = True
        self.count = count
        return self.selector.select(count, lambda: self.scores().view(np.int32), self.state,
                                    rescored)

    def scores(self):
        """This iteration's shrinkwrap scores (flat float32), computed from the buffer on the
        first call: most iterations never need them stored."""
        if not self.scored:
            self.kernels["score_image"](self.coef, self.buf, self.scale, self.ws.eligible,
                                        self.rows_of(self.score), self.nchunks)
            self.scored = True
        return self.score

    def _update(self, hpr_gamma, forward):
        old = self.support_count
        rows, node = self.rows_of, self.node
        lean = (not self.hooked and node.rules.keeps_e(self.coef) and hpr_gamma < 0
                and not (node.feedback_on_violation and node.constraint == 2))
        self.kernels["update"](self.coef, self.execute, self.split.slab_forward if forward else 0,
                               rows(self.x), self.buf, self.scale, self.rdtype(hpr_gamma),
                               node.constraint, node.feedback_on_violation, self.pre_out,
                               rows(self.state), rows(self.est), self.held, lean, self.pmap,
                               self.sums_part)
        diff, norm, both = self.sums_part.sum(axis=0)
        self.support_count = min(self.count, self.ws.n_eligible)
        union = old + self.support_count - both
        econ = np.sqrt(diff / norm) if norm > 0 else float(diff > 0)
        return econ, (both / union if union else 1.0)

    def modulus_of(self, x):
        """``N P_M(x)`` (unscaled) through a second buffer, with the current background and
        no background refit; returns the buffer, flat."""
        if not hasattr(self, "_extra"):   # made once, on the first call (DM with beta != 1)
            self._extra = (fft.aligned_empty(self.rows, self.buf.dtype),
                           np.zeros_like(self.err_part), np.zeros_like(self.shell_part))
        buf, err_part, shell_part = self._extra
        np.copyto(buf.reshape(-1), x)
        self._slab_forward(buf)
        self._modulus(buf, err_part, shell_part)
        kernels.slabs_fft(self.execute, self.split.slab_inverse, buf, self.nchunks)
        return buf.reshape(-1)

    def new_support(self):
        """The support the coming update will apply (chosen by the selection), as a flat
        bool array."""
        return (self.state & 2) != 0

    def result_stream(self, stream):
        from prnf_core import Stream
        bg = (self.bg * np.float64(self.unit)).astype(self.rdtype) if self.fit_bg else np.array(stream.background, copy=True)
        rows = self.rows_of
        kernels.hold_estimate(rows(self.x), rows(self.state), rows(self.est), self.held,
                              self.nchunks)
        return Stream(data=stream.data, x=(self.est.reshape(self.shape) * np.float64(self.unit)).astype(self.est.dtype),
                      support=self.support.reshape(self.shape).copy(), background=bg,
                      emod=stream.emod, econ=stream.econ, path=list(stream.path))
