"""Test helpers for plugin authors: a stream from arrays, one node run on it.

    from prnf_core.testing import make_stream, run_node
    stream, ctx = make_stream(intensity, x=start, support=support, precision="double")
    # with the background fitted from none: make_stream(..., background=True, background_start=0)
    out = run_node(MyAlgo(10, None, support_threshold=0.2), stream, ctx)

No private name is needed: the stream comes from an input node given arrays, exactly as a
model file's embedded data is read.
"""
from __future__ import annotations

import numpy as np

from .nodes import pInput
from .stream import RunContext


def make_stream(pattern, x=None, support=None, mask=None, precision="single", seed=0,
                threads=1, background=False, background_start=None, **config):
    """``(stream, ctx)``: the stream an input node hands on for ``pattern`` (intensities) and
    ``mask`` (True: unmeasured), with ``config`` keys of the input node (``center``,
    ``start_support``...). ``x`` and ``support`` replace the random start; without
    ``background`` the stream carries none. ``background_start`` replaces the background the
    algorithms start from (the input node's estimate, with ``background=True``): a number or
    one value per shell; ``0`` is a simulated pattern's true background, so that the true
    object is a fixed point while the background is fitted."""
    ctx = RunContext(precision=precision, threads=threads)
    node = pInput({"pattern_path": "arrays", "background": background, **config},
                  arrays={"pattern": np.asarray(pattern), "mask": mask})
    stream = node.run([], ctx, np.random.default_rng(seed))
    if x is not None:
        stream.x = np.asarray(x).astype(ctx.complex_dtype)
    if support is not None:
        stream.support = np.asarray(support, dtype=bool)
    if background_start is not None:
        start = np.broadcast_to(np.asarray(background_start, dtype=ctx.real_dtype),
                                stream.background.shape)
        stream.background = start.copy()
    return stream, ctx


def run_node(node, stream, ctx=None):
    """Run one algorithm node on ``stream`` (left unchanged) and return the stream it hands
    on (``.x``, ``.support``, ``.emod``, ``.econ``)."""
    ctx = ctx or RunContext(precision="single" if stream.x.dtype == np.complex64 else "double",
                            threads=1)
    return node.run([stream], ctx)
