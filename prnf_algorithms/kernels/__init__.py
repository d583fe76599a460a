"""Numba kernels of one phasing iteration, one module per pass.

- :mod:`.layout`: how passes walk the ``(n0, R)`` view (slabs, column blocks, chunks);
- :mod:`.modulus`: column FFTs around the modulus projection, background refit;
- :mod:`.selection`: the shrinkwrap score and the exact top-N support selection;
- :mod:`.update`: the fused update with the new support and the next FFT input.

Passes that apply an algorithm's pointwise rule are templates (``modulus_pass``,
``score_pass``, ``score_image``, ``update_pass``): ``prnf_algorithms.rules.fuse`` compiles
them with the rule into cached parallel kernels. Plain NumPy twins of every pass live in
``tests/naive.py``.
"""
from .layout import BLOCK, GROUP_BYTES, slabs_fft  # noqa: F401
from .modulus import SHELL_ROWS, modulus_pass, refit_background  # noqa: F401
from .selection import (candidates_threshold, exact_threshold, gather_bin,  # noqa: F401
                        key_histogram, mark_chosen, score_image, score_pass, top_bin)
from .update import (HELD, HELD_ANYWHERE, HELD_NOT, hold_estimate, held_shape,  # noqa: F401
                     update_pass)
