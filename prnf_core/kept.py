"""The repeats a rank keeps for ``keep_best``, in bounded memory.

Which repeats are merged is known only when all have run, so each rank keeps its ``keep``
best so far. Held in memory, ``keep_best=0.5`` of 40 repeats at 128^3 added 442 MiB (and
under MPI every rank held as many): here at most :data:`IN_MEMORY` of them stay in memory,
the others are written to a temporary folder (``TMPDIR``) and read back, memory-mapped, for
the merge; the folder is removed when the run ends, however it ends.
"""
from __future__ import annotations

import heapq
import os
import shutil
import tempfile

import numpy as np

from .errors import ResourceError

#: kept repeats held in memory; the recipe keeps 4, which never touch the disk
IN_MEMORY = 4


class KeptRepeats:
    """The ``keep`` repeats of lowest ranking error pushed so far (ties: the lower id)."""

    def __init__(self, keep):
        self.keep = keep
        self._heap = []          # (-error, -id, stream): the worst on top
        self._folder = None

    def push(self, error, repeat_id, stream):
        if len(self._heap) >= self.keep and (-error, -repeat_id) < self._heap[0][:2]:
            return                              # worse than every kept one: not kept
        if self.in_memory() >= IN_MEMORY:
            self._spill(repeat_id, stream)
        heapq.heappush(self._heap, (-error, -repeat_id, stream))
        if len(self._heap) > self.keep:
            _, gone, stream = heapq.heappop(self._heap)
            self._forget(-gone, stream)

    def in_memory(self):
        return sum(1 for *_, s in self._heap if not getattr(s, "spilled", False))

    def items(self):
        """``(error, id, stream)`` of every kept repeat (spilled ones memory-mapped)."""
        return [(-e, -i, s) for e, i, s in self._heap]

    def take(self):
        """:meth:`items`, handed over: the caller holds the only references from now on (a
        stream merged can then be let go); spilled files stay until :meth:`close`."""
        items, self._heap = self.items(), []
        return items

    def close(self):
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def _spill(self, repeat_id, stream):
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="prnf-kept-")
        try:
            for key in ("x", "support"):
                path = self._path(repeat_id, key)
                np.save(path, getattr(stream, key))
                setattr(stream, key, np.load(path, mmap_mode="r"))
        except OSError as exc:
            raise ResourceError(f"cannot keep repeat {repeat_id} for keep_best in "
                                f"'{self._folder}': {exc.strerror or exc}; free some space "
                                "there, set TMPDIR to a folder with room, or lower keep_best"
                                ) from exc
        stream.spilled = True

    def _forget(self, repeat_id, stream):
        if getattr(stream, "spilled", False):
            stream.x = stream.support = None            # the maps first, then the files
            for key in ("x", "support"):
                try:
                    os.remove(self._path(repeat_id, key))
                except OSError:
                    pass

    def _path(self, repeat_id, key):
        return os.path.join(self._folder, f"repeat-{repeat_id}-{key}.npy")


def spilled_bytes(keep, volume):
    """Bytes written to the temporary folder when ``keep`` repeats of ``volume`` bytes
    (their complex object; the support adds 1/8 of it) are kept."""
    return int(max(0, keep - IN_MEMORY) * volume * 1.125)
