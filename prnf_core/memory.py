"""Refusing work that cannot fit in memory before allocating it.

A run that needs more than the machine has once read a 4 GiB pattern whole, attempted a
float64 copy and died with a raw MemoryError after 93 s (or, worse, was killed by the
kernel's OOM killer with nothing said). The estimates here are floors (README, Memory): a
refusal means the work certainly cannot fit.
"""
from __future__ import annotations

import os

from .errors import ResourceError

GiB = 1024 ** 3
#: Peak of a run in volumes V of its complex object (complex64: 8 bytes a pixel): about 7 V
#: measured (7.10 GiB at 512^3, V = 1 GiB); 6 V is a floor.
RUN_VOLUMES = 6
#: One repeat kept for keep_best: its object (1 V) and support (1/8 V).
KEPT_VOLUMES = 1.125
#: ``simulate_pattern`` in float64: object, distance, complex128 transform, intensity, noise.
SIMULATION_BYTES_PER_PIXEL = 48
#: Set to 0 to skip the checks (a machine whose swap or overcommit makes them too strict).
CHECK_ENV = "PRNF_MEMORY_CHECK"


def available():
    """Bytes of memory available to new allocations (``MemAvailable`` in /proc/meminfo),
    or None where it is not known (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def volume_bytes(shape, precision):
    """Bytes of one complex volume of ``shape`` in the run's precision."""
    pixels = 1
    for n in shape:
        pixels *= int(n)
    return pixels * (8 if precision == "single" else 16)


def run_peak(shapes, precision, kept=0):
    """A floor of a run's peak memory: :data:`RUN_VOLUMES` volumes of the largest input,
    one volume of data per further input, and ``kept`` repeats held for keep_best."""
    volumes = sorted((volume_bytes(s, precision) for s in shapes), reverse=True)
    if not volumes:
        return 0
    return int(volumes[0] * (RUN_VOLUMES + kept * KEPT_VOLUMES) + sum(volumes[1:]))


def gib(count):
    return f"{count / GiB:.1f} GiB" if count >= GiB / 10 else f"{count / 1024 ** 2:.0f} MiB"


def check_disk(need, what):
    """Raise :class:`ResourceError` when the temporary folder (``TMPDIR``) has less room than
    ``need`` bytes for what ``what`` writes there."""
    import shutil
    import tempfile
    if need <= 0 or os.environ.get(CHECK_ENV, "1") == "0":
        return
    folder = tempfile.gettempdir()
    free = shutil.disk_usage(folder).free
    if need > free:
        raise ResourceError(f"{what} writes {gib(need)} to the temporary folder '{folder}', "
                            f"which has {gib(free)} free; set TMPDIR to a folder with room or "
                            f"lower keep_best (or set {CHECK_ENV}=0 to try anyway)")


def check_fits(need, what, fix):
    """Raise :class:`ResourceError` when ``need`` bytes exceed the memory available, naming
    both numbers, ``what`` needs them and ``fix``."""
    if os.environ.get(CHECK_ENV, "1") == "0":
        return
    have = available()
    if have is not None and need > have:
        raise ResourceError(f"{what} needs at least {gib(need)} of memory, but {gib(have)} is "
                            f"available (MemAvailable, /proc/meminfo); {fix} (or set "
                            f"{CHECK_ENV}=0 to try anyway)")
