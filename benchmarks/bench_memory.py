"""Peak memory (RSS) and time of whole runs, each in a fresh process, measured in one run.

Cases (single precision, HIO; the pattern is simulated and saved first, outside the measured
process):
- ``full``: 256^3, 20 iterations, one repeat, merge and save_h5 (target: peak <= 1.5 GiB);
- ``keep``: 128^3, 10 iterations, keep_best=4 with 4 and with 40 repeats (memory must not
  grow with the number of repeats);
- ``mpi``: 128^3 under ``mpiexec -n 2``, 2 and 64 repeats per rank, peak of rank 0 (must
  not grow with repeats);
- ``big`` (only with --big): 512^3, 3 iterations, merge and save (target: peak <= 8 GiB);
  then, in another process, ms per steady-state HIO iteration (nodes of 2 and 4 iterations,
  alternating, the set-up cancelling out, as bench_iteration.py) beside the FFT pair floor
  at that size, both with every core.
Each process prints its own peak after loading, after the run and after the save, so the
stage that sets the peak shows.

Usage: python benchmarks/bench_memory.py [--cases full,keep,mpi] [--big]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

GIB = 1024 ** 3


def peak_gib():
    """This process's peak resident set so far: VmHWM, which starts afresh at exec (not
    ru_maxrss: a child inherits its parent's, and the parent here has simulated a pattern)."""
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024 / GIB


def worker(args):
    """One measured run (in its own process): load, phase, merge, save."""
    from prnf_core import Runner, phmodel
    comm = None
    if args.mpi:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    start = time.perf_counter()
    inp = phmodel.pInput({"pattern_path": args.pattern, "mask_path": args.mask,
                          "background": True})
    size = int(np.load(args.size_file))
    hio = phmodel.HIO(args.iterations, size, 0.9).after(inp)
    runner = Runner([inp], phmodel.pOutput().after(hio), precision="single",
                    **({"comm": comm, "threads": 1} if comm else {}))
    loaded = peak_gib()
    t0 = time.perf_counter()
    out = runner.run(repeat=args.repeat, seed=1, keep_best=args.keep_best)
    ran, run_s = peak_gib(), time.perf_counter() - t0
    if out is not None:
        runner.save_h5(out, os.path.join(args.folder, "result.h5"))
        print(f"PEAK {peak_gib()}", flush=True)
        print(f"RESULT loaded {loaded:.2f} ran {ran:.2f} saved {peak_gib():.2f} GiB; "
              f"run {run_s:.1f} s ({run_s / args.repeat / args.iterations * 1e3:.0f} ms per "
              f"iteration with merge), total {time.perf_counter() - start:.1f} s", flush=True)


def time_iterations(args):
    """ms per steady-state HIO iteration at the pattern's size (in its own process, so
    that the memory figures above are the run's alone)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_iteration import best_of, per_iteration, timed_nodes
    from prnf_algorithms.sdk import fft_pair
    from prnf_core import RunContext, phmodel
    from prnf_core.parallel import available_cores
    inp = phmodel.pInput({"pattern_path": args.pattern, "mask_path": args.mask,
                          "background": True})
    size = int(np.load(args.size_file))
    ctx = RunContext(precision="single", threads=available_cores())
    stream = inp.run([], ctx, np.random.default_rng(1))
    fns = timed_nodes({"HIO": lambda n: phmodel.HIO(n, size, 0.9)}, stream, ctx, 2)
    pair = fft_pair(stream.x.shape, np.complex64, ctx.threads)
    fns["floor"] = lambda: (pair.fft(), pair.ifft_unscaled())
    times = best_of(fns, 3, 1)          # rounds alternate: HIO and floor under one load
    hio = per_iteration(times, "HIO", 2)
    print(f"RESULT {hio:.0f} ms per iteration; FFT pair floor {times['floor']:.0f} ms "
          f"({hio / times['floor']:.2f}x), best of 3 rounds alternating", flush=True)


def measure(cmd):
    """Run ``cmd``; return (its peak RSS in GiB as it reported it, its RESULT line)."""
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}")
    lines = proc.stdout.splitlines()
    peak = next((float(l.split()[1]) for l in lines if l.startswith("PEAK")), float("nan"))
    line = next((l for l in lines if l.startswith("RESULT")), "")
    return peak, line[len("RESULT "):]


def pattern_files(folder, shape):
    """Simulate a pattern of ``shape`` into ``folder``; return the worker's file options."""
    from prnf_core.simulate import simulate_pattern
    intensity, mask, obj = simulate_pattern(shape, radius=shape[0] // 10, photons=1e9,
                                            beamstop=2, gap=1)
    files = {name: os.path.join(folder, f"{name}.npy") for name in ("pattern", "mask", "size_file")}
    np.save(files["pattern"], intensity.astype(np.float32))
    np.save(files["mask"], mask)
    np.save(files["size_file"], int(1.2 * np.count_nonzero(obj)))
    del intensity, mask, obj
    return files


def worker_cmd(files, folder, iterations, repeat, keep_best=None, mpi=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--folder", folder,
           "--iterations", str(iterations), "--repeat", str(repeat),
           *[arg for name, path in files.items() for arg in (f"--{name.replace('_', '-')}", path)]]
    if keep_best:
        cmd += ["--keep-best", str(keep_best)]
    if mpi:
        from prnf_core.parallel import mpiexec_path
        cmd = [mpiexec_path(), "-n", "2", *cmd, "--mpi"]
    return cmd


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--cases", default="full,keep,mpi")
    p.add_argument("--big", action="store_true", help="also 512^3 (minutes, about 8 GiB)")
    for name in ("--worker", "--mpi", "--time"):
        p.add_argument(name, action="store_true", help=argparse.SUPPRESS)
    for name in ("--folder", "--pattern", "--mask", "--size-file", "--keep-best"):
        p.add_argument(name, help=argparse.SUPPRESS)
    p.add_argument("--iterations", type=int, help=argparse.SUPPRESS)
    p.add_argument("--repeat", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker and args.time:
        return time_iterations(args)
    if args.worker:
        args.keep_best = int(args.keep_best) if args.keep_best else None
        return worker(args)
    cases = args.cases.split(",") + (["big"] if args.big else [])
    with tempfile.TemporaryDirectory() as folder:
        if "full" in cases:
            files = pattern_files(folder, (256,) * 3)
            peak, line = measure(worker_cmd(files, folder, 20, 1))
            print(f"256^3, HIO 20, 1 repeat, merge + save: peak {peak:.2f} GiB "
                  f"(target <= 1.5)\n    {line}", flush=True)
        if "keep" in cases or "mpi" in cases:
            files = pattern_files(folder, (128,) * 3)
        if "keep" in cases:
            for repeat in (4, 40):
                peak, line = measure(worker_cmd(files, folder, 10, repeat, keep_best=4))
                print(f"128^3, HIO 10, keep_best 4 of {repeat} repeats: peak {peak:.2f} GiB"
                      f"\n    {line}", flush=True)
        if "mpi" in cases:
            for repeat in (2, 64):
                peak, line = measure(worker_cmd(files, folder, 10, repeat, mpi=True))
                print(f"128^3, HIO 10, mpiexec -n 2, {repeat} repeats per rank: rank 0 "
                      f"{line}", flush=True)
        if "big" in cases:
            shape = (512,) * 3
            files = pattern_files(folder, shape)
            peak, line = measure(worker_cmd(files, folder, 3, 1))
            print(f"512^3, HIO 3, 1 repeat, merge + save: peak {peak:.2f} GiB (target <= 8)"
                  f"\n    {line}", flush=True)
            _, line = measure(worker_cmd(files, folder, 0, 0) + ["--time"])
            print(f"    HIO at 512^3, every core: {line}", flush=True)


if __name__ == "__main__":
    main()
