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
``x`` itself and is not stored until the node hands it on (``kernels.update_pass``).
"""
from __future__ import annotations

import glob
import logging
import os
import sys
import weakref

import numpy as np

from prnf_core import AlgorithmNode, ConfigError, Param
from prnf_core.stream import ESTIMATE_EVERY

OPTIONS = (
    Param("positivity", False, "bool", doc="real part >= 0 on the support"),
    Param("real", False, "bool", doc="a real object"),
    Param("support_sigma", 0.0, low=0.0, high=1e6,
          doc="Gaussian smoothing (pixels) of |y| before shrinkwrap; 0: none"),
    Param("shrink_iterations", 0, "int", low=0,
          doc="iterations over which the support shrinks to support_size"),
    Param("support_threshold", None, low=0.0, high=1.0, low_open=True, high_open=True,
          doc="threshold shrinkwrap: keep smoothed |y| >= this times its maximum"),
    Param("sigma_end", None, low=0.0, high=1e6, doc="final smoothing of threshold shrinkwrap"),
    Param("support_every", None, "int", low=1, doc="iterations between threshold updates"),
    Param("support_rule", None, "text", doc="a support rule by name (prnf plugins lists them)"),
    Param("support_floor", None, low=0.0, high=1.0, low_open=True,
          doc="threshold shrinkwrap: keep at least this fraction of the support the node "
              "started with (the threshold retunes and says so); None: no such guard"),
    Param("threshold_reference", "max", "text",
          doc="threshold shrinkwrap: the threshold is a fraction of the smoothed |y|'s maximum "
              "on the support, or of its root mean square there (robust to a few bright pixels)"),
    Param("detwin_axes", 1, "int", low=1, high=3,
          doc="support_rule='detwin': cut the support at its centre of mass along this many "
              "leading axes"),
)

from . import _threads, fft, kernels, rules, shrinkwrap, support
from .support_rules import support_rule_class

log = logging.getLogger(__name__)


class _Workspace:
    """Per (data, precision) arrays, reused by every node: amplitude, mask and shells in the
    block order of the column pass, the fixed support as ``(n0, R)``."""

    def __init__(self, data, rdtype, split):
        # amplitudes in units of data.scale: the iterations never see the data's own units
        self.amp = split.blocked(np.divide(data.amplitude, data.scale, dtype=rdtype))
        self.measured = split.blocked(data.constrained)     # free pixels float like masked ones
        # unsigned shells (no negative-index wrap-around checks in the kernels), as narrow as
        # they fit: the column pass streams them from memory with amplitude and mask
        self.bins = split.blocked(data.radial_bins.astype(np.min_scalar_type(data.n_bins - 1)))
        self.shell_counts = np.bincount(self.bins[self.measured], minlength=data.n_bins)
        self.sum_a2 = float(np.sum(np.square(self.amp[self.measured], dtype=np.float64)))
        fixed = data.fixed_support if data.fixed_support is not None else np.ones(data.shape, bool)
        self.eligible = np.ascontiguousarray(fixed).reshape(data.shape[0], -1)
        self.n_eligible = int(np.count_nonzero(self.eligible))


def overrides(node, method):
    return getattr(type(node), method) is not getattr(ProjectionAlgorithm, method)


def workspace(data, rdtype, split):
    cache = data.caches
    key = np.dtype(rdtype).str
    if key not in cache:
        cache[key] = _Workspace(data, rdtype, split)
    return cache[key]


class IterationView:
    """What an algorithm's hooks see of the running iteration (public, documented meaning).

    Arrays have the data's shape and are in units of the data's scale (the engine iterates
    in units of the RMS measured amplitude; results are converted back).

    - ``x``: the iterate, writable (in :meth:`ProjectionAlgorithm.after_update`, changes are
      what the next iteration transforms);
    - ``y``: ``P_M z``, the modulus projection of this iteration's FFT input, scaled (in
      :meth:`ProjectionAlgorithm.prepare_update`, writable: the update reads it);
    - ``support``: the current support, bool (the old one in ``prepare_update``);
    - ``new_support``: the support the coming update applies (in ``prepare_update``);
    - ``iteration`` (from 0), ``iterations`` (of this node's run), ``settled`` (overlap
      ``|S_old and S_new| / |S_old or S_new|`` of the last support update, 0 before one),
      ``shape``, ``data`` (the prepared input), ``threads``;
    - :meth:`modulus`: ``P_M`` of any array, scaled, with the current background.
    """

    def __init__(self, loop):
        # a weak reference: the loop owns the view, and a cycle would keep the loop's
        # volume-sized arrays alive after the node's run until the garbage collector runs
        self._loop = weakref.proxy(loop)
        self.iteration, self.iterations, self.settled = 0, 0, 0.0
        self.shape, self.data, self.threads = loop.shape, loop.data, loop.ctx.threads or 1

    @property
    def x(self):
        return self._loop.x.reshape(self.shape)

    @property
    def y(self):
        return self._loop.scaled_y().reshape(self.shape)

    @property
    def support(self):
        return ((self._loop.state & 1) != 0).reshape(self.shape)

    @property
    def new_support(self):
        return self._loop.new_support().reshape(self.shape)

    def modulus(self, z):
        """``P_M z`` (scaled) of an array of the data's shape; a buffer reused by the next call."""
        return self._loop.modulus_of(np.asarray(z).reshape(-1)).reshape(self.shape)


class ProjectionAlgorithm(AlgorithmNode):
    """Base class of projection algorithms run by the fused engine (the plugin API).

    A subclass declares ``parameters`` (:class:`prnf_core.Param`), names its pointwise
    ``rules`` (:class:`rules.Rules`; default the built-ins' linear update) and returns, per
    iteration, the coefficients its rules read (:meth:`coefficients`). Optional hooks:
    :meth:`prepare_update` (after the support selection, with ``y``), :meth:`after_update`
    (a whole-array step on ``x``), :meth:`pixel_map` (a per-pixel value ``m`` for the
    update rule) and :meth:`support_rule` (how the support is chosen).

    Keyword options every projection algorithm shares (:data:`OPTIONS`; defaults keep
    spipy's behaviour): ``positivity``, ``real``, ``support_sigma``, ``shrink_iterations``,
    ``support_threshold``, ``sigma_end``, ``support_every``, ``support_rule``.
    """

    rules = rules.linear           # the pointwise rules the engine fuses (rules.py)
    pre_out = 1.0                  # FFT input off the support is pre_out * x (DM: -1)
    feedback_on_violation = False  # HIO-type: support pixels failing positivity get feedback
    options = OPTIONS

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        v = self.values
        _check_threshold_options(v["support_size"], v["support_threshold"], v["sigma_end"],
                                 v["support_every"], v["shrink_iterations"], v["support_rule"])
        if v["support_rule"] is not None:
            support_rule_class(v["support_rule"])          # a misspelt name fails here
        if v["threshold_reference"] not in shrinkwrap.REFERENCES:
            raise ConfigError(f"threshold_reference={v['threshold_reference']!r}: give one of "
                              f"{', '.join(shrinkwrap.REFERENCES)}")
        self.constraint = 2 if v["positivity"] else (1 if v["real"] else 0)
        self.support_sigma = float(v["support_sigma"])

    def coefficients(self, view):
        """The numbers the rules read as ``c`` in this iteration (``view``: an
        :class:`IterationView`; ``view.settled`` and the counters are what it may use): a
        mapping of the rules' declared constants (``{"a_in": 0.0, "b_in": 1.0, ...}`` for
        the linear update, :data:`rules.LINEAR`), or a tuple in their order (the rules read
        ``c[i]``). The engine packs them in the working precision (:meth:`Rules.pack`)."""
        raise NotImplementedError(f"{type(self).__name__} must define coefficients(view)")

    def support_test(self, view):
        """HPR's ``gamma``: support pixels where ``(1 + gamma)|y| < |x|`` take the outside
        rule; negative (the default) for no test."""
        return -1.0

    def pixel_map(self, data):
        """A per-pixel value handed to the update rule as ``m`` (for rules declared with
        ``pixel_map=True``): an array of the data's shape, or None for zeros."""
        return None

    def prepare_update(self, view):
        """Hook between the support selection and the update (default: nothing): ``view.y``
        (writable) and ``view.new_support`` are there; DM with beta != 1 mixes a second
        modulus projection into ``y`` here."""

    def after_update(self, view):
        """Hook after each iteration's update (default: nothing): change ``view.x`` in place
        to add a whole-array step (OSS smooths ``x`` off ``view.support`` here)."""

    def support_rule(self, eligible, threads):
        """The :class:`SupportRule` of a run over ``eligible`` pixels: ``support_rule`` by
        name when given, else by threshold when ``support_threshold`` is set, else by size."""
        name = self.values["support_rule"] or ("threshold" if self.values["support_threshold"]
                                               is not None else "size")
        return support_rule_class(name)(self, eligible, threads)

    def iterate(self, stream, ctx):
        loop = _Loop(self, stream, ctx)
        emod, econ, estimate = loop.run(self.params["iteration"])
        out = loop.result_stream(stream)
        out.record(self.name, emod, econ, estimate)
        return out


IterativeProjection = ProjectionAlgorithm        # the name of the first release


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
    # Numba names a kernel's index <module>.<function>-<line>.py<version>.nbi, under
    # NUMBA_CACHE_DIR in a folder per source folder; one kernel every run compiles stands
    # for all of them
    index = f"modulus.refit_background-*.py{sys.version_info[0]}{sys.version_info[1]}.nbi"
    if not glob.glob(os.path.join(folder, "**", index), recursive=True):
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


def _check_threshold_options(size, threshold, sigma_end, every, shrink_iterations, rule=None):
    """What the declarations cannot say alone: which options go together."""
    if threshold is None:
        if size is None and rule is None:
            raise ConfigError("support_size=None needs a support rule that sets the size: give "
                              "support_threshold (e.g. 0.2) or a support_size")
        for name, value in (("sigma_end", sigma_end), ("support_every", every)):
            if value is not None:
                raise ConfigError(f"{name}={value!r} applies to threshold shrinkwrap: give "
                                  "support_threshold too")
    elif size is not None or shrink_iterations:
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
        self.split = fft.get_split(data.shape, cdtype, ctx.run_iterations)
        self.ws = workspace(data, rdtype, self.split)
        self.execute = self.split.execute
        self.shape, self.size = data.shape, int(np.prod(data.shape))
        self.rows = (data.shape[0], self.size // data.shape[0])
        self.data = data
        self.hooked = overrides(node, "after_update")
        self.prepares = overrides(node, "prepare_update")
        self.kernels = node.rules.kernels
        self.rdtype = rdtype
        self.pmap = _pixel_map(node, data, rdtype, self.rows)
        self.unit = data.scale          # x and the background iterate in units of data.scale
        # in the working precision: a complex128 copy would be the run's largest temporary
        self.x = np.divide(stream.x.reshape(-1), self.unit, dtype=cdtype)
        self.est = self.x.copy()        # the incoming estimate: x, also off the support
        self.held = np.full(kernels.held_shape(self.rows), kernels.HELD_ANYWHERE, np.uint8)
        self.support = np.array(stream.support, dtype=bool).reshape(-1)
        # the old support in bit 0, the new one in bit 1 from the selection to the update
        self.state = self.support.view(np.uint8)
        stream.release()        # copied: the incoming volume need not last the whole run
        self.bg = np.array(stream.background.astype(np.float64) / self.unit if data.background else [],
                           dtype=rdtype)
        self.score = np.empty(self.size, np.float32)   # filled only when needed (scores())
        self.scored = self.y_scaled = False
        self.support_count = self.start_count = int(np.count_nonzero(self.support))
        self.err_part = np.zeros(self.nchunks)
        self.shell_part = np.zeros((kernels.SHELL_ROWS * self.nchunks, data.n_bins))
        self.sums_part = np.zeros((self.nchunks, 3))
        self.selector = support.Selector(self.nchunks,
                                         node.params["support_size"] or self.support_count)
        self.scale = rdtype(1.0 / self.size)
        self.pre_out = rdtype(node.pre_out)
        self.buf = fft.aligned_empty(self.rows, cdtype)
        self.scratch = self.split.scratch(self.nchunks)
        self.next_input = self.buf.reshape(-1)
        self._next_input_from_x()
        self.view = IterationView(self)
        self.support_rule = node.support_rule(self.ws.n_eligible, ctx.threads or 1)
        self.support_rule.begin(self.view)
        self.coef = self._coefficients()

    def _coefficients(self):
        return self.node.rules.pack(self.node.coefficients(self.view), self.rdtype)

    def _next_input_from_x(self):
        if self.pre_out == 1:
            np.copyto(self.next_input, self.x)
        else:
            np.copyto(self.next_input, np.where(self.state & 1, self.x, self.pre_out * self.x))

    def rows_of(self, flat):
        return flat.reshape(self.rows)

    def run(self, iterations):
        emod, econ = np.zeros(iterations), np.zeros(iterations)
        estimate = np.full(iterations, np.nan)
        view, node = self.view, self.node
        view.iterations = iterations
        self._slab_forward(self.buf)
        for it in range(iterations):
            view.iteration = it
            self.coef = self._coefficients()
            emod[it] = self._modulus(self.buf, self.err_part, self.shell_part)
            if self.fit_bg:
                kernels.refit_background(self.shell_part, self.ws.shell_counts, self.bg)
            self._select()
            self.y_scaled = False
            if self.prepares:
                node.prepare_update(view)
            more = it + 1 < iterations
            sample = (it + 1) % ESTIMATE_EVERY == 0 or not more
            econ[it], view.settled = self._update(node.support_test(view),
                                                  forward=more and not self.hooked and not sample)
            if self.hooked:
                node.after_update(view)
            if sample:      # the buffer is free: the next input is made again below
                estimate[it] = self._estimate_emod()
                self.ctx.report(self.node, it + 1, iterations, estimate[it])
            if self.hooked or (sample and more):
                self._next_input_from_x()
                if more:
                    self._slab_forward(self.buf)
        return emod, econ, estimate

    def _estimate_emod(self):
        """eMod of the support-constrained estimate as the node would hand it on now (what
        PyNX reports), through the iteration's buffer; ``x``, the held estimate and the
        state are left as they are."""
        rows = self.rows_of
        np.copyto(self.buf, rows(self.est))
        kernels.hold_estimate(rows(self.x), rows(self.state), self.buf, self.held.copy(),
                              self.nchunks)
        self._slab_forward(self.buf)
        return self._modulus(self.buf, self.err_part, self.shell_part)

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

    def _select(self):
        """Slab inverse FFTs (the buffer then holds ``N P_M z``) with the shrinkwrap score,
        then the new support: the ``count`` pixels of highest score within the fixed support,
        as the node's support rule says."""
        updates = self.support_rule.updates(self.view)
        store = updates and self.support_rule.wants_scores(self.view)
        self.selector.score(self.kernels["score"], self.coef, self.buf, self.scale,
                            self.ws.eligible, plan=self.split.slab_inverse, execute=self.execute,
                            image=self.rows_of(self.score) if store else None)
        self.scored = store
        if not updates:
            np.bitwise_or(self.state, (self.state & 1) << 1, out=self.state)   # S kept
            self.count = self.support_count
            return
        count, rescored, *level = self.support_rule.count(
            self.view, lambda: self.scores().reshape(self.shape))
        self.count = count
        self.selector.select(count, lambda: self.scores().view(np.int32), self.state, rescored,
                             at_least=level[0] if level else None)

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
                               rows(self.x), self.buf, self.rdtype(1) if self.y_scaled else self.scale,
                               self.rdtype(hpr_gamma),
                               node.constraint, node.feedback_on_violation, self.pre_out,
                               rows(self.state), rows(self.est), self.held, lean, self.pmap,
                               self.sums_part)
        diff, norm, both = self.sums_part.sum(axis=0)
        self.support_count = min(self.count, self.ws.n_eligible)
        union = old + self.support_count - both
        econ = np.sqrt(diff / norm) if norm > 0 else float(diff > 0)
        return econ, (both / union if union else 1.0)

    def scaled_y(self):
        """This iteration's ``P_M z``, scaled in place on first use (the update then takes it
        as scaled), flat."""
        if not self.y_scaled:
            self.next_input *= self.scale
            self.y_scaled = True
        return self.next_input

    def modulus_of(self, x):
        """``P_M(x)`` (scaled) through a second buffer, with the current background and no
        background refit; returns the buffer, flat."""
        if not hasattr(self, "_extra"):   # made once, on the first call (DM with beta != 1)
            self._extra = (fft.aligned_empty(self.rows, self.buf.dtype),
                           np.zeros_like(self.err_part), np.zeros_like(self.shell_part))
        buf, err_part, shell_part = self._extra
        np.copyto(buf.reshape(-1), x)
        self._slab_forward(buf)
        self._modulus(buf, err_part, shell_part)
        kernels.slabs_fft(self.execute, self.split.slab_inverse, buf, self.nchunks)
        flat = buf.reshape(-1)
        flat *= self.scale
        return flat

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
        # the loop ends here: its estimate becomes the stream's, in place (no second volume)
        self.est *= self.unit
        return Stream(data=stream.data, x=self.est.reshape(self.shape),
                      support=self.support.reshape(self.shape).copy(), background=bg,
                      emod=stream.emod, econ=stream.econ, path=list(stream.path),
                      emod_estimate=stream.emod_estimate)
