"""Node protocol of a phasing network: inputs, merges, the output, and algorithm nodes.

Nodes look like PyTorch modules: hyperparameters go to ``__init__`` (and are kept in
``self.params`` exactly as given, so they serialise and reload), the work is one ``run``
method, and ``.after(father)`` wires the graph.
"""
from __future__ import annotations

import dataclasses
import itertools
import numbers

import numpy as np

from . import data as _data
from . import params as _params
from .errors import ConfigError
from .merge import merge_streams
from .params import Param
from .stream import Stream

_ids = itertools.count()


def _next_id():
    return next(_ids)


def reserve_ids(used):
    """Make sure ids given out from now on do not clash with ``used`` (after loading a file)."""
    global _ids
    current = next(_ids)
    _ids = itertools.count(max([current, *[i + 1 for i in used]]))


class Node:
    """Base of every node. ``id`` is unique among the nodes of a process."""

    kind = "node"
    has_fathers = True

    def __init__(self, name=None, **params):
        self.id = _next_id()
        self.name = name if name is not None else type(self).__name__
        self.params = params
        self.fathers = []
        self.children = []

    def after(self, father):
        """Add ``father`` as a father of this node; returns ``self`` so calls chain."""
        if not self.has_fathers:
            raise ConfigError(f"{self!r} is an input node: it starts the network and takes no father")
        if not isinstance(father, Node):
            raise ConfigError(f"{self!r}.after() needs a node, got {type(father).__name__}")
        self.fathers.append(father)
        father.children.append(self)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "config_dict")
        return f"{type(self).__name__}(id={self.id}, name={self.name!r}{', ' + args if args else ''})"


class pInput(Node):
    """Input node: loads and pre-processes one pattern (see :data:`prnf_core.data.INPUT_DEFAULTS`).

    Parameters
    ----------
    config_dict : dict
        Input settings; missing keys take their defaults.
    name : str, optional
    arrays : dict, optional
        Embedded ``pattern``, ``mask``, ``initial_model`` arrays (from a model file).
    """

    kind = "input"
    has_fathers = False

    def __init__(self, config_dict, name=None, arrays=None):
        full = _data.check_config(config_dict)
        super().__init__(name=name, config_dict=full)
        self.arrays = arrays
        self._prepared = None

    def load(self):
        """The input arrays: given ones as kept, else read from the files (again after a run
        prepared them: then they are not kept, see :meth:`prepared`)."""
        if self.arrays is None:
            self.arrays = _data.load_input_arrays(self.params["config_dict"])
        return self.arrays

    def reload(self, dataset):
        """Replace pattern, mask and initial model (``reload_dataset`` of :class:`Runner`)."""
        keys = {"pattern_path", "mask_path", "initial_model", "support_path"}
        unknown = set(dataset) - keys - {"pattern_shape"}
        if unknown:
            raise ConfigError(f"reload_dataset for input {self.id} has unknown keys {sorted(unknown)}; "
                              f"accepted: {sorted(keys | {'pattern_shape'})}")
        self.params["config_dict"] = _data.check_config({**self.params["config_dict"], "mask_path": None,
                                                         "initial_model": None, "support_path": None,
                                                         **dataset})
        self.arrays = None
        self._prepared = None

    def peek_shape(self):
        """The prepared pattern's shape before it is read (from an array given, or the
        file's header, then ``bin`` and ``fft_size``), or None where the file does not tell
        it cheaply: a run's memory is checked before anything is allocated."""
        if self._prepared is not None:
            return self._prepared.shape
        config = self.params["config_dict"]
        pattern = (self.arrays or {}).get("pattern")
        if pattern is not None:
            shape = np.shape(pattern)
        elif isinstance(config["pattern_path"], str):
            from .io import array_shape
            shape = array_shape(config["pattern_path"], config["pattern_shape"])
        else:
            return None
        return None if shape is None else _data.prepared_shape(config, shape)

    def prepared(self):
        if self._prepared is None:
            from_files = self.arrays is None
            a = self.load()
            self._prepared = _data.prepare(self.params["config_dict"], a["pattern"], a.get("mask"),
                                           a.get("initial_model"), a.get("support"))
            if from_files:      # read again if a full model dump needs them: a volume's raw
                self.arrays = None  # pattern would otherwise stay in memory all the run
        return self._prepared

    def run(self, fathers, ctx, rng):
        """Start one stream: the initial model (perturbed per repeat by
        ``initial_model_noise``) on the fixed support (or everywhere), or uniform random
        values on the start support (config key ``start_support``)."""
        d = self.prepared()
        if d.initial_model is not None:
            x = d.perturbed_model(rng, self.params["config_dict"]["initial_model_noise"])
            support = d.fixed_support.copy() if d.fixed_support is not None else np.ones(d.shape, bool)
        else:
            support = d.start_support.copy()
            x = d.random_start(rng, support)
        background = d.background_start() if d.background else np.zeros(d.n_bins)
        return Stream(data=d, x=(x * support).astype(ctx.complex_dtype), support=support,
                      background=background.astype(ctx.real_dtype))


class pMerge(Node):
    """Averages the aligned streams of its fathers (translation, twin and global phase)."""

    kind = "merge"

    def __init__(self, name=None):
        super().__init__(name=name)

    def run(self, fathers, ctx, rng=None):
        return merge_streams(fathers) if len(fathers) > 1 else fathers[0]


class pOutput(pMerge):
    """Output node: collects the final stream (merging several fathers); has no children."""

    kind = "output"


class AlgorithmNode(Node):
    """Base class of iterative phasing algorithms, built-in or from plugins.

    Subclasses set the class attribute ``algorithm`` (the registry name), declare their own
    parameters as ``parameters = (Param(...), ...)`` and implement :meth:`iterate`; no
    ``__init__`` is needed. A node is built as ``Algo(iteration, support_size, <positional
    parameters in order>, name=None, <keyword parameters>)``: :func:`params.bind` checks
    every argument against its declaration and keeps them in ``self.params`` (what model
    files store) and ``self.values`` (every value, defaults included). ``support_size`` may
    be None where the node's own support rule sets the support (a threshold, say). Several
    fathers are merged first, like a pMerge.
    """

    kind = "algorithm"
    algorithm = None
    #: the algorithm's own parameters, after iteration and support_size
    parameters = ()
    #: keyword parameters a family of algorithms shares (the projection engine's options)
    options = ()
    #: no node runs more iterations: 10^12 once allocated its error curves (7 TiB) first
    MAX_ITERATIONS = 10 ** 8
    COMMON = (Param("iteration", kind="int", low=0, high=MAX_ITERATIONS, doc="iterations to run"),
              Param("support_size", kind="int", low=1, optional=True,
                    doc="pixels in the support (None: the support rule sets it)"))

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" not in cls.__dict__:        # help() and listings show the declaration
            cls.__signature__ = _params.signature(cls.declared())

    @classmethod
    def declared(cls):
        """Every parameter: common, the algorithm's own, then the shared keyword options."""
        options = tuple(dataclasses.replace(p, keyword=True) for p in cls.options)
        return (*cls.COMMON, *cls.parameters, *options)

    def __init__(self, *args, **kwargs):
        owner = self.algorithm or type(self).__name__
        values, name, stored = _params.bind(owner, self.declared(), args, kwargs)
        super().__init__(name=name if name is not None else self.algorithm, **stored)
        self.values = values

    def run(self, fathers, ctx, rng=None):
        if len(fathers) > 1:
            stream = merge_streams(fathers)
            stream.disposable = True            # made here: nobody else holds it
            for father in fathers:
                father.release()
        else:
            stream = fathers[0]
        if self.params["support_size"] is not None:
            self._check_support_size(stream)
        return self.iterate(stream, ctx)

    def _check_support_size(self, stream):
        size = stream.x.size
        if self.params["support_size"] > size:
            raise ConfigError(f"support_size={self.params['support_size']} is larger than the "
                              f"{size} pixels of the array; give 1 <= support_size <= {size}")
        fixed = stream.data.fixed_support
        inside = size if fixed is None else int(np.count_nonzero(fixed))
        if self.params["support_size"] > inside:     # it would silently shrink to the fixed one
            raise ConfigError(f"support_size={self.params['support_size']} is larger than the "
                              f"{inside} pixels inside the fixed support (fixed_support_r); give "
                              f"support_size <= {inside} or a larger fixed_support_r")

    def iterate(self, stream, ctx):
        """Run ``self.params['iteration']`` iterations on ``stream`` and return the new stream.

        Must record the error curves with ``stream.record(self.name, emod, econ)``.
        """
        raise NotImplementedError


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ConfigError(f"{name}={value!r}: give an integer >= {minimum}")


def check_range(name, value, low, high, low_open=False, high_open=False):
    """Refuse a float parameter outside [low, high] (ends open where asked)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ConfigError(f"{name}={value!r}: give a number in {interval}")
