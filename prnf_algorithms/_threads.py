"""Thread set-up shared by Numba and FFTW; imported before either library loads.

The pyfftw wheel ships its own OpenMP runtime and Numba's ``omp`` layer uses the system's.
With both pools spinning after their work, each starves the other (PERF-NOTES: a 512^2
iteration went from 1.6 ms to 12.4 ms at 2 threads). A short spin count makes idle OpenMP
threads sleep quickly, so the two pools take turns instead of fighting.
"""
import os

os.environ.setdefault("GOMP_SPINCOUNT", "1000")


def configure(threads):
    """Use ``threads`` threads for Numba kernels (FFTW plans take their count when made)."""
    import numba
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    numba.set_num_threads(threads)
    return threads
