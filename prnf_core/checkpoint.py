"""Checkpoints: every finished repeat kept on disk, so an interrupted run resumes.

One HDF5 file per rank (``run.h5``; ``run.rank1.h5``... under MPI). A repeat is written into
a temporary group that is renamed once complete and flushed, so a kill mid-write leaves at
most an incomplete temporary group, which the next run discards. The file records the seed
and a fingerprint of the network: resuming with another network, precision or seed is refused.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import socket

import numpy as np

from .errors import ConfigError, DataFileError
from .stream import Stream

log = logging.getLogger("prnf.checkpoint")


def fingerprint(model_document, precision):
    """Hash of the network's structure, parameters and precision (node ids left out: they
    differ between two constructions of the same network)."""
    position = {n["id"]: k for k, n in enumerate(model_document["nodes"])}
    nodes = [{**n, "id": position[n["id"]], "fathers": [position[f] for f in n["fathers"]]}
             for n in model_document["nodes"]]
    text = json.dumps({"model": nodes, "precision": precision}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def data_fingerprint(inputs):
    """Hash of every input's prepared data (pattern, mask, geometry, supports, start): a
    checkpoint of other data must not be resumed as if it were this run's."""
    digest = hashlib.sha256()
    for node in inputs:
        d = node.prepared()
        for array in (d.amplitude, d.measured, d.fixed_support, d.initial_model, d.start_support):
            digest.update(b"none" if array is None else np.ascontiguousarray(array).tobytes())
        digest.update(repr((d.shape, d.center, d.background)).encode())
    return digest.hexdigest()


def rank_path(path, rank, size):
    """The file of one rank: ``run.h5`` alone, ``run.rank1.h5`` in a job of several ranks."""
    path = os.fspath(path)
    if size <= 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}.rank{rank}{ext or '.h5'}"


def files_written(path, size):
    """Every file a checkpoint of a job of ``size`` ranks writes (each rank's and its lock)."""
    files = [rank_path(path, rank, size) for rank in range(size)]
    return files + [f + ".lock" for f in files]


def ranks_written(path):
    """The ranks whose files of checkpoint ``path`` exist: {0} for a single process's file,
    else the rank numbers of ``run.rank<k>.h5`` (empty when there is none)."""
    import re
    path = os.fspath(path)
    stem, ext = os.path.splitext(path)
    folder, base = os.path.split(stem)
    pattern = re.compile(re.escape(base) + r"\.rank(\d+)" + re.escape(ext or ".h5") + "$")
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return set(), False
    ranks = {int(m.group(1)) for m in map(pattern.match, names) if m}
    return ranks, os.path.exists(path)


def check_ranks(path, size):
    """A checkpoint resumes only with the ranks that wrote it: with fewer, the other ranks'
    repeats were silently recomputed (each rank reads its own file)."""
    ranks, single = ranks_written(path)
    if size == 1 and ranks:
        written = max(ranks) + 1
        raise ConfigError(f"checkpoint '{path}' was written by a job of {written} MPI ranks "
                          f"(files {rank_path(path, 0, written)} ...): resume it with "
                          f"mpiexec -n {written}, or give another checkpoint path")
    if size > 1 and single:
        raise ConfigError(f"checkpoint '{path}' was written by a single process: resume it "
                          f"without mpiexec (this job has {size} ranks), or give another "
                          "checkpoint path")
    if size > 1 and ranks and ranks != set(range(size)):
        written = max(ranks) + 1
        raise ConfigError(f"checkpoint '{path}' has the files of {written} MPI ranks "
                          f"(rank {', '.join(map(str, sorted(ranks)))}), this job has {size}: "
                          f"resume it with mpiexec -n {written}, or give another checkpoint path")


def _make_folder(path):
    """The checkpoint's folder, created (a missing one was a raw FileNotFoundError on the
    lock file)."""
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise DataFileError(f"cannot create the checkpoint's folder '{folder}': "
                            f"{exc.strerror or exc}; give a checkpoint path in a folder you "
                            "can write to") from None


class Checkpoint:
    """Finished repeats of one rank, by repeat index, guarded by a lock file of our own
    (``<checkpoint>.lock`` with the owner's host and pid: HDF5's file locking is often off
    on cluster file systems, and two writers corrupt the file)."""

    def __init__(self, path, rank, size, fingerprint_, data_fingerprint_=None):
        if size == 1:          # a job of several checks once, before any rank opens its file
            check_ranks(path, size)
        _make_folder(path)
        path = rank_path(path, rank, size)
        self.path, self.fingerprint, self.data = path, fingerprint_, data_fingerprint_
        self.lock = FileLock(path + ".lock", f"checkpoint '{path}'")
        self.lock.acquire()
        try:
            self._open()
        except BaseException:
            self.lock.release()
            raise

    def _open(self):
        import h5py
        try:
            self.file = h5py.File(self.path, "a")
        except OSError as exc:
            raise DataFileError(f"cannot open checkpoint '{self.path}': {exc}; if it is damaged, "
                                "give another checkpoint path") from exc
        stored = self.file.attrs.get("fingerprint")
        if stored is not None and stored != self.fingerprint:
            self.file.close()
            raise ConfigError(f"checkpoint '{self.path}' was written by another network or "
                              "precision; give another checkpoint path (or delete that file "
                              "if you no longer need its repeats)")
        self.file.attrs["fingerprint"] = self.fingerprint
        self._check_data()
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
                      emod=g["emod"][()], econ=g["econ"][()], path=json.loads(g.attrs["path"]),
                      # not in checkpoints written before it was measured
                      emod_estimate=g["emod_estimate"][()] if "emod_estimate" in g else None)

    def save(self, repeat_id, stream, inputs):
        """Keep one finished repeat; a full disk is a one-line error saying what is kept."""
        try:
            self._save(repeat_id, stream, inputs)
        except (OSError, RuntimeError) as exc:      # h5py raises either on a full disk
            raise DataFileError(f"cannot write repeat {repeat_id} to checkpoint '{self.path}': "
                                f"{getattr(exc, 'strerror', None) or exc}; the repeats finished "
                                "before it are kept: free some space (or move the checkpoint) "
                                "and run the same command again to resume") from exc

    def _save(self, repeat_id, stream, inputs):
        temp = f"incomplete-{repeat_id}"
        if temp in self.file:
            del self.file[temp]
        g = self.file.create_group(temp)
        for key in ("x", "support", "background", "emod", "econ", "emod_estimate"):
            g[key] = getattr(stream, key)
        g.attrs["path"] = json.dumps(stream.path)
        g.attrs["input"] = next(k for k, n in enumerate(inputs) if n.prepared() is stream.data)
        self.file.move(temp, f"repeat-{repeat_id}")
        self.file.flush()

    def _check_data(self):
        """Other data than the checkpoint's: its repeats are stale; start afresh and say so."""
        stored = self.file.attrs.get("data_fingerprint")
        if self.data is None or stored == self.data:
            return
        finished = [n for n in self.file if n.startswith("repeat-")]
        if stored is not None:
            for name in finished:
                del self.file[name]
            self.file.attrs.pop("seed", None)
            log.warning("the data changed since checkpoint '%s' was written: its %d finished "
                        "repeat(s) are discarded and the run starts afresh", self.path,
                        len(finished))
        self.file.attrs["data_fingerprint"] = self.data
        self.file.flush()

    def close(self):
        try:
            self.file.close()
        finally:
            self.lock.release()


class FileLock:
    """An exclusive lock file holding ``host pid``; a lock left by a process of this host
    that has ended is taken over (with a note), any other is refused naming its owner."""

    def __init__(self, path, what):
        self.path, self.what, self.held = path, what, False

    def acquire(self):
        me = f"{socket.gethostname()} {os.getpid()}"
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                if not self._stale():
                    raise ConfigError(self._busy_message()) from None
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me + "\n")
            self.held = True
            return
        raise ConfigError(self._busy_message())

    def _owner(self):
        try:
            with open(self.path) as f:
                host, pid = f.read().split()[:2]
            return host, int(pid)
        except (OSError, ValueError):
            return None, None

    def _stale(self):
        """True (and the lock removed) when its owner ran on this host and has ended."""
        host, pid = self._owner()
        if host != socket.gethostname() or pid is None or _alive(pid):
            return False
        log.warning("%s: taking over the lock of process %d, which has ended", self.what, pid)
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
        return True

    def _busy_message(self):
        host, pid = self._owner()
        owner = f"process {pid} on host {host}" if pid else "another process"
        return (f"{self.what} is in use by {owner} (lock file '{self.path}'); wait until that "
                "run ends or give another checkpoint path. Only if that run has certainly ended "
                "(on a host this one cannot see), remove the lock file")

    def release(self):
        if self.held:
            self.held = False
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # someone else's process: alive
        return True
    return True
