"""MPI made optional: one communicator interface with and without mpi4py.

With ``comm=None`` (or no mpi4py) a :class:`SingleProcess` stands in, so the runner has one
code path. Collectives used: allgather (status checks that stop every rank together),
bcast, Reduce (sums of arrays, constant memory on the root) and gather (small lists).
"""
from __future__ import annotations

import os
import shutil
import sys

import numpy as np


class SingleProcess:
    """The communicator of a run without MPI: one rank, collectives are identities."""

    rank = 0
    size = 1

    def allgather(self, value):
        return [value]

    def bcast(self, value, root=0):
        return value

    def gather(self, value, root=0):
        return [value]

    def reduce_array(self, array, root=0):
        return array

    def ranks_on_node(self):
        return 1


class MPIComm:
    """Thin wrapper of an mpi4py communicator with the same interface."""

    def __init__(self, comm):
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()

    def allgather(self, value):
        return self.comm.allgather(value)

    def bcast(self, value, root=0):
        return self.comm.bcast(value, root=root)

    def gather(self, value, root=0):
        return self.comm.gather(value, root=root)

    def reduce_array(self, array, root=0):
        """Element-wise sum over ranks with MPI_Reduce; the sum lands on ``root``."""
        from mpi4py import MPI
        array = np.ascontiguousarray(array)
        if self.rank == root:           # in place: no second volume on the root
            self.comm.Reduce(MPI.IN_PLACE, array, op=MPI.SUM, root=root)
            return array
        self.comm.Reduce(array, None, op=MPI.SUM, root=root)
        return None

    def abort(self, code):
        """End every rank of the job now (mpiexec names the rank that called it)."""
        self.comm.Abort(code)

    def ranks_on_node(self):
        from mpi4py import MPI
        local = self.comm.Split_type(MPI.COMM_TYPE_SHARED)
        try:
            return local.Get_size()
        finally:
            local.Free()


def wrap(comm):
    """A communicator for the runner: ``None`` or a one-rank comm gives :class:`SingleProcess`."""
    if comm is None or isinstance(comm, (SingleProcess, MPIComm)):
        return comm or SingleProcess()
    return MPIComm(comm)


def world():
    """COMM_WORLD when running under mpiexec with mpi4py installed, else a single process."""
    if not any(k in os.environ for k in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_SIZE")):
        return SingleProcess()
    try:
        from mpi4py import MPI
    except ImportError:
        return SingleProcess()
    return MPIComm(MPI.COMM_WORLD)


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_threads(comm):
    """FFT and kernel threads per rank: the cores available divided among this node's ranks."""
    env = os.environ.get("PRNF_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            from .errors import ConfigError
            raise ConfigError(f"PRNF_THREADS={env!r}: give a number of threads per rank, "
                              "e.g. PRNF_THREADS=4, or unset it") from None
    return max(1, available_cores() // max(1, comm.ranks_on_node()))


def mpiexec_path():
    """The ``mpiexec`` of this environment (the ``mpich`` wheel puts it beside the Python
    executable), else the one on PATH, else None."""
    return (shutil.which("mpiexec", path=os.path.dirname(sys.executable))
            or shutil.which("mpiexec"))
