"""``prnf phase`` from no support information, against shrinkwrap by size given the true size.

Prints, over 10 seeds each:
- 2D: a complex object (hard-edged blobs times a smooth quadratic phase of up to ~1 rad),
  256^2, 1e7 photons (Poisson), a 3-pixel beam stop; the ``auto`` recipe as ``prnf phase``
  runs it (8 repeats, best 4 by free eMod within 10% merged);
- 3D: the same kind of object, 128^3 (fewer iterations and repeats: see ``--help``);
- next to each, the same network with shrinkwrap by size given the object's true pixel count
  (a shrink ramp from the loose start, the by-size recipe of the README);
success = NRMSE after alignment (translation, twin, phase, scale) below 0.2. Then the wall
time of ``prnf phase`` on a 512^2 pattern with 8 repeats, start-up included (a subprocess).

Usage: python benchmarks/bench_phase.py [--quick] [--seeds N] [--skip-3d]
"""
import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from prnf_algorithms import recipes
from prnf_core import Runner, phmodel
from prnf_core.simulate import make_object, object_nrmse

SUCCESS = 0.2


def complex_case(shape, radius, photons, beamstop, seed):
    """A complex object with a smooth phase (no linear ramp: that would move the pattern's
    centre), its Poisson pattern in photon counts and a beam-stop mask (1 = bad)."""
    rng = np.random.default_rng(seed)
    obj = make_object(shape, radius, rng).astype(complex)
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    curvature = rng.uniform(-0.5, 0.5)
    obj *= np.exp(1j * curvature * sum(((g - n / 2) / radius) ** 2 for g, n in zip(grids, shape)))
    intensity = np.fft.fftshift(np.abs(np.fft.fftn(obj)) ** 2)
    intensity = rng.poisson(intensity * photons / intensity.sum()).astype(np.float64)
    r2 = sum((g - n // 2) ** 2.0 for g, n in zip(grids, shape))
    return intensity, (r2 < beamstop ** 2).astype(np.uint8), obj


def by_size(config, size, iterations):
    """The auto recipe's network with shrinkwrap by the true size instead of a threshold."""
    inp = phmodel.pInput({**recipes.AUTO, **config})
    raar = phmodel.RAAR(iterations, size, recipes.BETA, shrink_iterations=iterations // 4).after(inp)
    era = phmodel.ERA(recipes.ERA_ITERATIONS, size).after(raar)
    return [inp], phmodel.pOutput().after(era)


def rates(shape, radius, seeds, iterations, repeat):
    options = {**recipes.auto.run_options, "repeat": repeat}
    errors = {"prnf phase (no support information)": [], "by size, given the true size": []}
    for seed in range(seeds):
        intensity, mask, obj = complex_case(shape, radius, 1e7, 3, seed)
        arrays = {"pattern": intensity, "mask": mask}
        config = {"pattern_path": "simulated.npy", "center": "auto"}
        nets = {"prnf phase (no support information)": recipes.auto(config, iterations=iterations),
                "by size, given the true size": by_size(config, int(np.count_nonzero(obj)),
                                                        iterations)}
        for name, (inputs, output) in nets.items():
            inputs[0].arrays = arrays
            out = Runner(inputs, output).run(seed=seed, **options)
            errors[name].append(object_nrmse(out["sample_ret"], obj))
    print(f"\n{'x'.join(map(str, shape))}, object radius {radius}, {iterations} RAAR + "
          f"{recipes.ERA_ITERATIONS} ERA iterations, {repeat} repeats, {seeds} seeds:")
    for name, errs in errors.items():
        errs = np.array(errs)
        print(f"  {name:38s} success {np.sum(errs < SUCCESS):2d}/{seeds}   NRMSE median "
              f"{np.median(errs):.3f}  (min {errs.min():.3f}, max {errs.max():.3f})", flush=True)


def wall_time_512(repeat=8):
    intensity, mask, _ = complex_case((512, 512), 40, 1e8, 3, 0)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "p.npy"), intensity)
        np.save(os.path.join(tmp, "m.npy"), mask)
        command = [sys.executable, "-m", "prnf_core.cli", "phase", "p.npy", "--mask", "m.npy",
                   "--repeat", str(repeat), "--seed", "1", "-q", "--out", "r.h5"]
        start = time.monotonic()
        subprocess.run(command, cwd=tmp, check=True, capture_output=True)
        return time.monotonic() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="128^2 and 48^3, 3 seeds")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--skip-3d", action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)           # the guards' notes, once per node
    seeds = 3 if args.quick else args.seeds
    if args.quick:
        rates((128, 128), 12, seeds, recipes.ITERATIONS, 8)
        rates((48, 48, 48), 5, seeds, 600, 2)
        return
    rates((256, 256), 24, seeds, recipes.ITERATIONS, 8)
    if not args.skip_3d:   # 128^3: 13 ms per iteration here, so 600 RAAR iterations, 2 repeats
        rates((128, 128, 128), 12, seeds, 600, 2)
    print(f"\nprnf phase, 512^2, 8 repeats, {os.cpu_count()} cores, start-up included: "
          f"{wall_time_512():.1f} s (a second run: FFTW wisdom and the JIT cache are warm: "
          f"{wall_time_512():.1f} s)")


if __name__ == "__main__":
    main()
