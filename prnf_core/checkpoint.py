"""Checkpoints: every finished repeat kept on disk, so an interrupted run resumes.

One HDF5 file per rank (``run.h5``; ``run.rank1.h5``... under MPI). A repeat is written into
a temporary group that is renamed once complete and flushed, so a kill mid-write leaves at
most an incomplete temporary group, which the next run discards. The file records the seed
and a fingerprint of the network: resuming with another network, precision or seed is refused.
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .errors import ConfigError, DataFileError
from .stream import Stream


def fingerprint(model_document, precision):
    """Hash of the network's structure, parameters and precision (node ids left out: they
    differ between two constructions of the same network)."""
    position = {n["id"]: k for k, n in enumerate(model_document["nodes"])}
    nodes = [{**n, "id": position[n["id"]], "fathers": [position[f] for f in n["fathers"]]}
             for n in model_document["nodes"]]
    text = json.dumps({"model": nodes, "precision": precision}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


class Checkpoint:
    """Finished repeats of one rank, by repeat index."""

    def __init__(self, path, rank, size, fingerprint_):
        path = os.fspath(path)
        if size > 1:
            stem, ext = os.path.splitext(path)
            path = f"{stem}.rank{rank}{ext or '.h5'}"
        self.path, self.fingerprint = path, fingerprint_
        self._open()

    def _open(self):
        import h5py
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as exc:
            raise DataFileError(f"cannot open checkpoint '{self.path}': {exc}; delete it to start "
                                "over") from exc
        stored = self.file.attrs.get("fingerprint")
        if stored is not None and stored != self.fingerprint:
            raise ConfigError(f"checkpoint '{self.path}' was written by another network or "
                              "precision; delete it or give another checkpoint path")
        self.file.attrs["fingerprint"] = self.fingerprint
        for name in [n for n in self.file if n.startswith("incomplete-")]:
            del self.file[name]

    def seed(self, requested):
        """The run's seed: the stored one when resuming (a different request is refused)."""
        stored = self.file.attrs.get("seed")
        if stored is None:
            seed = np.random.SeedSequence().entropy if requested is None else requested
            self.file.attrs["seed"] = str(seed)
            self.file.flush()
            return seed
        if requested is not None and str(requested) != stored:
            raise ConfigError(f"checkpoint '{self.path}' belongs to seed {stored}, not {requested}; "
                              "resume with that seed (or none) or delete the checkpoint")
        return int(stored)

    def __contains__(self, repeat_id):
        return f"repeat-{repeat_id}" in self.file

    def load(self, repeat_id, inputs):
        g = self.file[f"repeat-{repeat_id}"]
        return Stream(data=inputs[int(g.attrs["input"])].prepared(), x=g["x"][()],
                      support=g["support"][()], background=g["background"][()],
                      emod=g["emod"][()], econ=g["econ"][()], path=json.loads(g.attrs["path"]))

    def save(self, repeat_id, stream, inputs):
        temp = f"incomplete-{repeat_id}"
        if temp in self.file:
            del self.file[temp]
        g = self.file.create_group(temp)
        for key in ("x", "support", "background", "emod", "econ"):
            g[key] = getattr(stream, key)
        g.attrs["path"] = json.dumps(stream.path)
        g.attrs["input"] = next(k for k, n in enumerate(inputs) if n.prepared() is stream.data)
        self.file.move(temp, f"repeat-{repeat_id}")
        self.file.flush()

    def close(self):
        self.file.close()
