"""Saving the result: time and size of each dataset under each compression, in one run.

Runs the network of issue 31's measurement (HIO 20 + ERA 5, single precision, one repeat)
on a simulated pattern, then writes each dataset of its result (``save_h5``'s layout) with
every filter and prints seconds and compression ratio per dataset and in total, beside the
run's own time. Filters: none; gzip 4 (h5py's default level); gzip 1 with HDF5's byte
shuffle (both built into every HDF5, so plain h5py, silx and PyNX read them); and, when
``hdf5plugin`` is installed, Blosc2 (zstd, shuffle, multi-threaded) and Zstd, which readers
need ``hdf5plugin`` (or the HDF5 filter plugins) for.

Usage: python benchmarks/bench_save.py [--shape 256,256,256] [--rounds 2]
"""
import argparse
import os
import tempfile
import time

import h5py
import numpy as np

from prnf_core import Runner, phmodel
from prnf_core.simulate import make_object


def filters():
    found = {"none": {}, "gzip 4": {"compression": "gzip"},
             "gzip 1 + shuffle": {"compression": "gzip", "compression_opts": 1, "shuffle": True}}
    try:
        import hdf5plugin
        found["blosc2 zstd 1"] = dict(hdf5plugin.Blosc2(cname="zstd", clevel=1,
                                                        filters=hdf5plugin.Blosc2.SHUFFLE))
        found["zstd 1"] = dict(hdf5plugin.Zstd(clevel=1))
    except ImportError:
        print("hdf5plugin is not installed: its filters are left out")
    return found


def run(shape):
    rng = np.random.default_rng(0)
    obj = make_object(shape, min(shape) / 10, rng)
    intensity = np.fft.fftshift(np.abs(np.fft.fftn(obj)) ** 2).astype(np.float32)
    inp = phmodel.pInput({"pattern_path": "p.npy", "start_support": "loose"})
    inp.arrays = {"pattern": intensity}
    era = phmodel.ERA(5, None, support_threshold=0.2).after(
        phmodel.HIO(20, None, 0.9, support_threshold=0.2).after(inp))
    started = time.perf_counter()
    out = Runner([inp], phmodel.pOutput().after(era), progress=False).run(seed=1)
    return out, time.perf_counter() - started


def volumes(out):
    """The result's arrays of more than 4096 values, as save_h5 stores them."""
    found = {}
    for key, value in out.items():
        if isinstance(value, np.ndarray) and value.size > 4096:
            found[key] = value
    found["measured intensity"] = np.square(out["input_amp"])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", default="256,256,256")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    out, seconds = run(shape)
    print(f"{'x'.join(map(str, shape))}: the run (HIO 20 + ERA 5, planning included) took "
          f"{seconds:.1f} s")
    arrays, options = volumes(out), filters()
    totals = {name: [np.inf, 0] for name in options}
    with tempfile.TemporaryDirectory() as folder:
        for key, data in arrays.items():
            cells = []
            for name, kw in options.items():
                best = np.inf
                for _ in range(args.rounds):      # alternating filters, best of the rounds
                    path = os.path.join(folder, "f.h5")
                    start = time.perf_counter()
                    with h5py.File(path, "w") as f:
                        f.create_dataset("d", data=data, chunks=True if kw else None, **kw)
                    best = min(best, time.perf_counter() - start)
                    size = os.path.getsize(path)
                ratio = data.nbytes / size
                totals[name][0] = best if totals[name][0] == np.inf else totals[name][0] + best
                totals[name][1] += size
                cells.append(f"{name} {best:.2f} s x{ratio:.1f}")
            print(f"  {key} ({data.dtype}, {data.nbytes / 2 ** 20:.0f} MiB): " + "; ".join(cells),
                  flush=True)
    raw = sum(a.nbytes for a in arrays.values())
    for name, (secs, size) in totals.items():
        print(f"  all: {name}: {secs:.2f} s ({secs / seconds:.0%} of the run), "
              f"{size / 2 ** 20:.0f} MiB of {raw / 2 ** 20:.0f}")
    save_files(out, seconds, args.rounds)


def save_files(out, seconds, rounds):
    """The whole result file through save_h5, each --compression choice, alternating."""
    from prnf_core.results import COMPRESSIONS, check_compression, save_h5
    usable = []
    for choice in COMPRESSIONS:
        try:
            check_compression(choice)
            usable.append(choice)
        except Exception:
            pass
    best = {c: np.inf for c in usable}
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "r.h5")
        for _ in range(rounds):
            for choice in usable:
                start = time.perf_counter()
                save_h5(out, path, compression=choice)
                best[choice] = min(best[choice], time.perf_counter() - start)
                sizes = os.path.getsize(path)
                best[choice + " size"] = sizes
    for choice in usable:
        print(f"  save_h5 --compression {choice}: {best[choice]:.2f} s "
              f"({best[choice] / seconds:.0%} of the run), {best[choice + ' size'] / 2 ** 20:.0f} MiB")


if __name__ == "__main__":
    main()
