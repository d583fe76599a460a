import os
import pathlib

import numpy as np
import pytest

# Small tests plan FFTs quickly; wisdom and JIT caches stay out of the user's home.
os.environ.setdefault("PRNF_FFTW_EFFORT", "FFTW_ESTIMATE")
os.environ.setdefault("PRNF_THREADS", "1")

SHARED = pathlib.Path(__file__).resolve().parents[1].parent / "shared"
SPIPY = SHARED / "data" / "spipy"


@pytest.fixture
def spipy_data():
    if not (SPIPY / "pattern.npy").exists():
        pytest.skip("../shared/data/spipy is not present")
    return SPIPY


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
