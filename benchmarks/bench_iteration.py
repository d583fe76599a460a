"""Time one iteration of every algorithm against the bare FFTW pair (the floor), in one run.

Prints ms/iteration and ratios for 2D 512x512 and 3D 128^3, single precision, all cores:
- floor: pyfftw's whole-array FFTW forward + inverse pair, in place, all threads, planned
  with the same effort as the algorithms' plans (the algorithms run the same transforms in
  halves, with their work in between);
- each algorithm: an iteration in steady state (FFT halves + the fused Numba kernels), ratio
  to the floor; ERA and HIO also with background fitting off. Timed through the public node
  protocol only (``node.run``): a node of 2N iterations less one of N, so the set-up a node
  does once (arrays, plan look-ups) cancels out, as it does in a long run;
- numpy: the same HIO iteration written plainly with numpy.fft, ratio to the floor.

Usage: python benchmarks/bench_iteration.py [--quick] [--threads T]
"""
import argparse
import os
import time

import numpy as np

from prnf_algorithms import _threads, fft  # noqa: F401  (thread environment first)
from prnf_core import RunContext, phmodel
from prnf_core.nodes import pInput
from prnf_core.parallel import available_cores
from prnf_core.simulate import simulate_pattern


def best_of(fns, repeats, inner):
    """Best time per call of each of ``fns`` (name -> function) over ``repeats`` rounds.

    The rounds alternate between the functions, so that each ratio compares times taken
    under the same load (this machine is shared: the floor alone has moved by 15% between
    runs)."""
    for fn in fns.values():
        fn()                               # warm-up: JIT, plans, caches
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / inner)
    return {name: t * 1e3 for name, t in best.items()}


def timed_nodes(makers, stream, ctx, iterations):
    """Functions for :func:`best_of`: for each name -> node maker, ``name /N`` runs a node of
    ``iterations`` on ``stream`` and ``name /2N`` one of twice as many (public node protocol)."""
    fns = {}
    for name, make in makers.items():
        for label, n in ((" /N", iterations), (" /2N", 2 * iterations)):
            fns[name + label] = lambda node=make(n): node.run([stream], ctx)
    return fns


def per_iteration(times, name, iterations):
    """ms per steady-state iteration of ``name`` from the best times of its two runs: the
    set-up a node does once cancels out."""
    return (times[name + " /2N"] - times[name + " /N"]) / iterations


def numpy_hio(amp, measured, x, support_size, gamma=0.9):
    """Plain NumPy HIO iteration (modulus with mask, top-N support by argpartition)."""
    F = np.fft.fftn(x)
    F = np.where(measured, amp * np.exp(1j * np.angle(F)), F)
    y = np.fft.ifftn(F)
    score = np.abs(y) ** 2
    support = np.zeros(x.size, bool)
    support[np.argpartition(score.ravel(), -support_size)[-support_size:]] = True
    support = support.reshape(x.shape)
    return np.where(support, y, x - gamma * y).astype(x.dtype)


def thread_check(shape, cores, iterations):
    """HIO ms/iteration with 1 thread and with every core: the thread trap would make more
    threads slower (Numba's and FFTW's OpenMP pools spinning against each other)."""
    return {t: case(shape, t, repeats=3, iterations=iterations, only=("HIO",))[1][1] for t in (1, cores)}


def start(intensity, mask, background, ctx):
    """An input node's prepared data and the stream it hands on (fixed seed), from arrays."""
    inp = pInput({"pattern_path": "simulated.npy", "background": background},
                 arrays={"pattern": intensity, "mask": mask})
    return inp.prepared(), inp.run([], ctx, np.random.default_rng(0))


def case(shape, threads, repeats, iterations, only=None):
    intensity, mask, obj = simulate_pattern(shape, radius=shape[0] // 10, photons=1e9, beamstop=2, gap=1)
    size = int(1.2 * np.count_nonzero(obj))
    ctx = RunContext(precision="single", threads=threads)
    data, stream = start(intensity, mask, True, ctx)
    pair = fft.get_pair(shape, np.complex64, threads)

    def floor():                            # as many pairs as an algorithm's iterations
        for _ in range(iterations):
            pair.fft()
            pair.ifft_unscaled()

    algos = {"ERA": lambda n: phmodel.ERA(n, size), "HIO": lambda n: phmodel.HIO(n, size, 0.9),
             "DM": lambda n: phmodel.DM(n, size), "RAAR": lambda n: phmodel.RAAR(n, size, 0.9),
             "HPR": lambda n: phmodel.HPR(n, size, 0.9)}
    algos = {name: make for name, make in algos.items() if not only or name in only}
    fns = {"FFTW pair (floor)": floor, **timed_nodes(algos, stream, ctx, iterations)}
    names = list(algos)
    if not only:    # what background fitting costs (the figures for deciding on the target)
        _, bare = start(intensity, mask, False, ctx)
        off = {f"{name}, background off": algos[name] for name in ("ERA", "HIO")}
        fns.update(timed_nodes(off, bare, ctx, iterations))
        names += list(off)
    times = best_of(fns, repeats, 1)
    rows = [("FFTW pair (floor)", times["FFTW pair (floor)"] / iterations)]
    rows += [(name, per_iteration(times, name, iterations)) for name in names]
    if not only:
        x = stream.x.astype(np.complex64)
        amp, measured = data.amplitude.astype(np.float32), data.measured
        numpy_ms = best_of({"numpy": lambda: numpy_hio(amp, measured, x, size)}, 2, 2)["numpy"]
        rows.append(("NumPy HIO (numpy.fft)", numpy_ms))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256^2 and 64^3 for a fast check")
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    shapes = [(256, 256), (64, 64, 64)] if args.quick else [(512, 512), (128, 128, 128)]
    print(f"threads {args.threads}, GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT')}, "
          f"FFTW effort {fft.planner_effort()} for the floor and the algorithms alike, "
          f"single precision")
    print("(a first run plans every transform: with FFTW_PATIENT about two minutes; the "
          "wisdom is kept)", flush=True)
    for shape in shapes:
        iterations = 50 if np.prod(shape) <= 512 * 512 else 10
        rows = case(shape, args.threads, repeats=8, iterations=iterations)
        floor = rows[0][1]
        print(f"\n{'x'.join(map(str, shape))}: ms/iteration and ratio to the FFT floor")
        for name, ms in rows:
            print(f"  {name:24s} {ms:9.3f} ms   {ms / floor:6.2f}x")
    if args.threads > 1:
        shape = shapes[0]
        times = thread_check(shape, args.threads, 20)
        print(f"\nthread check, HIO {'x'.join(map(str, shape))}: 1 thread {times[1]:.3f} ms, "
              f"{args.threads} threads {times[args.threads]:.3f} ms "
              f"({times[1] / times[args.threads]:.2f}x faster with {args.threads})")


if __name__ == "__main__":
    main()
