"""Each SDK plugin's iteration against its nearest built-in, measured in one run.

Single precision, all cores, simulated 512^2 and 128^3 patterns, steady state (a node of 2N
iterations less one of N, through the public node protocol, as in bench_iteration.py).
Rounds alternate between all the nodes (best of 8), so each ratio compares times taken under
the same load. Pairs and targets (issue 19):
- PixelRAAR (a fused per-pixel rule reading a relaxation map) against RAAR: <= 1.15x;
- PoissonHIO (a fused modulus rule, the Poisson proximal step) against HIO: <= 1.15x;
- OSS (a whole-array step on the iteration view: one extra FFT pair) against HIO: <= 1.5x.
  OSS needs a second FFT pair per iteration (the paper's filter acts on the updated x), so
  HIO + one FFT pair (the floor, printed) bounds it from below;
- RRR (the built-ins' linear rule with its own coefficients) against HIO;
- PoissonHIO, whose rule reads named constants (``c.weight_term``), against its twin written
  in the positional form (``c[4]``, the form before issue 33): 1.00x expected, the same code.

Needs the plugins installed (``pip install -e plugins/prnf-...``); a missing one is skipped.
Usage: python benchmarks/bench_sdk.py [--quick] [--constants] [--threads T]
(``--constants``: only the two PoissonHIO forms and HIO.)
"""
import argparse
import importlib

import numpy as np
from numba import njit

from prnf_algorithms import _threads  # noqa: F401  (thread environment first)
from prnf_algorithms.sdk import Rules, fft_pair
from prnf_core import phmodel
from prnf_core.parallel import available_cores
from prnf_core.simulate import simulate_pattern
from prnf_core.testing import make_stream

from bench_iteration import best_of, per_iteration, timed_nodes

# (plugin module, class, nearest built-in, target ratio)
PAIRS = [("prnf_pixel_raar", "PixelRAAR", "RAAR", 1.15),
         ("prnf_poisson", "PoissonHIO", "HIO", 1.15),
         ("prnf_oss", "OSS", "HIO", 1.5),
         ("prnf_rrr", "RRR", "HIO", None)]


@njit(inline="always")
def poisson_ratio_by_position(a, model, c):
    """prnf-poisson's rule as it was written before named constants."""
    return (model + np.sqrt(model * model + c[4] * a * a)) * c[5] / model


BY_POSITION = Rules("bench_poisson_by_position", modulus=poisson_ratio_by_position)


def positional_twin(node_class):
    """PoissonHIO with the positional rule and a tuple of coefficients."""
    def coefficients(self, view):
        c = node_class.coefficients(self, view)
        return tuple(c[name] for name in node_class.rules.constants)
    return type("PoissonHIOTuple", (node_class,), {"rules": BY_POSITION,
                                                   "coefficients": coefficients})


def makers(shape, size, constants_only=False):
    """Name -> node maker (iterations -> node) for the built-ins and the installed plugins."""
    beta = np.full(shape, 0.9)
    made = {"HIO": lambda n: phmodel.HIO(n, size, 0.9)}
    if not constants_only:
        made["RAAR"] = lambda n: phmodel.RAAR(n, size, 0.9)
    args = {"PixelRAAR": (beta,), "PoissonHIO": (0.9,), "OSS": (0.9,), "RRR": (0.5,)}
    for module, cls, _, _ in PAIRS:
        if constants_only and cls != "PoissonHIO":
            continue
        try:
            node_class = getattr(importlib.import_module(module), cls)
        except ImportError:
            print(f"  ({cls}: {module} is not installed, skipped)")
            continue
        made[cls] = lambda n, c=node_class, a=args[cls]: c(n, size, *a)
        if cls == "PoissonHIO":
            made["PoissonTuple"] = lambda n, c=positional_twin(node_class), a=args[cls]: c(n, size, *a)
    return made


def case(shape, threads, iterations, constants_only=False):
    intensity, mask, obj = simulate_pattern(shape, radius=shape[0] // 10, photons=1e9, beamstop=2, gap=1)
    stream, ctx = make_stream(intensity, mask=mask, precision="single", threads=threads)
    nodes = makers(shape, int(1.2 * np.count_nonzero(obj)), constants_only)
    pair = fft_pair(shape, np.complex64, threads)

    def floor():
        for _ in range(iterations):
            pair.fft()
            pair.ifft_unscaled()

    times = best_of({"floor": floor, **timed_nodes(nodes, stream, ctx, iterations)}, 8, 1)
    return {"floor": times["floor"] / iterations,
            **{name: per_iteration(times, name, iterations) for name in nodes}}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="256^2 and 64^3 for a fast check")
    parser.add_argument("--constants", action="store_true",
                        help="only PoissonHIO's named and positional forms (and HIO)")
    parser.add_argument("--threads", type=int, default=available_cores())
    args = parser.parse_args()
    shapes = [(256, 256), (64, 64, 64)] if args.quick else [(512, 512), (128, 128, 128)]
    for shape in shapes:
        ms = case(shape, args.threads, 100 if np.prod(shape) <= 512 * 512 else 10, args.constants)
        print(f"\n{'x'.join(map(str, shape))}, {args.threads} threads: ms/iteration, ratio to "
              "the nearest built-in")
        for name in ("floor", "RAAR", "HIO"):
            if name in ms:
                print(f"  {name:12s} {ms[name]:8.3f} ms")
        for _, cls, builtin, target in PAIRS:
            if cls in ms:
                goal = f"(target <= {target}x)" if target else ""
                print(f"  {cls:12s} {ms[cls]:8.3f} ms   {ms[cls] / ms[builtin]:5.2f}x {builtin} {goal}")
        if "OSS" in ms:
            bound = ms["HIO"] + ms["floor"]
            print(f"  (OSS's bound, HIO + one FFT pair: {bound:.3f} ms, {bound / ms['HIO']:.2f}x HIO)")
        if "PoissonTuple" in ms:
            print(f"  PoissonHIO, named constants (c.weight_term) / positional (c[4]): "
                  f"{ms['PoissonHIO']:.3f} / {ms['PoissonTuple']:.3f} ms = "
                  f"{ms['PoissonHIO'] / ms['PoissonTuple']:.3f}x (expected 1.00x: the same code)")


if __name__ == "__main__":
    main()
