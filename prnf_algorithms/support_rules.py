"""Support rules: how many pixels the support keeps each iteration, and by which score.

The engine scores every pixel with the rule set's score (``|y|^2`` for the built-ins) and
keeps the ``count`` highest, exactly, within the fixed support. A :class:`SupportRule`
decides whether the support changes this iteration and ``count``; it may first rewrite the
score image (smooth it, say), which then decides the order. Rules are registered by name
through the ``prnf_register_support_rules`` hook (the built-ins ``size`` and ``threshold``
too) and chosen with a node's ``support_rule`` option.
"""
from __future__ import annotations

import numpy as np

from prnf_core import get_registry

from . import shrinkwrap

#: Threshold shrinkwrap updates the support every this many iterations unless a node says.
DEFAULT_EVERY = 10


class SupportRule:
    """Base class: built with ``(node, eligible, threads)`` at the start of a node's run
    (``node.values`` holds its parameters, ``eligible`` counts the pixels of the fixed
    support)."""

    def __init__(self, node, eligible, threads):
        self.node, self.eligible, self.threads = node, eligible, threads

    def begin(self, view):
        """Called once before the first iteration (``view.support`` is the incoming one)."""

    def updates(self, view):
        """Whether the support changes this iteration (default: every iteration)."""
        return True

    def wants_scores(self, view):
        """Whether :meth:`count` will ask for the score image on an iteration that updates
        (default: not known, no): the engine then stores it in the score pass itself, while
        each slab is in cache, instead of scoring the whole buffer again when asked."""
        return False

    def count(self, view, scores):
        """Return ``(count, rescored)``: how many pixels to keep, and whether the rule
        changed the score image. ``scores()`` computes the image on first call (float32,
        the data's shape, -1 outside the fixed support; larger is kept first); a rule may
        change it in place (keep -1 where it is -1) and then returns ``rescored=True``. A
        third item, when the rule knows it, is a level: the chosen are exactly the pixels
        whose (rescored) score is at least it, marked without a selection.
        Leaving it alone keeps the engine's fast path (no image is stored at all)."""
        raise NotImplementedError


class BySize(SupportRule):
    """spipy's shrinkwrap: the ``support_size`` brightest pixels, optionally of ``|y|``
    smoothed by ``support_sigma``, shrinking linearly from the incoming support's size over
    ``shrink_iterations``."""

    def begin(self, view):
        self.start = int(np.count_nonzero(view.support))

    def target(self, iteration):
        target = self.node.values["support_size"]
        ramp = self.node.values["shrink_iterations"]
        if iteration >= ramp or self.start <= target:
            return target
        return int(round(target + (self.start - target) * (1 - iteration / ramp)))

    def wants_scores(self, view):
        return self.node.values["support_sigma"] > 0

    def count(self, view, scores):
        sigma = self.node.values["support_sigma"]
        if sigma <= 0:
            return self.target(view.iteration), False
        shrinkwrap.smooth_score(scores(), sigma, self.threads)
        return self.target(view.iteration), True


class ByThreshold(SupportRule):
    """Threshold shrinkwrap (``shrinkwrap.py``): smoothed ``|y|`` at least
    ``support_threshold`` times its maximum on the support, every ``support_every``
    iterations, sigma from ``support_sigma`` to ``sigma_end``, guarded."""

    def __init__(self, node, eligible, threads):
        super().__init__(node, eligible, threads)
        v = node.values
        self.rule = shrinkwrap.ThresholdRule(node.name, v["support_threshold"], v["support_sigma"],
                                             v["sigma_end"], v["support_every"] or DEFAULT_EVERY,
                                             eligible, threads, key=node.id,
                                             floor=v["support_floor"],
                                             reference=v["threshold_reference"])

    def begin(self, view):
        self.rule.begin(int(np.count_nonzero(view.support)))

    def updates(self, view):
        return self.rule.updates(view.iteration)

    def wants_scores(self, view):
        return True

    def count(self, view, scores):
        image = scores()
        count = self.rule.rescore(image, view.support,
                                  self.rule.sigma_at(view.iteration, view.iterations))
        if self.rule.exact_level is not None:
            return count, True, self.rule.exact_level
        return count, True


class Fixed(SupportRule):
    """The incoming support, unchanged (a final ERA that settles the estimate on the support
    shrinkwrap found, instead of halving it once more)."""

    def updates(self, view):
        return False


class Detwin(SupportRule):
    """Detwinning (as PyNX's ``DetwinSupport`` and cohere's twin removal): for the node's
    iterations the support is the incoming one cut at its centre of mass along the first
    ``detwin_axes`` axes; at the node's last iteration the incoming support is restored (so
    shrinkwrap after it starts from the support it had, not from half of it). An object and
    its twin (the centro-symmetric copy, conjugated) fit the data equally; a stagnated
    mixture of both cannot survive on a support that is no longer centro-symmetric, and the
    half kept favours one of them."""

    def begin(self, view):
        self.incoming = view.support.copy()

    def updates(self, view):
        return view.iteration in (0, view.iterations - 1)

    def count(self, view, scores):
        last = view.iteration == view.iterations - 1 and view.iterations > 1
        chosen = self.incoming if last else detwinned(self.incoming,
                                                      self.node.values["detwin_axes"])
        image = scores()
        np.copyto(image, np.where(chosen, 1.0, 0.0), where=image >= 0)   # -1 stays outside
        return int(np.count_nonzero(image > 0)), True


def detwinned(support, axes):
    """``support`` (FFT layout: the object around index 0) without the pixels beyond its
    centre of mass along each of the first ``axes`` axes."""
    centred = np.fft.fftshift(support)
    keep = centred.copy()
    grids = np.indices(support.shape, sparse=True)
    for axis in range(min(axes, support.ndim)):
        coordinate = np.broadcast_to(grids[axis], support.shape)
        com = coordinate[centred].mean() if centred.any() else support.shape[axis] / 2
        keep &= coordinate <= com
    return np.fft.ifftshift(keep)


BUILTIN = {"size": BySize, "threshold": ByThreshold, "fixed": Fixed, "detwin": Detwin}


def support_rule_class(name):
    """The registered support rule called ``name``; a clear error lists the installed ones."""
    return get_registry().support_rule(name)
