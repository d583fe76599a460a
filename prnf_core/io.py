"""Reading pattern, mask and model arrays from .npy, .mat, .bin and HDF5/CXI files."""
from __future__ import annotations

import os
import re

import numpy as np

from .errors import DataFileError

SUFFIXES = (".npy", ".mat", ".bin", ".h5", ".hdf5", ".cxi")
_WITH_DATASET = re.compile(r"^(.*\.(?:h5|hdf5|cxi|mat)):(/?[^:]+)$", re.IGNORECASE)


def load_array(path, shape=None, dataset=None, dtype="<f8"):
    """Read one array from a file, chosen by its suffix.

    Parameters
    ----------
    path : str
        ``.npy`` (never unpickled), ``.mat`` (its only variable, or ``dataset``, written
        ``file.mat:variable``; v7.3 files are HDF5 and read as such),
        ``.bin`` (raw little-endian ``dtype``, needs ``shape``), ``.h5``/``.hdf5``/``.cxi``
        (needs ``dataset``, or a path written as ``file.h5:/group/data``).
    shape : sequence of int, optional
        Shape of a ``.bin`` file.
    dataset : str, optional
        Dataset path inside an HDF5/CXI file, or variable name in a ``.mat`` file.
    """
    path = os.fspath(path)
    named = _WITH_DATASET.match(path)
    if dataset is None and named:
        path, dataset = named.group(1), named.group(2)
    if not os.path.isfile(path):
        raise DataFileError(f"file not found: '{path}'; give an existing path to a pattern, "
                            f"mask or model file ({', '.join(SUFFIXES)})")
    suffix = os.path.splitext(path)[1].lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise DataFileError(f"unsupported file type '{suffix}' for '{path}'; "
                            f"supported: {', '.join(SUFFIXES)}")
    try:
        return reader(path, shape=shape, dataset=dataset, dtype=dtype)
    except DataFileError:
        raise
    except Exception as exc:  # a corrupt file of any kind
        raise DataFileError(f"cannot read '{path}' as {suffix}: {exc}") from exc


def _read_npy(path, **_):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataFileError(f"cannot read '{path}': it is not an .npy file (no NumPy header)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataFileError(f"'{path}' holds Python objects and would need pickle, which "
                                "PRNF never loads; save a plain numeric array with np.save") from exc
        raise


def _read_bin(path, shape=None, dtype="<f8", **_):
    if shape is None:
        raise DataFileError(f"'{path}' is raw binary: its shape is needed, e.g. "
                            "shape=(123, 123) (config key 'shape' / 'input|shape')")
    data = np.fromfile(path, dtype=dtype)
    count = int(np.prod(shape))
    if data.size != count:
        raise DataFileError(f"'{path}' holds {data.size} values of {np.dtype(dtype)}, but shape "
                            f"{tuple(shape)} needs {count}; check the shape and dtype")
    return data.reshape(shape)


def _read_mat(path, dataset=None, **_):
    import h5py
    if h5py.is_hdf5(path):                  # MATLAB v7.3: HDF5, arrays stored transposed
        with h5py.File(path, "r") as f:
            names = [k for k in f if not k.startswith("#") and isinstance(f[k], h5py.Dataset)]
            return _pick_variable(path, names, dataset, lambda name: f[name][()].T)
    from scipy.io import loadmat
    content = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    return _pick_variable(path, sorted(content), dataset, lambda name: np.asarray(content[name]))


def _pick_variable(path, names, wanted, read):
    """The variable ``wanted``, or the only one; several without a name is an error listing
    them (reading the alphabetically first once phased a mask)."""
    if wanted is not None:
        wanted = wanted.lstrip("/")
        if wanted not in names:
            raise DataFileError(f"'{path}' has no variable '{wanted}'; it has {sorted(names)}")
        return read(wanted)
    if not names:
        raise DataFileError(f"'{path}' holds no variables")
    if len(names) > 1:
        raise DataFileError(f"'{path}' holds several variables {sorted(names)}: name one, e.g. "
                            f"'{path}:{sorted(names)[0]}'")
    return read(names[0])


def _read_h5(path, dataset=None, **_):
    import h5py
    with h5py.File(path, "r") as f:
        if dataset is None:
            names = []
            f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
            raise DataFileError(f"'{path}' is HDF5: name the dataset, e.g. '{path}:/{names[0]}'"
                                if names else f"'{path}' is HDF5 but holds no dataset")
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise DataFileError(f"'{path}' has no dataset '{dataset}'")
        return f[dataset][()]


_READERS = {".npy": _read_npy, ".bin": _read_bin, ".mat": _read_mat,
            ".h5": _read_h5, ".hdf5": _read_h5, ".cxi": _read_h5}
