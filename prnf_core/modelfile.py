"""Model files: PRNF's versioned JSON, and spipy's JSON list (read only).

Loading never executes code and never unpickles: class names resolve through the core's
node types and the plugin registry, arrays are base64 of raw little-endian bytes.
"""
from __future__ import annotations

import base64
import json
import os
import zlib

import numpy as np

from . import nodes as _nodes
from .errors import ConfigError, ModelFileError, PluginError
from .fileutil import atomic_write
from .plugins import get_registry

FORMAT = "prnf-model"
FORMAT_VERSION = 1
CORE_CLASSES = {"pInput": _nodes.pInput, "pOutput": _nodes.pOutput, "pMerge": _nodes.pMerge}
REFERENCE_CLASSES = {"phInput": "pInput", "phOutput": "pOutput", "phMerge": "pMerge"}
ARRAY_KEYS = ("pattern", "mask", "initial_model", "support")
PATH_KEYS = ("pattern_path", "mask_path", "initial_model", "support_path")
ARRAY_TAG = "__array__"          # a parameter that is an array: {"__array__": encoded}


def encode_array(a):
    a = np.ascontiguousarray(a)
    dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder not in "|<" else a.dtype
    raw = zlib.compress(a.astype(dtype).tobytes())
    return {"dtype": dtype.str, "shape": list(a.shape), "zlib_base64": base64.b64encode(raw).decode()}


def decode_array(spec):
    """An array from :func:`encode_array`'s record; its declared size is checked before and
    while inflating, so a small file cannot inflate to gigabytes."""
    try:
        dtype = np.dtype(spec["dtype"])
        if dtype.kind not in "biufc":
            raise ModelFileError(f"model file holds an array of dtype {dtype}, not numbers; "
                                 "PRNF loads numeric arrays only")
        shape = spec["shape"]
        if (not isinstance(shape, list) or len(shape) > 4
                or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
            raise ModelFileError(f"model file declares an array of shape {shape!r}; give a list "
                                 "of at most 4 sizes >= 0")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.b64decode(spec["zlib_base64"]), expected + 1)
        if len(raw) != expected or inflate.unconsumed_tail:
            raise ModelFileError(f"model file holds an array whose data does not match its declared "
                                 f"shape {shape} and dtype {dtype} ({expected} bytes)")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except ModelFileError:
        raise
    except Exception as exc:
        raise ModelFileError(f"model file holds a malformed array: {exc}") from exc


def node_record(node):
    """The JSON record of one node: class, distribution, parameters, fathers."""
    if node.kind == "algorithm":
        algo = get_registry().find(type(node))
        cls, dist, version = node.algorithm, (algo.distribution if algo else None), (algo.version if algo else None)
    else:
        cls, dist, version = type(node).__name__, "prnf", None
    params = {k: v for k, v in node.params.items()}
    return {"id": node.id, "class": cls, "distribution": dist, "version": version,
            "name": node.name, "params": _jsonable(params), "fathers": [f.id for f in node.fathers]}


def _jsonable(value):
    """A parameter as JSON: arrays (a mask given as an array, say) are kept encoded, paths
    become text; anything else that JSON cannot hold is refused, never written as null."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {ARRAY_TAG: encode_array(value)}
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    raise ModelFileError(f"parameter value {value!r} ({type(value).__name__}) cannot be written "
                         "to a model file; give numbers, text, lists or arrays")


def _from_json(value):
    """Inverse of :func:`_jsonable` for the arrays it encoded."""
    if isinstance(value, dict):
        if set(value) == {ARRAY_TAG}:
            return decode_array(value[ARRAY_TAG])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def document(order, inputs, output, skeleton=False, meta=None):
    """The JSON-ready description of a network (nodes in topological ``order``)."""
    from . import __version__
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "prnf_version": __version__,
           "skeleton": bool(skeleton), "inputs": [n.id for n in inputs], "output": output.id,
           "nodes": [node_record(n) for n in order], "meta": meta or {}}
    if not skeleton:
        doc["data"] = {str(n.id): {k: encode_array(v) for k, v in n.load().items() if v is not None}
                       for n in inputs}
    return doc


def dump(path, order, inputs, output, skeleton=False, meta=None):
    """Write a network to ``path`` atomically (see :func:`document`)."""
    write(path, document(order, inputs, output, skeleton, meta))


def write(path, doc):
    """Write a model document (:func:`document`, perhaps edited) to ``path`` atomically."""
    atomic_write(path, json.dumps(doc, indent=1).encode())


def _read(path):
    """A model file's parsed JSON, its reading errors named in one line."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise ModelFileError(f"model file not found: '{path}'") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"'{path}' is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ModelFileError(f"'{path}' is nested too deeply to be a model file") from None


def load(path):
    """Read a model file; returns (input nodes, output node, skeleton flag)."""
    doc = _read(path)
    try:
        if isinstance(doc, list):
            doc = from_reference(doc)
        return build(doc, base=os.path.dirname(os.path.abspath(os.fspath(path))))
    except (ModelFileError, PluginError):
        raise
    except RecursionError:
        raise ModelFileError(f"'{path}' holds values nested too deeply for a model file") from None
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError) as exc:
        # OverflowError: a number where an id belongs may be Infinity (int(inf))
        raise ModelFileError(f"'{path}' is not a usable model file: {type(exc).__name__}: {exc}") from exc


def _is_real(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


#: the run options a model file may record (``meta.run_options``, written by ``prnf phase
#: --dump-model``): each with its test and the fix named when it fails. The ranges are
#: Runner.run's, so that whatever ``prnf phase`` ran, ``prnf run`` replays.
RUN_OPTION_CHECKS = {
    "repeat": (lambda v: _is_id(v) and v >= 1, "an integer >= 1, e.g. 8"),
    "keep_best": (lambda v: v is None or (_is_id(v) and v >= 1)
                  or (isinstance(v, float) and 0 < v <= 1),
                  "a count >= 1, a fraction in (0, 1] (1.0: every repeat) or null"),
    "match": (lambda v: v is None or (_is_real(v) and 0 <= v < 10),
              "a fraction >= 0 of the best repeat's error (e.g. 0.1) or null"),
    "precision": (lambda v: v in ("single", "double"), "\"single\" or \"double\""),
    "seed": (lambda v: v is None or (_is_id(v) and v >= 0), "an integer >= 0 or null"),
}


def run_options(path):
    """The run options recorded in the model file ``path`` (``meta.run_options``), checked;
    ``{}`` when it records none (spipy's files, networks dumped by Runner.dump_model)."""
    doc = _read(path)
    meta = doc.get("meta") if isinstance(doc, dict) else None
    options = meta.get("run_options") if isinstance(meta, dict) else None
    if options is None:
        return {}
    where = f"model file '{path}': meta.run_options"
    if not isinstance(options, dict):
        raise ModelFileError(f"{where} is {type(options).__name__}, not an object like "
                             '{"repeat": 8, "keep_best": 4}')
    unknown = sorted(set(options) - set(RUN_OPTION_CHECKS))
    if unknown:        # a misspelt key would otherwise be dropped without a word
        raise ModelFileError(f"{where} has unknown key(s) {unknown}; accepted: "
                             f"{sorted(RUN_OPTION_CHECKS)}")
    for key, value in options.items():
        check, fix = RUN_OPTION_CHECKS[key]
        if not check(value):
            raise ModelFileError(f"{where}: \"{key}\": {json.dumps(value)} is not valid; "
                                 f"give {fix}")
    return dict(options)


def build(doc, base=None):
    """Build nodes from a parsed model document; relative file paths of its inputs resolve
    against ``base`` (the model file's folder), not the current one."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError("not a PRNF model file (no 'format': 'prnf-model' entry)")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"model file format version {version!r} is newer than this PRNF reads "
                             f"({FORMAT_VERSION}); upgrade prnf")
    _check_structure(doc)
    data = doc.get("data") or {}
    built = {}
    for rec in doc["nodes"]:
        node = _make_node(rec, data.get(str(rec["id"])), base)
        node.id = int(rec["id"])
        built[node.id] = node
    for rec in doc["nodes"]:
        for father in rec["fathers"]:
            built[int(rec["id"])].after(built[int(father)])
    _nodes.reserve_ids(built)
    return [built[int(i)] for i in doc["inputs"]], built[int(doc["output"])], bool(doc["skeleton"])


def _is_id(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_structure(doc):
    """The network's skeleton, checked before any node is built: each mistake named with
    its node (duplicate ids or a missing father were 'KeyError: 2')."""
    nodes = doc.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise ModelFileError(f"'nodes' must be a non-empty list of node records, not "
                             f"{type(nodes).__name__}")
    ids = set()
    for k, rec in enumerate(nodes):
        if not isinstance(rec, dict):
            raise ModelFileError(f"node record {k} is {type(rec).__name__}, not an object")
        missing = [key for key in ("id", "class", "params", "fathers") if key not in rec]
        if missing:
            raise ModelFileError(f"node record {k} (id {rec.get('id')!r}) lacks {missing}")
        if not _is_id(rec["id"]):
            raise ModelFileError(f"node record {k}: id {rec['id']!r} is not an integer")
        if rec["id"] in ids:
            raise ModelFileError(f"node id {rec['id']} appears twice; give every node its own id")
        ids.add(rec["id"])
    for rec in nodes:
        fathers = rec["fathers"]
        if not isinstance(fathers, list) or not all(_is_id(f) for f in fathers):
            raise ModelFileError(f"node {rec['id']} ({rec['class']!r}): fathers {fathers!r} must "
                                 "be a list of node ids, e.g. [11]")
        unknown = [f for f in fathers if f not in ids]
        if unknown:
            raise ModelFileError(f"node {rec['id']} ({rec['class']!r}) names father(s) {unknown}, "
                                 "which are not nodes of this file")
    inputs, output = doc.get("inputs"), doc.get("output")
    if not isinstance(inputs, list) or not all(_is_id(i) and i in ids for i in inputs):
        raise ModelFileError(f"'inputs' {inputs!r} must be a list of this file's node ids")
    if not (_is_id(output) and output in ids):
        raise ModelFileError(f"'output' {output!r} must be the id of one of this file's nodes")


def _make_node(rec, embedded, base=None):
    cls_name, params = rec["class"], rec["params"]
    if not isinstance(params, dict):
        raise ModelFileError(f"node {rec['id']}: 'params' must be an object")
    params = _from_json(params)
    if cls_name in CORE_CLASSES:
        cls = CORE_CLASSES[cls_name]
    else:
        cls = _algorithm_class(cls_name, rec.get("distribution"))
    if cls is _nodes.pInput and base is not None and isinstance(params.get("config_dict"), dict):
        params["config_dict"] = _resolve_paths(params["config_dict"], base)
    if cls is _nodes.pInput and embedded:
        params["arrays"] = {k: (decode_array(embedded[k]) if k in embedded else None) for k in ARRAY_KEYS}
    try:
        return cls(name=rec.get("name"), **params)
    except (TypeError, ConfigError) as exc:
        raise ModelFileError(f"node {rec['id']} ({cls_name}): wrong parameters {sorted(params)}: {exc}") from exc


def _resolve_paths(config, base):
    """Input file paths written relative in a model file are relative to the file's folder."""
    resolved = dict(config)
    for key in PATH_KEYS:
        value = config.get(key)
        if isinstance(value, str) and value and not os.path.isabs(value):
            resolved[key] = os.path.join(base, value)
    return resolved


def _algorithm_class(name, distribution):
    registry = get_registry()
    if name in registry.algorithms:
        return registry.get(name).cls
    hint = (f"; it comes from the distribution '{distribution}': pip install {distribution}"
            if distribution else "")
    raise PluginError(f"model file uses algorithm '{name}', which is not installed{hint}. "
                      f"Installed: {', '.join(registry.names()) or 'none'} (see `prnf plugins`)")


def from_reference(doc):
    """Translate spipy's ``[skeleton, input_ids, {id: node}]`` into PRNF's form."""
    if len(doc) != 3 or not isinstance(doc[2], dict):
        raise ModelFileError("unrecognised model file: a JSON list must be spipy's "
                             "[skeleton, input_ids, {id: node}]")
    skeleton, input_ids, table = doc
    fathers = {int(i): [] for i in table}
    for i in sorted(table, key=int):
        for child in table[i]["children"]:
            fathers[int(child)].append(int(i))
    outputs = [int(i) for i, rec in table.items() if rec["classname"] == "phOutput"]
    nodes, data = [], {}
    for i, rec in table.items():
        params = dict(rec["parameters"])
        name = params.pop("name", None)
        embedded = params.pop("data_reload", None)
        if embedded and not skeleton:
            arrays = {"pattern": embedded.get("pattern"), "mask": embedded.get("mask"),
                      "initial_model": embedded.get("initial")}
            data[i] = {k: encode_array(np.asarray(v, dtype=np.float64)) for k, v in arrays.items()
                       if v is not None}
        nodes.append({"id": int(i), "class": REFERENCE_CLASSES.get(rec["classname"], rec["classname"]),
                      "name": name, "params": params, "fathers": fathers[int(i)]})
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "skeleton": bool(skeleton),
            "inputs": [int(i) for i in input_ids], "output": outputs[0] if len(outputs) == 1 else None,
            "nodes": nodes, "data": data}
