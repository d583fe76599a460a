"""Reading pattern, mask and model arrays from .npy, .mat, .bin and HDF5/CXI files."""
from __future__ import annotations

import os
import re

import numpy as np

from .errors import DataFileError, PRNFError

SUFFIXES = (".npy", ".mat", ".bin", ".h5", ".hdf5", ".cxi", ".edf", ".tif", ".tiff")
#: Where a CXI file keeps its measured pattern and mask (CXI 1.5; PyNX writes these).
CXI_DATA, CXI_MASK = "entry_1/data_1/data", "entry_1/data_1/mask"
_WITH_DATASET = re.compile(r"^(.*\.(?:h5|hdf5|cxi|mat)):(/?[^:]+)$", re.IGNORECASE)


def file_part(path):
    """The file of a path that may name a dataset inside it (``data.h5:/entry/data``)."""
    path = os.fspath(path)
    named = _WITH_DATASET.match(path)
    return named.group(1) if named else path


def load_array(path, shape=None, dataset=None, dtype="<f8"):
    """Read one array from a file, chosen by its suffix.

    Parameters
    ----------
    path : str
        ``.npy`` (never unpickled), ``.mat`` (its only variable, or ``dataset``, written
        ``file.mat:variable``; v7.3 files are HDF5 and read as such),
        ``.bin`` (raw little-endian ``dtype``, needs ``shape``), ``.h5``/``.hdf5``/``.cxi``
        (needs ``dataset``, or a path written as ``file.h5:/group/data``; a ``.cxi`` file's
        default is its pattern ``entry_1/data_1/data``), ``.edf`` (fabio), ``.tif``/``.tiff``
        (tifffile): the last two optional extras, ``pip install 'prnf[detectors]'``.
    shape : sequence of int, optional
        Shape of a ``.bin`` file.
    dataset : str, optional
        Dataset path inside an HDF5/CXI file, or variable name in a ``.mat`` file.
    """
    path = os.fspath(path)
    named = _WITH_DATASET.match(path)
    if dataset is None and named:
        path, dataset = named.group(1), named.group(2)
    _check_regular_file(path)
    suffix = os.path.splitext(path)[1].lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise DataFileError(f"unsupported file type '{suffix}' for '{path}'; "
                            f"supported: {', '.join(SUFFIXES)}")
    try:
        return reader(path, shape=shape, dataset=dataset, dtype=dtype)
    except PRNFError:         # ours already (a file larger than the memory, say)
        raise
    except Exception as exc:  # a corrupt file of any kind
        raise DataFileError(f"cannot read '{path}' as {suffix}: {exc}") from exc


def _read_npy(path, **_):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise DataFileError(f"cannot read '{path}': it is not an .npy file (no NumPy header)")
    header = _npy_header(path)
    if header is not None:        # the array and the float64 copy preparation makes of it
        from .memory import check_fits
        shape, dtype = header
        pixels = int(np.prod(shape, dtype=np.float64))
        check_fits(pixels * (dtype.itemsize + 8), f"reading '{path}' (shape {shape}, {dtype})",
                   "phase a cropped or binned pattern, or use a machine with more memory")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataFileError(f"'{path}' holds Python objects and would need pickle, which "
                                "PRNF never loads; save a plain numeric array with np.save") from exc
        raise


def _check_regular_file(path):
    """A missing path, a folder and a FIFO or device each get their own words (a FIFO would
    block the read forever)."""
    import stat
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataFileError(f"file not found: '{path}'; give an existing path to a pattern, "
                            f"mask or model file ({', '.join(SUFFIXES)})") from None
    except OSError as exc:
        raise DataFileError(f"cannot read '{path}': {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise DataFileError(f"'{path}' is a folder, not a file; give the path of the pattern, "
                            "mask or model file inside it")
    if not stat.S_ISREG(mode):
        raise DataFileError(f"'{path}' is not a regular file (a FIFO, socket or device); "
                            "save the data to a file and give that path")


def _npy_header(path):
    """(shape, dtype) from an .npy file's header without reading its data, or None."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError):      # objects (refused below) or a damaged header
        return None
    shape, dtype = array.shape, array.dtype
    del array
    return shape, dtype


def array_shape(path, shape=None):
    """The shape of the array ``load_array(path)`` would read, from the file's header
    (nothing read), or None where the format does not tell it cheaply or the file is bad."""
    path = os.fspath(path)
    named = _WITH_DATASET.match(path)
    dataset = named.group(2) if named else None
    path = named.group(1) if named else path
    suffix = os.path.splitext(path)[1].lower()
    if not os.path.isfile(path):      # a FIFO would block the header's read forever
        return None
    try:
        if suffix == ".npy":
            header = _npy_header(path)
            return None if header is None else tuple(header[0])
        if suffix == ".bin":
            return None if shape is None else tuple(shape)
        if suffix in (".h5", ".hdf5", ".cxi"):
            import h5py
            with h5py.File(path, "r") as f:
                dataset = dataset or (CXI_DATA if _is_cxi(f, path) else None)
                item = f.get(dataset) if dataset else None
                return tuple(item.shape) if isinstance(item, h5py.Dataset) else None
    except Exception:          # reading the file later says what is wrong with it
        return None
    return None


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


def _is_cxi(f, path):
    """A CXI file by name or by content: PRNF's own results are CXI files whatever their
    suffix (``result.h5``), and hold ``cxi_version`` at the root."""
    return str(path).lower().endswith(".cxi") or "cxi_version" in f


def _read_h5(path, dataset=None, **_):
    import h5py
    with h5py.File(path, "r") as f:
        if dataset is None and _is_cxi(f, path) and CXI_DATA in f:
            dataset = CXI_DATA
        if dataset is None:
            raise DataFileError(_name_a_dataset(path, f))
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise DataFileError(f"'{path}' has no dataset '{dataset}'")
        return f[dataset][()]


#: datasets listed in the message asking for one
LISTED = 8


def _name_a_dataset(path, f):
    """The words asking for a dataset: the file's 2D and 3D datasets (singleton axes not
    counted) with their shapes, the largest as the example. The first dataset of any kind
    once made the example 'ring.h5:/detector_distance', a number."""
    import h5py
    found = []
    f.visititems(lambda n, o: found.append((n, o.shape)) if isinstance(o, h5py.Dataset) else None)
    if not found:
        return f"'{path}' is HDF5 but holds no dataset"
    images = [(n, shape) for n, shape in found
              if shape is not None and len([k for k in shape if k != 1]) in (2, 3)]
    def listing(items):
        shown = ", ".join(f"/{n} {tuple(shape) if shape is not None else '(empty)'}"
                          for n, shape in items[:LISTED])
        return shown + (f" and {len(items) - LISTED} more" if len(items) > LISTED else "")
    if not images:
        return (f"'{path}' holds no 2D or 3D dataset to phase; its datasets: {listing(found)}")
    largest = max(images, key=lambda item: int(np.prod(item[1], dtype=np.float64)))[0]
    return (f"'{path}' is HDF5: name the dataset, e.g. '{path}:/{largest}'; its 2D and 3D "
            f"datasets: {listing(images)}")


def cxi_mask(path):
    """The mask stored beside a CXI file's pattern (``entry_1/data_1/mask``, non-zero = bad
    pixel) as 1 = bad, or None when the file has none."""
    import h5py
    path = os.fspath(path)
    named = _WITH_DATASET.match(path)
    if named or not path.lower().endswith((".cxi", ".h5", ".hdf5")) or not os.path.isfile(path):
        return None
    with h5py.File(path, "r") as f:
        if not _is_cxi(f, path):
            return None
        return (f[CXI_MASK][()] != 0).astype(np.uint8) if CXI_MASK in f else None


def _optional(module, suffix):
    """Import a reader that is an optional extra, or say how to install it."""
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataFileError(f"reading {suffix} files needs the '{module}' package: "
                            f"pip install 'prnf[detectors]' (or pip install {module})") from None


def _read_edf(path, **_):
    return np.asarray(_optional("fabio", ".edf").open(path).data)


def _read_tiff(path, **_):
    return np.asarray(_optional("tifffile", ".tif").imread(path))


_READERS = {".npy": _read_npy, ".bin": _read_bin, ".mat": _read_mat,
            ".h5": _read_h5, ".hdf5": _read_h5, ".cxi": _read_h5, ".edf": _read_edf,
            ".tif": _read_tiff, ".tiff": _read_tiff}
