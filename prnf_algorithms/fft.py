"""FFTW through pyfftw: plans made once per shape and dtype, reused, wisdom kept on disk.

Two ways in. :class:`FFTPair` is pyfftw's whole-array in-place transform pair (the benchmark's
floor). :class:`SplitPlans` holds FFTW plans for the two halves of an n-d transform, called
from Numba kernels through FFTW's C interface (the very library pyfftw loaded, so plans and
wisdom are shared): an n-d FFT is the (n-1)-d FFT of every slab ``x[i]`` followed by the 1-D
FFT along axis 0, and the iteration does its own work on a slab or a block of columns while
it is still in cache (see ``kernels.py``).

Reproducibility: a fixed seed gives the same result, to the bit, in any process on one machine
that uses the same plans, thread count and precision. Plans come from the wisdom file when it
holds one for the shape (``PRNF_CACHE_DIR``), else are planned afresh: a PATIENT plan is chosen by
timing, and different FFT algorithms round float32 differently; iterative phasing amplifies the
last bits, so a stagnating repeat may end in another state. Between machines the CPU's SIMD
codelets and Numba's vectorisation differ too: compare results there within their spread.

Forward is unnormalised and the inverse is *not* scaled by 1/N here: the algorithms fold
that scale into the update kernel, saving a pass over the array.
"""
from __future__ import annotations

import base64
import ctypes
import ctypes.util
import glob
import json
import logging
import os
import time

import numpy as np

from . import _threads  # noqa: F401  (thread environment before pyfftw loads its OpenMP)
import pyfftw

from prnf_core.fileutil import atomic_write, cache_dir

log = logging.getLogger("prnf.fft")     # under the CLI's "prnf" logger: INFO is shown
_plans = {}
_wisdom_loaded = False


def _wisdom_file():
    return os.path.join(cache_dir(), "fftw_wisdom.json")


def planner_effort():
    """FFTW planner effort asked for with ``PRNF_FFTW_EFFORT``, else FFTW_PATIENT: the
    benchmark's floor, and the iteration's split plans when the run's length is not known
    (:func:`split_effort` chooses for a run). Each plan is bounded by :func:`planning_limit`.

    PATIENT, because the split plans are small (1-D and (n-1)-D, single-threaded) and the
    column pass it finds vectorises across the block's columns (measured against MEASURE,
    warm: 29.4 against 36.2 ms per iteration at 160^3; no gain at 512^2, 2.29 against
    2.09 ms). EXHAUSTIVE found nothing faster in 20 times the planning time.
    """
    return os.environ.get("PRNF_FFTW_EFFORT", "FFTW_PATIENT")


#: Iterations after which PATIENT's extra planning has paid for itself in faster
#: iterations: measured 1,073 at 160^3 (9.3 against 2.1 s of planning,
#: 29.4 against 36.2 ms per iteration; ``bench_planning.py --efforts``), never at 512^2.
PATIENT_PAYBACK = 1000


def split_effort(iterations):
    """The effort of the split plans for a run of ``iterations`` (all its repeats on all
    ranks; None: unknown): PATIENT when the run is long enough to pay its planning back
    (:data:`PATIENT_PAYBACK`), else MEASURE, planned in about a second. ``prnf phase``
    (8 x 2200 iterations) plans PATIENT; a run of a few hundred iterations does not wait for
    plans it cannot pay back. The choice depends on the run alone, not on earlier runs, so a
    resumed checkpoint and every rank count plan alike (and the wisdom file then gives each
    the same plans). PATIENT wisdom, once made by a long run, serves short runs too.
    ``PRNF_FFTW_EFFORT`` overrides the rule."""
    if "PRNF_FFTW_EFFORT" in os.environ or iterations is None:
        return planner_effort()
    return "FFTW_PATIENT" if iterations >= PATIENT_PAYBACK else "FFTW_MEASURE"


def smoothing_effort():
    """Effort for the whole-array real transforms of the shrinkwrap smoothing: MEASURE (or
    ESTIMATE when asked for). They run once per support update, not per iteration, and
    PATIENT planned them for 227 s at 160^3 (2 threads) to save 5 ms per use (23.2 against
    28.0 ms): about 45,000 updates to pay back."""
    return "FFTW_ESTIMATE" if planner_effort() == "FFTW_ESTIMATE" else "FFTW_MEASURE"


def planning_limit():
    """Seconds FFTW may spend on one plan (``PRNF_FFTW_TIMELIMIT``, default 2): past it FFTW
    keeps the best plan found so far, so a first run at a new shape is not spent planning."""
    from prnf_core.fileutil import fftw_time_limit
    limit = fftw_time_limit()
    return -1.0 if limit == float("inf") else limit     # FFTW's "no limit"


def load_wisdom():
    global _wisdom_loaded
    if _wisdom_loaded:
        return
    _wisdom_loaded = True
    try:
        with open(_wisdom_file()) as f:
            pyfftw.import_wisdom(tuple(base64.b64decode(w) for w in json.load(f)))
    except (OSError, ValueError, TypeError) as exc:
        log.debug("no FFTW wisdom loaded: %s", exc)


def save_wisdom():
    """Keep the planner's wisdom so a later process plans in milliseconds (JSON, no pickle)."""
    try:
        payload = [base64.b64encode(w).decode() for w in pyfftw.export_wisdom()]
        atomic_write(_wisdom_file(), json.dumps(payload).encode())
    except OSError as exc:
        log.debug("FFTW wisdom not saved: %s", exc)
        return False
    return True


class FFTPair:
    """In-place forward and inverse FFTW plans sharing one aligned buffer ``self.buf``."""

    def __init__(self, shape, dtype, threads):
        self.buf = pyfftw.empty_aligned(shape, dtype=dtype)
        axes = tuple(range(len(shape)))
        flags = (planner_effort(), "FFTW_DESTROY_INPUT")
        self.forward = pyfftw.FFTW(self.buf, self.buf, axes=axes, direction="FFTW_FORWARD",
                                   flags=flags, threads=threads)
        self.inverse = pyfftw.FFTW(self.buf, self.buf, axes=axes, direction="FFTW_BACKWARD",
                                   flags=flags, threads=threads, normalise_idft=False)

    def fft(self):
        self.forward.execute()

    def ifft_unscaled(self):
        self.inverse.execute()


class RealPair:
    """Out-of-place real-to-complex FFTW plans of a real ``self.real`` buffer and its half
    spectrum ``self.spectrum`` (the inverse unnormalised and allowed to overwrite it)."""

    def __init__(self, shape, dtype, threads):
        half = (*shape[:-1], shape[-1] // 2 + 1)
        self.real = pyfftw.empty_aligned(shape, dtype=dtype)
        self.spectrum = pyfftw.empty_aligned(half, dtype=np.result_type(dtype, np.complex64))
        axes, effort, limit = tuple(range(len(shape))), smoothing_effort(), planning_limit()
        self.forward = pyfftw.FFTW(self.real, self.spectrum, axes=axes, direction="FFTW_FORWARD",
                                   flags=(effort,), threads=threads, planning_timelimit=limit)
        self.inverse = pyfftw.FFTW(self.spectrum, self.real, axes=axes, direction="FFTW_BACKWARD",
                                   flags=(effort, "FFTW_DESTROY_INPUT"), threads=threads,
                                   normalise_idft=False, planning_timelimit=limit)


def _say_planned(what, spent, kept):
    """Say where planning time went, only where it did go (wisdom answers in milliseconds)."""
    if spent > 1:
        log.info("planned %s in %.1f s; %s", what, spent,
                 f"kept as wisdom in {_wisdom_file()}" if kept else
                 f"not kept (cannot write {_wisdom_file()}): the next process plans again")


def get_real_pair(shape, dtype, threads):
    """The cached :class:`RealPair` for this shape, real dtype and thread count."""
    key = ("real", tuple(shape), str(np.dtype(dtype)), int(threads))
    if key not in _plans:
        load_wisdom()
        started = time.perf_counter()
        _plans[key] = RealPair(shape, dtype, threads)
        _say_planned(f"the smoothing's real FFTs of shape {tuple(shape)}",
                     time.perf_counter() - started, save_wisdom())
    return _plans[key]


def get_pair(shape, dtype, threads):
    """The cached :class:`FFTPair` for this shape, dtype and thread count (planned once)."""
    key = (tuple(shape), str(dtype), int(threads))
    if key not in _plans:
        load_wisdom()
        _plans[key] = FFTPair(shape, dtype, threads)
        save_wisdom()
    return _plans[key]


# --------------------------------------------------------------------- FFTW's C interface
_EFFORT_FLAGS = {"FFTW_MEASURE": 0, "FFTW_EXHAUSTIVE": 1 << 3, "FFTW_PATIENT": 1 << 5,
                 "FFTW_ESTIMATE": 1 << 6}
_UNALIGNED = 1 << 1
_BLOCK_BYTES = 1 << 17       # a block of columns (all of axis 0) fits in L2 with room to spare
_libraries = {}


def _open(name):
    """FFTW library ``name`` as pyfftw loaded it: bundled beside it (wheels), else the system's."""
    here = os.path.dirname(pyfftw.__file__)
    patterns = (os.path.join(here + ".libs", f"lib{name}-*.so*"),     # Linux wheels
                os.path.join(here, ".dylibs", f"lib{name}.*dylib"),   # macOS wheels
                os.path.join(here, f"lib{name}*.dll"))                # Windows wheels
    found = [path for pattern in patterns for path in sorted(glob.glob(pattern))]
    path = found[0] if found else ctypes.util.find_library(name)
    if path is None:
        raise ImportError(f"FFTW library lib{name} not found beside pyfftw ({here}) nor on the "
                          f"system; reinstall pyfftw from a wheel: pip install --force-reinstall pyfftw")
    return ctypes.CDLL(path)


class _Library:
    """Plan, execute and thread-count functions of one FFTW precision."""

    def __init__(self, dtype):
        single = np.dtype(dtype) == np.complex64
        name, prefix = ("fftw3f", "fftwf_") if single else ("fftw3", "fftw_")
        lib = _open(name)
        self.execute = getattr(lib, prefix + "execute_dft")
        self.execute.argtypes, self.execute.restype = [ctypes.c_void_p] * 3, None
        self.plan_many = getattr(lib, prefix + "plan_many_dft")
        c_int, c_ptr = ctypes.c_int, ctypes.c_void_p
        self.plan_many.argtypes = [c_int, ctypes.POINTER(c_int), c_int, c_ptr, c_ptr, c_int, c_int,
                                   c_ptr, c_ptr, c_int, c_int, c_int, ctypes.c_uint]
        self.plan_many.restype = c_ptr
        self.set_timelimit = getattr(lib, prefix + "set_timelimit")
        self.set_timelimit.argtypes, self.set_timelimit.restype = [ctypes.c_double], None
        try:    # pyfftw sets its thread count before each of its plans; ours are single-threaded
            self.plan_with_nthreads = getattr(_open(name + "_omp"), prefix + "plan_with_nthreads")
        except (ImportError, OSError, AttributeError):
            self.plan_with_nthreads = lambda n: None


def library(dtype):
    key = np.dtype(dtype).str
    if key not in _libraries:
        _libraries[key] = _Library(dtype)
    return _libraries[key]


def aligned_empty(shape, dtype):
    """An array aligned as the split plans expect (64 bytes)."""
    return pyfftw.empty_aligned(shape, dtype=dtype, n=64)


class SplitPlans:
    """Single-threaded FFTW plans for the halves of an n-d transform of ``shape``, in place.

    The array is viewed as ``(n0, R)`` with ``R = prod(shape[1:])``. ``plans`` holds the
    addresses of: slab forward, slab inverse (the (n-1)-d transform of one row of ``R``), then
    forward and inverse 1-D transforms along axis 0 of a block of columns copied to a
    contiguous scratch block ``(n0, w)`` (``w = width`` columns, then the same for the
    narrower last block). The copy matters: in place, a block's rows sit a power of two apart
    and evict each other from the cache between the transform and the work on it. Per-pixel
    inputs of that work are stored in the same block order (:meth:`blocked`), so it runs as
    one contiguous loop per block. Kernels run the plans with
    ``execute(plan, in, out)``, which FFTW allows from any thread; 0 means "no transform".
    """

    def __init__(self, shape, dtype, effort=None):
        lib = library(dtype)
        self.execute, self.dtype = lib.execute, np.dtype(dtype)
        itemsize = self.dtype.itemsize
        n0, rest = int(shape[0]), int(np.prod(shape[1:]))
        width = max(1, min(rest, _BLOCK_BYTES // (n0 * itemsize)))
        self.n0, self.width = n0, width - width % 8 if width >= 8 else width
        last = rest % self.width or self.width      # columns in the last block
        effort_name = effort or planner_effort()
        effort = _EFFORT_FLAGS.get(effort_name, 0)
        started = time.perf_counter()
        load_wisdom()
        lib.plan_with_nthreads(1)
        lib.set_timelimit(planning_limit())      # per plan: the best found by then is kept
        scratch = aligned_empty(n0 * max(rest, self.width), dtype)   # planning may overwrite it

        def plan(dims, howmany, stride, dist, sign, row_bytes):
            flags = effort | (0 if row_bytes % 64 == 0 else _UNALIGNED)  # offsets the kernels use
            dims = (ctypes.c_int * len(dims))(*dims)
            address = lib.plan_many(len(dims), dims, howmany, scratch.ctypes.data, None, stride,
                                    dist, scratch.ctypes.data, None, stride, dist, sign, flags)
            if not address:
                raise RuntimeError(f"FFTW could not plan a transform of shape {tuple(shape)}")
            return address

        slab, block = rest * itemsize, n0 * self.width * itemsize
        self.plans = np.array([plan(list(shape[1:]), 1, 1, rest, -1, slab),
                               plan(list(shape[1:]), 1, 1, rest, 1, slab),
                               plan([n0], self.width, self.width, 1, -1, block),
                               plan([n0], self.width, self.width, 1, 1, block),
                               plan([n0], last, last, 1, -1, block),
                               plan([n0], last, last, 1, 1, block)], np.uint64)
        self.rest = rest
        lib.set_timelimit(-1.0)                  # FFTW's default again: no limit
        _say_planned(f"the FFTs of shape {tuple(shape)} ({self.dtype}, {effort_name})",
                     time.perf_counter() - started, save_wisdom())

    @property
    def slab_forward(self):
        return self.plans[0]

    @property
    def slab_inverse(self):
        return self.plans[1]

    def scratch(self, nchunks):
        """Per-chunk scratch blocks for :func:`kernels.modulus_pass`."""
        return aligned_empty((nchunks, self.n0 * self.width), self.dtype)

    def blocked(self, array):
        """``array`` (of the transform's shape) in block order: the ``(n0, w)`` blocks of
        columns, one after the other, each row-major (block ``b`` starts at ``n0 * b * width``)."""
        rows = np.reshape(array, (self.n0, self.rest))
        return np.concatenate([rows[:, j:j + self.width].ravel()
                               for j in range(0, self.rest, self.width)])


_split = {}


def get_split(shape, dtype, iterations=None):
    """The cached :class:`SplitPlans` for this shape and dtype, planned once per process and
    effort (:func:`split_effort`; PATIENT plans also serve a run that asks for MEASURE)."""
    key = (tuple(int(n) for n in shape), np.dtype(dtype).str)
    effort = split_effort(iterations)
    for made in ((key, "FFTW_PATIENT"), (key, effort)):
        if made in _split:
            return _split[made]
    _split[key, effort] = SplitPlans(shape, dtype, effort)
    return _split[key, effort]
