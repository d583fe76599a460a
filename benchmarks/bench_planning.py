"""FFTW planning against iterating: the first run at a new shape against a warm one.

For each shape, in a fresh process with an empty FFTW wisdom file (``PRNF_CACHE_DIR`` a new
folder), one repeat of a network (RAAR with threshold shrinkwrap every 10 iterations, then
ERA) runs twice: the first run plans (the split plans of the iteration and the smoothing's
real transforms), the second finds the plans made. Printed: both wall times, their ratio,
and the warm run's time per iteration. Then the per-iteration speed of the plans found
with the planning time limit (``PRNF_FFTW_TIMELIMIT``, default 2 s per plan; set it to
compare another) against
plans made without one, in alternating warm processes (the machine is shared: compare
within one run).

Usage: python benchmarks/bench_planning.py [--shapes 512,512 160,160,160 256,256,210]
       [--iterations 300] [--rounds 2]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, logging
import numpy as np
logging.disable(logging.WARNING)
from prnf_core import Runner, phmodel
from prnf_core.simulate import make_object
shape, iterations = tuple(json.loads(sys.argv[1])), int(sys.argv[2])
rng = np.random.default_rng(0)
obj = make_object(shape, min(shape) / 10, rng)
intensity = np.fft.fftshift(np.abs(np.fft.fftn(obj)) ** 2)
times = []
for run in range(2):
    inp = phmodel.pInput({"pattern_path": "p.npy", "start_support": "loose"})
    inp.arrays = {"pattern": intensity}
    raar = phmodel.RAAR(iterations, None, 0.9, support_threshold=0.2, support_every=10).after(inp)
    era = phmodel.ERA(20, None, support_threshold=0.2, support_every=10).after(raar)
    start = time.perf_counter()
    Runner([inp], phmodel.pOutput().after(era), progress=False).run(seed=1)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def run(shape, iterations, cache, limit=None, effort=None):
    env = {**os.environ, "PRNF_CACHE_DIR": cache}
    if limit is not None:
        env["PRNF_FFTW_TIMELIMIT"] = str(limit)
    if effort is not None:
        env["PRNF_FFTW_EFFORT"] = effort
    done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(shape), str(iterations)],
                          env=env, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["512,512", "160,160,160", "256,256,210"])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--first-only", action="store_true",
                        help="only the first and warm runs, not the time limit's comparison")
    parser.add_argument("--efforts", action="store_true",
                        help="only compare FFTW_MEASURE with FFTW_PATIENT: planning time and "
                             "per-iteration speed of the plans each finds")
    args = parser.parse_args()
    n = args.iterations + 20
    for text in args.shapes:
        shape = [int(v) for v in text.split(",")]
        if args.efforts:
            compare_efforts(shape, args.iterations, args.rounds)
            continue
        with tempfile.TemporaryDirectory() as limited, tempfile.TemporaryDirectory() as unlimited:
            first, warm = run(shape, args.iterations, limited)
            print(f"{'x'.join(map(str, shape))}: first run {first:.1f} s, warm {warm:.1f} s, "
                  f"ratio {first / warm:.2f}, {warm / n * 1e3:.1f} ms per iteration "
                  f"({args.iterations} RAAR + 20 ERA)", flush=True)
            if args.first_only:
                continue
            unlimited_first, _ = run(shape, args.iterations, unlimited, limit="inf")
            pairs = []
            for _ in range(args.rounds):        # warm processes, alternating
                pairs.append((run(shape, args.iterations, limited)[1],
                              run(shape, args.iterations, unlimited, limit="inf")[1]))
            a, b = (min(p[i] for p in pairs) for i in (0, 1))
            limit = os.environ.get("PRNF_FFTW_TIMELIMIT", "2")
            print(f"  per iteration, best of {args.rounds}: plans limited to {limit} s each "
                  f"{a / n * 1e3:.1f} ms, unlimited {b / n * 1e3:.1f} ms (ratio {a / b:.3f}); "
                  f"first run without the limit {unlimited_first:.1f} s", flush=True)


def compare_efforts(shape, iterations, rounds):
    """MEASURE against PATIENT, each from an empty wisdom file: what planning costs the first
    run (first minus warm) and what the plans give per iteration (warm processes, alternating)."""
    n, name = iterations + 20, "x".join(map(str, shape))
    with tempfile.TemporaryDirectory() as measure, tempfile.TemporaryDirectory() as patient:
        caches = {"FFTW_MEASURE": measure, "FFTW_PATIENT": patient}
        planning, warm = {}, {effort: [] for effort in caches}
        for effort, cache in caches.items():
            first, again = run(shape, iterations, cache, effort=effort)
            planning[effort] = first - again
            warm[effort].append(again)
        for _ in range(rounds):
            for effort, cache in caches.items():
                warm[effort].append(run(shape, iterations, cache, effort=effort)[1])
        best = {effort: min(times) / n for effort, times in warm.items()}
        gain = best["FFTW_MEASURE"] - best["FFTW_PATIENT"]
        extra = planning["FFTW_PATIENT"] - planning["FFTW_MEASURE"]
        payback = f"{extra / gain:.0f} iterations" if gain > 0 else "never (no gain)"
        print(f"{name}: planning (first run minus warm) MEASURE {planning['FFTW_MEASURE']:.1f} s, "
              f"PATIENT {planning['FFTW_PATIENT']:.1f} s; per iteration, best of {rounds + 1}: "
              f"MEASURE {best['FFTW_MEASURE'] * 1e3:.2f} ms, PATIENT "
              f"{best['FFTW_PATIENT'] * 1e3:.2f} ms (ratio "
              f"{best['FFTW_MEASURE'] / best['FFTW_PATIENT']:.3f}); PATIENT pays back in {payback}",
              flush=True)


if __name__ == "__main__":
    main()
