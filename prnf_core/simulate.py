"""Simulated single-particle patterns with a known answer (demos, tests, ``prnf simulate``)."""
from __future__ import annotations

import numpy as np

from .merge import alignment, apply_alignment


def make_object(shape, radius, rng, blobs=4):
    """A compact, positive, clearly non-centrosymmetric object of ~``radius`` pixels.

    Hard-edged discs (balls in 3D) of different densities, overlapping along one direction from the
    array centre, so the twin image is distinct and the support well defined.
    """
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = np.array([n // 2 for n in shape], float)
    direction = rng.normal(size=len(shape))
    direction /= np.linalg.norm(direction)
    obj = np.zeros(shape)
    for k in range(blobs):
        r = radius * (0.7 - 0.12 * k)
        offset = direction * radius * (0.45 * k - 0.4) + rng.uniform(-0.15, 0.15, len(shape)) * radius
        dist = np.sqrt(sum((g - c - o) ** 2 for g, c, o in zip(grids, centre, offset)))
        obj = np.where(dist <= r, np.maximum(obj, 1.0 - 0.2 * k), obj)
    return obj


def simulate_pattern(shape=(96, 96), radius=7, photons=1e7, beamstop=2, gap=1, seed=0):
    """Centred Poisson-noisy intensity, its mask (1 = bad) and the true object.

    Parameters
    ----------
    shape : tuple of int
        Pattern shape (2D or 3D).
    radius : float
        Object radius in pixels (oversampling is ``shape / (2 radius)`` per axis).
    photons : float
        Expected total photon count (Poisson noise); ``0`` for a noise-free pattern.
    beamstop : float
        Radius of the masked (floating) central beam-stop in pixels.
    gap : int
        Half-width of a masked detector gap along the first axis (0 for none).
    seed : int
    """
    rng = np.random.default_rng(seed)
    obj = make_object(shape, radius, rng)
    intensity = np.fft.fftshift(np.abs(np.fft.fftn(obj)) ** 2)
    if photons:
        scale = photons / intensity.sum()
        intensity = rng.poisson(intensity * scale) / scale
    grids = np.ogrid[tuple(slice(0, n) for n in shape)]
    centre = [n // 2 for n in shape]
    radius_q = np.sqrt(sum((g - c) ** 2 for g, c in zip(grids, centre)))
    mask = radius_q < beamstop
    if gap:
        mask = mask | (np.abs(grids[0] - centre[0]) < gap)
    return intensity, mask.astype(np.uint8), obj


def object_error(retrieved, truth):
    """Relative error ``||o - t|| / ||t||`` after aligning ``o`` for translation, twin, phase."""
    truth = np.asarray(truth, complex)
    aligned = apply_alignment(np.asarray(retrieved, complex), *alignment(truth, retrieved))
    return float(np.linalg.norm(aligned - truth) / np.linalg.norm(truth))


def object_nrmse(retrieved, truth):
    """Like :func:`object_error`, after also fitting the retrieved object's scale (a pattern
    in photon counts, not in the simulation's units, gives an object of another scale)."""
    truth = np.asarray(truth, complex)
    aligned = apply_alignment(np.asarray(retrieved, complex), *alignment(truth, retrieved))
    power = np.vdot(aligned, aligned).real
    scale = np.vdot(aligned, truth) / power if power > 0 else 0.0
    return float(np.linalg.norm(scale * aligned - truth) / np.linalg.norm(truth))
