"""Peak memory (RSS) by stage of one run, in a fresh process (issue 31's breakdown).

The run: a simulated pattern (saved first, by the parent), then in a child process
HIO 20 + ERA 5 in single precision, ``--repeat`` repeats (default 2), merge, finish, save
and plot, as ``prnf run`` does. Each stage is a function wrapped so that the kernel's peak
counter (VmHWM) is reset to the current RSS when it starts (``/proc/self/clear_refs``) and
read when it ends: the peak printed for a stage is the most the process held during it.
Also printed: RSS before anything (Python, NumPy), after importing PRNF (Numba, LLVM,
pyfftw, h5py, SciPy) and the size of one complex volume, so each stage reads in volumes.

Usage: python benchmarks/bench_memory_stages.py [--shape 256,256,256] [--repeat 2]
       [--phase]   (the auto recipe, prnf phase's network, instead of HIO + ERA)
"""
import argparse
import collections
import functools
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

GIB = 1024 ** 3


def status(field):
    with open("/proc/self/status") as f:
        line = next(l for l in f if l.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def reset_peak():
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


PEAKS = collections.OrderedDict()


def staged(name, function):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        outer = status("VmHWM")             # the peak so far, kept across the reset
        reset_peak()
        try:
            return function(*args, **kwargs)
        finally:
            PEAKS[name] = max(PEAKS.get(name, 0), status("VmHWM"))
            PEAKS["whole run"] = max(PEAKS.get("whole run", 0), outer, PEAKS[name])
    return wrapper


def child(args):
    start_rss = status("VmRSS")
    from prnf_core import Runner, phmodel, data, merge, phexec, postprocess, results
    from prnf_algorithms import engine, recipes
    import matplotlib.figure  # noqa: F401  (the plot's import, counted as start-up)
    imported = status("VmRSS")
    data.prepare = staged("load and prepare", data.prepare)
    engine.ProjectionAlgorithm.iterate = staged("iterate", engine.ProjectionAlgorithm.iterate)
    merge.MergeAccumulator.add = staged("align and add", merge.MergeAccumulator.add)
    phexec.result_dict = staged("means, PRTF, model", phexec.result_dict)
    postprocess.finish_result = staged("finish (ramp, centre)", postprocess.finish_result)
    phexec.verdict = staged("verdict", phexec.verdict)
    results.save_h5 = staged("save", results.save_h5)
    results.plot_result = staged("plot", results.plot_result)
    config = {"pattern_path": args.pattern, "mask_path": args.mask}
    if args.phase:
        inputs, output = recipes.auto(config)
        run_options = dict(recipes.auto.run_options, repeat=args.repeat)
    else:
        inp = phmodel.pInput(dict(config, start_support="loose"))
        era = phmodel.ERA(5, None, support_threshold=0.2).after(
            phmodel.HIO(20, None, 0.9, support_threshold=0.2).after(inp))
        inputs, output, run_options = [inp], phmodel.pOutput().after(era), {"repeat": args.repeat}
    runner = Runner(inputs, output, progress=False)
    out = runner.run(seed=1, **run_options)
    runner.save_h5(out, os.path.join(args.folder, "r.h5"))
    runner.plot_result(out, os.path.join(args.folder, "r.png"))
    print(json.dumps({"start": start_rss, "imported": imported, "peaks": PEAKS}))


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="256,256,256")
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--phase", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--pattern", help=argparse.SUPPRESS)
    p.add_argument("--mask", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    shape = tuple(int(v) for v in args.shape.split(","))
    from prnf_core.simulate import simulate_pattern
    with tempfile.TemporaryDirectory() as folder:
        intensity, mask, _ = simulate_pattern(shape, radius=shape[0] // 10, photons=1e9,
                                              beamstop=2, gap=1)
        pattern, mask_path = os.path.join(folder, "p.npy"), os.path.join(folder, "m.npy")
        np.save(pattern, intensity.astype(np.float32))
        np.save(mask_path, mask)
        del intensity, mask
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--pattern", pattern,
               "--mask", mask_path, "--folder", folder, "--repeat", str(args.repeat)]
        done = subprocess.run(cmd + (["--phase"] if args.phase else []), check=True,
                              capture_output=True, text=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    volume = int(np.prod(shape)) * 8
    what = "the auto recipe" if args.phase else "HIO 20 + ERA 5"
    print(f"{'x'.join(map(str, shape))}, {what}, {args.repeat} repeats, single precision; "
          f"one complex64 volume V = {volume / 2 ** 20:.0f} MiB")
    print(f"  Python and NumPy: {report['start'] / GIB:.2f} GiB; after importing PRNF, "
          f"Numba, pyfftw, h5py, matplotlib: {report['imported'] / GIB:.2f} GiB")
    for name, peak in report["peaks"].items():
        print(f"  {name:24s} peak {peak / GIB:.2f} GiB  "
              f"({(peak - report['imported']) / volume:.1f} V above start-up)")


if __name__ == "__main__":
    main()
