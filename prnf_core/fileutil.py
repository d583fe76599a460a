"""Writing files so that a crash never leaves a half-written one."""
from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time

from .errors import ConfigError


def umask():
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    The file gets the mode a plain ``open`` would give (0666 less the umask), not
    ``mkstemp``'s 0600, so colleagues can read a shared project's results."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-" + os.path.basename(path) + "-")
    os.close(fd)
    try:
        os.chmod(tmp, 0o666 & ~umask())
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path, content: bytes):
    """Write ``content`` to ``path`` through a temporary file and a rename; a full disk is a
    plain OSError and leaves no temporary file."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())


def save_npy(path, array):
    """``np.save`` through a temporary file and a rename: a full disk never leaves a
    half-written array where the whole one was."""
    import numpy as np
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())


def check_writable(path, what):
    """Refuse, before any work, an output ``path`` that cannot be written: a folder, a path
    under a file, a folder without write permission. Missing folders are created."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ConfigError(f"{what} '{path}' is a folder; give a file name, e.g. "
                          f"'{os.path.join(path, 'result.h5')}'")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} '{path}' cannot be written ({exc.strerror or exc}); "
                          "give a path in a folder you can write to") from None


def same_file(a, b):
    """Whether paths ``a`` and ``b`` name one file: the same inode when both exist (hard
    links, symbolic links, ``./x`` and ``x``), else the same resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:                # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def check_distinct(outputs, inputs=()):
    """Refuse, before any work, an output that would replace an input or another output.

    ``outputs`` and ``inputs`` are ``(what, path)`` pairs (``what``: the option, e.g.
    "--out"); empty paths are skipped. Writing a result over its own pattern once replaced the
    data without a word (exit 0)."""
    outputs = [(what, os.fspath(path)) for what, path in outputs if path]
    inputs = [(what, os.fspath(path)) for what, path in inputs if path]
    for k, (what, path) in enumerate(outputs):
        for other_what, other in inputs:
            if same_file(path, other):
                raise ConfigError(f"{what} '{path}' is the same file as the {other_what} "
                                  f"'{other}': writing it would destroy that input; give "
                                  f"{what} another path")
        for other_what, other in outputs[:k]:
            if same_file(path, other):
                raise ConfigError(f"{what} '{path}' and {other_what} '{other}' are the same "
                                  "file: one would overwrite the other; give them different paths")


def rescue_path(path):
    """Where a result goes when ``path`` could not be written: PRNF's cache folder."""
    stem = os.path.splitext(os.path.basename(os.fspath(path)))[0] or "result"
    folder = os.path.join(cache_dir(), "rescued")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.h5")


@contextlib.contextmanager
def signals_deferred(signals=(signal.SIGINT, signal.SIGTERM)):
    """Hold Ctrl-C and SIGTERM while a file is written (HDF5 once swallowed a Ctrl-C inside
    the save and the program exited 0); the first one received is raised afterwards."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {sig: signal.signal(sig, lambda s, _f: received.append(s)) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        handler = previous[received[0]]
        if callable(handler):
            handler(received[0], None)
        elif received[0] == signal.SIGINT:
            raise KeyboardInterrupt


def cache_dir():
    """PRNF's cache folder (FFTW wisdom, the current project): ``PRNF_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/prnf`` (default ``~/.cache/prnf``)."""
    return os.environ.get("PRNF_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "prnf")


#: FFTW planner efforts ``PRNF_FFTW_EFFORT`` accepts (a misspelt one was used as MEASURE).
FFTW_EFFORTS = ("FFTW_ESTIMATE", "FFTW_MEASURE", "FFTW_PATIENT", "FFTW_EXHAUSTIVE")


def check_environment():
    """PRNF's environment variables, checked before a run: a bad value is an error naming
    it, an unwritable cache folder a warning (FFTW wisdom and rescued results cannot be
    kept there; it was reported as saved)."""
    import logging
    effort = os.environ.get("PRNF_FFTW_EFFORT")
    if effort is not None and effort not in FFTW_EFFORTS:
        raise ConfigError(f"PRNF_FFTW_EFFORT={effort!r}: give one of {', '.join(FFTW_EFFORTS)}, "
                          "or unset it (PATIENT for long runs, MEASURE for short ones)")
    fftw_time_limit()
    folder = cache_dir()
    if not _writable_folder(folder):
        logging.getLogger("prnf").warning(
            "the cache folder '%s' (PRNF_CACHE_DIR) cannot be written: FFTW plans are not "
            "kept between runs and a result that cannot be saved has nowhere to go; set "
            "PRNF_CACHE_DIR to a folder you can write to", folder)


def fftw_time_limit():
    """Seconds FFTW may spend on one plan: ``PRNF_FFTW_TIMELIMIT`` (default 2; ``inf``: no
    limit). A bad value is an error naming it."""
    text = os.environ.get("PRNF_FFTW_TIMELIMIT", "2")
    try:
        limit = float(text)
    except ValueError:
        limit = float("nan")
    if not limit > 0:                           # NaN fails this too
        raise ConfigError(f"PRNF_FFTW_TIMELIMIT={text!r}: give seconds per FFTW plan, a number "
                          "above 0 (inf: no limit), or unset it (2)")
    return limit


def _writable_folder(folder):
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False
