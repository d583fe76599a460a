"""The retrieved object as VTK image data (``.vti``) for ParaView, napari and VisIt.

Written through pyevtk, an optional extra: ``pip install 'prnf[vtk]'``. The file holds
three point arrays on the object's grid, ``amplitude`` (``|o|``), ``phase`` (rad, in
``[-pi, pi]``) and ``support`` (the fraction of merged repeats holding each pixel), with
the voxel spacing in metres when the result knows the geometry (``out["geometry"]``, see
:func:`prnf_core.results.real_space_pixel_size`), else 1 (pixels). The origin puts the
array's centre (index ``N // 2``) at 0, as the result file's axes do. VTK's x is the
array's last (fastest) axis; a 2D result is one plane (z extent 0).
"""
from __future__ import annotations

import os

import numpy as np

from .errors import PRNFError
from .fileutil import atomic_path

#: the file name ending ParaView reads as XML image data
SUFFIX = ".vti"
INSTALL = "pip install 'prnf[vtk]' (or pip install pyevtk)"


def _pyevtk():
    """pyevtk's ``hl`` module, or an error saying how to install it."""
    try:
        from pyevtk import hl
    except ImportError:
        raise PRNFError(f"writing VTK files needs the 'pyevtk' package: {INSTALL}") from None
    return hl


def check_available():
    """Refuse ``--vtk`` before any work when pyevtk is missing (not after the run)."""
    _pyevtk()


def grid(out):
    """``(spacing, origin)`` of the object's grid in VTK's axis order (x, y, z): metres
    when the result knows its geometry, else pixels."""
    from .results import real_space_pixel_size
    shape = np.shape(out["sample_ret"])
    size = real_space_pixel_size(out)
    size = np.ones(len(shape)) if size is None else np.asarray(size, dtype=np.float64)
    if len(shape) == 2:                   # one plane: z has a single point
        shape, size = (1, *shape), np.array([1.0, *size])
    spacing = tuple(float(s) for s in size[::-1])
    origin = tuple(-float(n // 2) * s for n, s in zip(shape[::-1], spacing))
    return spacing, origin


def write_vti(out, path):
    """Write ``out["sample_ret"]`` (2D or 3D, complex) as VTK image data, atomically.

    Parameters
    ----------
    out : dict
        A result from :meth:`Runner.run` (``sample_ret``, ``support``; ``geometry``
        optional).
    path : str or path-like
        The file to write; must end in ``.vti``.

    Returns
    -------
    str
        ``path``.
    """
    path = os.fspath(path)
    if not path.lower().endswith(SUFFIX):
        raise PRNFError(f"VTK file '{path}': VTK image data is written as XML, {SUFFIX}; "
                        f"give a path ending in {SUFFIX}")
    hl = _pyevtk()
    obj = np.asarray(out["sample_ret"])
    support = np.asarray(out["support"], dtype=np.abs(obj).dtype)
    if obj.ndim == 2:
        obj, support = obj[None], support[None]
    # VTK runs x fastest: the transpose of a C-ordered (z, y, x) array is exactly that
    arrays = {"amplitude": np.abs(obj).T, "phase": np.angle(obj).T, "support": support.T}
    spacing, origin = grid(out)
    with atomic_path(path) as tmp:
        base = tmp + "-pyevtk"            # pyevtk adds .vti to the name it is given
        try:
            written = hl.imageToVTK(base, origin=origin, spacing=spacing, pointData=arrays)
            os.replace(written, tmp)
        finally:
            if os.path.exists(base + SUFFIX):
                os.remove(base + SUFFIX)
    return path
