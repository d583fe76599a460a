"""Repeats per second for 1 and 2 MPI ranks on the same total work, one thread per rank.

Usage: python benchmarks/bench_mpi.py [--repeats 16] [--size 128]
The script launches itself under ``mpiexec -n 1`` and ``mpiexec -n 2`` (the environment's
own mpiexec, from the ``mpich`` wheel) and prints both throughputs and their ratio.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np


def worker(args):
    from mpi4py import MPI
    from prnf_core import Runner, phmodel
    from prnf_core.simulate import simulate_pattern
    comm = MPI.COMM_WORLD
    intensity, mask, obj = simulate_pattern((args.size, args.size), args.size / 12, 1e8, beamstop=2, gap=1)
    folder = tempfile.mkdtemp()
    np.save(os.path.join(folder, "p.npy"), intensity)
    np.save(os.path.join(folder, "m.npy"), mask)
    size = int(1.2 * np.count_nonzero(obj))
    inp = phmodel.pInput({"pattern_path": os.path.join(folder, "p.npy"),
                          "mask_path": os.path.join(folder, "m.npy")})
    node = phmodel.ERA(100, size).after(phmodel.HIO(200, size, 0.9).after(inp))
    runner = Runner([inp], phmodel.pOutput().after(node), comm=comm, threads=1)
    runner.run(1, seed=0)                        # warm-up: JIT, FFT plans
    comm.Barrier()
    start = time.perf_counter()
    runner.run(args.repeats // comm.Get_size(), seed=1)
    comm.Barrier()
    if comm.Get_rank() == 0:
        print(f"ELAPSED {time.perf_counter() - start}")


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=16, help="total repeats (split over the ranks)")
    p.add_argument("--size", type=int, default=128, help="pattern side in pixels")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    from prnf_core.parallel import mpiexec_path
    mpiexec = mpiexec_path()
    rates = {}
    for ranks in (1, 2):
        cmd = [mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker",
               "--repeats", str(args.repeats), "--size", str(args.size)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        elapsed = float(out.split("ELAPSED")[1])
        rates[ranks] = args.repeats / elapsed
        print(f"{ranks} rank(s) x 1 thread: {args.repeats} repeats of {args.size}^2 "
              f"(HIO 200 + ERA 100) in {elapsed:.2f} s = {rates[ranks]:.2f} repeats/s")
    print(f"speed-up of 2 ranks over 1: {rates[2] / rates[1]:.2f}x (target >= 1.7x)")


if __name__ == "__main__":
    main()
