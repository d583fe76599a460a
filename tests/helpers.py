"""Small simulated inputs shared by the tests."""
import numpy as np

from prnf_core.simulate import simulate_pattern


def write_pattern(tmp_path, shape=(32, 32), radius=4, photons=0, beamstop=0, gap=0, seed=3):
    intensity, mask, obj = simulate_pattern(shape, radius, photons, beamstop=beamstop, gap=gap,
                                            seed=seed)
    pattern_path, mask_path = tmp_path / "pattern.npy", tmp_path / "mask.npy"
    np.save(pattern_path, intensity)
    np.save(mask_path, mask)
    return str(pattern_path), str(mask_path), obj


def config(pattern_path, mask_path=None, **extra):
    return {"pattern_path": pattern_path, "mask_path": mask_path, "background": False, **extra}
