"""Threshold shrinkwrap against shrinkwrap by size: ms per iteration, measured in one run.

RAAR (beta 0.9) on a simulated 512^2 pattern (and 128^3), single precision, all cores, in
steady state (a node of 2N iterations less one of N, through the public node protocol):
- a fixed support (the loose start, never updated): a plain iteration;
- by size: the ``support_size`` pixels of largest |y|^2, every iteration;
- by threshold: the FFT-smoothed |y| above 0.2 of its maximum, updated every 10 iterations
  (the ``prnf phase`` recipe), sigma 3 -> 1;
- by threshold, updated every iteration;
- by size with ``support_sigma`` 2 (the Gaussian smoothing every iteration).
Rounds alternate between the variants (best of 6 each), so each ratio compares times taken
under the same load. Target: threshold shrinkwrap every 10 iterations within 1.3x of by size.

Usage: python benchmarks/bench_shrinkwrap.py [--quick] [--threads T]
"""
import argparse

import numpy as np

from prnf_algorithms import _threads  # noqa: F401  (thread environment first)
from prnf_core import RunContext, phmodel
from prnf_core.nodes import pInput
from prnf_core.parallel import available_cores
from prnf_core.simulate import simulate_pattern

from bench_iteration import best_of, per_iteration, timed_nodes


def variants(size):
    """Name -> node maker (a number of iterations -> RAAR node)."""
    threshold = {"support_threshold": 0.2, "support_sigma": 3.0, "sigma_end": 1.0}
    return {
        "fixed support": lambda n: phmodel.RAAR(n, size, 0.9, support_rule="fixed"),
        "by size": lambda n: phmodel.RAAR(n, size, 0.9),
        "threshold, every 10": lambda n: phmodel.RAAR(n, None, 0.9, support_every=10, **threshold),
        "threshold, every 1": lambda n: phmodel.RAAR(n, None, 0.9, support_every=1, **threshold),
        "by size, support_sigma 2": lambda n: phmodel.RAAR(n, size, 0.9, support_sigma=2.0),
    }


def case(shape, threads, iterations):
    intensity, mask, obj = simulate_pattern(shape, radius=shape[0] // 10, photons=1e9, beamstop=2, gap=1)
    ctx = RunContext(precision="single", threads=threads)
    inp = pInput({"pattern_path": "simulated.npy", "background": False, "start_support": "loose"},
                 arrays={"pattern": intensity, "mask": mask})
    stream = inp.run([], ctx, np.random.default_rng(0))
    makers = variants(int(1.2 * np.count_nonzero(obj)))
    times = best_of(timed_nodes(makers, stream, ctx, iterations), 6, 1)
    return {name: per_iteration(times, name, iterations) for name in makers}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256^2 and 64^3 for a fast check")
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    shapes = [(256, 256), (64, 64, 64)] if args.quick else [(512, 512), (128, 128, 128)]
    for shape in shapes:
        rows = case(shape, args.threads, 50 if np.prod(shape) <= 512 * 512 else 20)
        print(f"\n{'x'.join(map(str, shape))}, {args.threads} threads: ms/iteration, ratio to "
              "by size and to a fixed support (no support update)")
        for name, ms in rows.items():
            print(f"  {name:26s} {ms:8.3f} ms   {ms / rows['by size']:5.2f}x   "
                  f"{ms / rows['fixed support']:5.2f}x")


if __name__ == "__main__":
    main()
