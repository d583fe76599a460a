"""Running phasing networks: :class:`Runner` (spipy's ``phexec``)."""
from __future__ import annotations

import logging
import numbers
import traceback

import numpy as np
import scipy.fft as sfft

from . import graph, modelfile, parallel
from .errors import ConfigError, NodeError, PRNFError, RankError, printable
from .verdict import verdict
from .merge import MIN_AGREEMENT, MergeAccumulator, edge_shell, radial_profile, resolution_shell
from .merge import merge_note  # noqa: F401  (re-exported: its home before merge.py)
from .kept import IN_MEMORY, KeptRepeats, spilled_bytes
from .stream import PRECISIONS, RunContext

log = logging.getLogger(__name__)
#: Single-precision runs refuse amplitudes beyond this (float32 ends at 3.4e38; objects and
#: sums of a few hundred values must stay finite).
SINGLE_PRECISION_PEAK = 1e36


class Runner:
    """Runs a phasing network, alone or over MPI ranks.

    Parameters
    ----------
    inputnodes : list of pInput
    outputnode : pOutput
    loadfile : str, optional
        Model file to build the network from (instead of ``inputnodes``/``outputnode``).
    reload_dataset : dict, optional
        ``{input_node_id: {"pattern_path": ..., "mask_path": ..., "initial_model": ...}}``:
        new data for inputs of a loaded network (needed for skeleton files).
    comm : mpi4py communicator, optional
        Each rank runs ``repeat`` phasings; rank 0 gets the merged result.
    precision : {"single", "double"}
    threads : int, optional
        FFT and kernel threads per rank; default: cores divided among the ranks on the node.
    progress : callable, optional
        ``progress(node, iterations_done, total, emod, repeat)``, called by algorithm nodes.
        If it also has ``begin(repeats, iterations_per_repeat)`` and ``repeat_done(repeat,
        stream)``, the runner calls them (the CLI's progress bar does).
    """

    def __init__(self, inputnodes=None, outputnode=None, loadfile=None, reload_dataset=None,
                 comm=None, precision="single", threads=None, progress=None):
        if loadfile is not None:
            inputnodes, outputnode, self.skeleton = modelfile.load(loadfile)
        elif reload_dataset:
            raise ConfigError("reload_dataset is only valid together with loadfile")
        from .fileutil import check_environment
        check_environment()
        if precision not in PRECISIONS:
            raise ConfigError(f"precision={precision!r}: give one of {sorted(PRECISIONS)}")
        self.inputs = list(inputnodes or [])
        self.output = outputnode
        self.order = graph.collect(self.inputs, self.output)
        self._reload(reload_dataset or {})
        self.comm = parallel.wrap(comm)
        self.precision = precision
        self.threads = _check_threads(threads) if threads is not None else \
            parallel.default_threads(self.comm)
        self.progress = _check_progress(progress)
        self.last_seed = None
        self.checkpoint = None
        self.selection = None       # how keep_best/match chose the merged repeats (last run)
        self.run_iterations = None  # iterations of the run under way, all repeats and ranks

    def reload(self, reload_dataset):
        """New data for inputs: ``{input_id: {"pattern_path": ..., "mask_path": ...}}`` (as
        the ``reload_dataset`` argument)."""
        self._reload(reload_dataset)

    def _reload(self, reload_dataset):
        by_id = {n.id: n for n in self.inputs}
        for key, dataset in reload_dataset.items():
            try:
                node = by_id[int(key)]
            except (KeyError, ValueError):
                raise ConfigError(f"reload_dataset names input {key!r}, which is not an input of "
                                  f"this network; inputs: {sorted(by_id)}") from None
            if not isinstance(dataset, dict):
                raise ConfigError(f"reload_dataset[{key!r}] must be a dict with 'pattern_path'...")
            node.reload(dataset)

    # ------------------------------------------------------------------ running
    def run(self, repeat=1, seed=None, keep_best=None, checkpoint=None, match=None):
        """Run ``repeat`` independent phasings on every rank and merge them.

        Parameters
        ----------
        repeat : int
            Phasings per rank (as in spipy); repeat indices, not ranks, pick the random
            streams, so a seed gives the same result for 1 rank x 8 and 4 ranks x 2.
        seed : int, optional
            Seed of every random start; a fresh one is drawn (and reported) when None.
        keep_best : int or float, optional
            Merge only the K repeats ranked best (a float in (0, 1): a fraction): by free eMod
            when the inputs have free pixels (``free_pixels``), else by final eMod.
        match : float, optional
            Of those, merge only the repeats whose ranking error is within this fraction of
            the best one's (e.g. 0.1) and which, aligned, are the best one's solution
            (agreement >= ``merge.MIN_AGREEMENT``): averaging a failed or a different
            solution blurs the result.
        checkpoint : str, optional
            HDF5 file keeping every finished repeat (one per rank under MPI). Running the same
            call again after a crash or Ctrl-C resumes: finished repeats are read back, the
            rest computed, and the merged result equals that of an uninterrupted run.

        Returns
        -------
        dict or None
            The merged result on rank 0 (see :func:`result_dict`), None on other ranks.
        """
        # guarded: a check failing on one rank only (its pattern missing, a mask of another
        # shape) stops every rank, where the others once waited forever in the next collective
        shapes = self._guarded(lambda: self._check_run(repeat, seed, keep_best, match))
        self._check_ranks_agree(shapes, repeat, seed, keep_best, match, checkpoint)
        if checkpoint is not None and self.comm.size > 1:    # before any rank writes a file
            from .checkpoint import check_ranks
            self._guarded(lambda: check_ranks(checkpoint, self.comm.size)
                          if self.comm.rank == 0 else None)
        self.checkpoint = self._guarded(lambda: self._open_checkpoint(checkpoint))
        try:
            return self._run(repeat, seed, keep_best, match)
        finally:
            if self.checkpoint is not None:
                self.checkpoint.close()
                self.checkpoint = None

    def _check_run(self, repeat, seed, keep_best, match):
        """Every argument and input checked before any work; returns the input shapes."""
        _check_repeat(repeat)
        _check_seed(seed)
        _check_match(match)
        keep = _keep_count(keep_best, repeat * self.comm.size)
        self._check_memory(repeat, keep)
        shapes = [tuple(shape) for shape in graph.check_shapes(self.order).values()]
        self._check_range()
        return shapes

    def _check_range(self):
        """Streams keep the data's units in the run's precision: a single-precision run of
        amplitudes near float32's largest value (3.4e38) overflowed to an infinite object."""
        if self.precision != "single":
            return
        for node in self.inputs:
            peak = float(np.max(node.prepared().amplitude))
            if peak > SINGLE_PRECISION_PEAK:
                raise ConfigError(f"{node!r}: its largest amplitude, {peak:.3g} (intensity "
                                  f"{peak * peak:.3g}), is beyond what single precision holds "
                                  f"(amplitudes up to {SINGLE_PRECISION_PEAK:.0e}); run with "
                                  "precision='double' (--precision double) or scale the "
                                  "pattern down")

    def _check_memory(self, repeat, keep):
        """Refuse a run that cannot fit before its data is read (a 1024^3 pattern once died
        in a raw MemoryError after 93 s)."""
        from .memory import check_disk, check_fits, run_peak, volume_bytes
        shapes = [s for s in (n.peek_shape() for n in self.inputs) if s is not None]
        # beyond IN_MEMORY, kept repeats wait on disk (kept.py); one more is being phased
        kept = 0 if keep is None else min(keep, repeat, IN_MEMORY) + 1
        if keep is not None and shapes:
            check_disk(spilled_bytes(min(keep, repeat), volume_bytes(shapes[0], self.precision)),
                       f"keeping {min(keep, repeat)} repeats for keep_best")
        fix = ("lower keep_best (or use match) or " if kept > 1 else "") + \
            "phase a cropped or binned pattern" + \
            (", in single precision" if self.precision == "double" else "") + \
            ", or on a machine with more memory"
        check_fits(run_peak(shapes, self.precision, kept),
                   f"a {self.precision}-precision run of shape {shapes[0] if shapes else '?'}"
                   + (f" keeping {kept} repeats for keep_best" if kept > 1 else ""), fix)

    def _check_ranks_agree(self, shapes, *settings):
        """The ranks of one job must run one problem: different seeds, precisions, repeats
        or data shapes per rank (an MPMD launch) once gave rank 0's seed silently, or an MPI
        traceback. Every rank sees the same table, so all raise together."""
        if self.comm.size == 1:
            return
        names = ("data shapes", "repeat", "seed", "keep_best", "match", "checkpoint",
                 "precision")
        mine = [repr(v) for v in (shapes, *settings[:-1], settings[-1] is not None,
                                  self.precision)]
        rows = self.comm.allgather(mine)
        differ = [k for k in range(len(names)) if len({row[k] for row in rows}) > 1]
        if not differ:
            return
        detail = "; ".join(f"{names[k]}: " + ", ".join(f"rank {r} {row[k]}" for r, row in
                                                          enumerate(rows)) for k in differ)
        raise RankError(f"the ranks of this job were given different settings ({detail}); "
                        "give every rank the same command and data")

    def _open_checkpoint(self, path):
        if path is None:
            return None
        from .checkpoint import Checkpoint, data_fingerprint, fingerprint
        return Checkpoint(path, self.comm.rank, self.comm.size,
                          fingerprint(self.model_document(), self.precision),
                          data_fingerprint(self.inputs))

    def _run(self, repeat, seed, keep_best, match):
        # rank 0 decides (a checkpoint may hold the seed, or refuse another one); guarded so
        # that a refusal stops every rank instead of leaving them waiting in the broadcast
        seed = self.comm.bcast(self._guarded(lambda: self._resolve_seed(seed)))
        self.last_seed = seed
        total = repeat * self.comm.size
        # the whole run's work, the same on every rank whatever their number
        self.run_iterations = total * self.iterations_per_repeat()
        begin = getattr(self.progress, "begin", None)
        if begin is not None:
            begin(repeat, self.iterations_per_repeat())
        keep = _keep_count(keep_best, total)
        if keep is None and match is not None:
            keep = total
        ids = range(self.comm.rank * repeat, (self.comm.rank + 1) * repeat)
        self.selection = None
        if keep is None:
            acc = self._run_streaming(ids, seed)
        else:
            acc = self._run_keep_best(ids, seed, keep, match)
        acc = self._reduce(acc.finish())
        if self.comm.rank != 0:
            return None
        out = result_dict(acc, self, seed=seed, repeat=repeat, keep_best=keep_best)
        from .postprocess import finish_result     # ramp, centre, phase, orientation
        finish_result(out)
        if not np.any(out["sample_ret"]):       # its eMod looked plausible (0.146)
            raise NodeError("the merged object is zero everywhere: every merged repeat "
                            "collapsed (see the warnings above); check the data's scale and "
                            "mask, the support size and the initial model")
        out["verdict"] = verdict(out)
        if not out["verdict"]["trusted"]:
            log.warning("%s", out["verdict"]["words"])
        return out

    def _resolve_seed(self, seed):
        if self.comm.rank != 0:
            return None
        seed = self.checkpoint.seed(seed) if self.checkpoint else seed
        return np.random.SeedSequence().entropy if seed is None else seed

    def _run_streaming(self, ids, seed):
        acc = MergeAccumulator()
        first = self._guarded(lambda: self._phase(ids[0], ids, seed))
        acc.set_reference(self.comm.bcast(_reference_of(first) if self.comm.rank == 0 else None))
        acc.add(first, ids[0])
        del first
        self._guarded(lambda: [acc.add(self._phase(i, ids, seed), i) for i in ids[1:]])
        return acc

    def _phase(self, repeat_id, ids, seed):
        """:meth:`run_once`; after the last of ``ids``, the data's caches are dropped: the
        merge and the result need the memory, the algorithms are done."""
        stream = self.run_once(repeat_id, seed)
        if repeat_id == ids[-1]:
            for node in self.inputs:        # every input is a pInput (graph.collect)
                node.prepared().caches.clear()
        return stream

    def _run_keep_best(self, ids, seed, keep, match):
        kept = KeptRepeats(keep)        # the `keep` best of this rank, in bounded memory
        try:
            return self._keep_best(kept, ids, seed, keep, match)
        finally:
            kept.close()

    def _keep_best(self, kept, ids, seed, keep, match):
        ranked_by, every = [], []      # every repeat's (id, ranking error): a few numbers each
        # the PRTF measures how independent repeats agree: over all of them, not the chosen
        # few (which may all be one solution: a flat 1.0)
        phases = MergeAccumulator(keep_curves=False, phasor_only=True)
        first = [self._guarded(lambda: self._phase(ids[0], ids, seed))]
        phases.set_reference(self.comm.bcast(_reference_of(first[0]) if self.comm.rank == 0
                                             else None))
        def work():
            for i in ids:
                # the first one let go once pushed: not kept, it must not stay in memory
                stream = first.pop() if i == ids[0] else self._phase(i, ids, seed)
                phases.add(stream, i)
                ranked_by.append("free eMod" if stream.data.free is not None else "final eMod")
                error = stream.ranking_error()
                every.append((i, error))
                kept.push(error, i, stream)
                del stream
        self._guarded(work)
        phases.finish()         # its reference (a volume) is not needed while merging
        best = kept.take()      # handed over: each stream can go once merged
        every = sorted(pair for rank_pairs in self.comm.allgather(every) for pair in rank_pairs)
        scores = sorted((s, i) for rank_best in self.comm.allgather([(s, i) for s, i, _ in best])
                        for s, i in rank_best)[:keep]
        if match is not None:      # only repeats that match the best: a failed one blurs
            scores = [(s, i) for s, i in scores if s <= scores[0][0] * (1 + match)]
        chosen = {i for _, i in scores}
        # every repeat not merged, and why (the summary names them: issue 30)
        ranked = sorted((e, i) for i, e in every)
        left_out = [{"repeat": int(i), "error": float(e),
                     "why": "rank" if position >= keep else "match"}
                    for position, (e, i) in enumerate(ranked) if i not in chosen]
        best_id = scores[0][1]
        self.selection = {"kept": len(chosen), "keep": keep, "of": len(ids) * self.comm.size,
                          "ranked_by": ranked_by[0], "match": match,
                          "repeat_ids": [i for i, _ in every],
                          "errors": [float(e) for _, e in every]}
        mine = {i: s for _, i, s in best}
        del best
        reference = self.comm.bcast(_reference_of(mine.get(best_id)) if best_id in mine else None,
                                    root=self._owner(best_id, len(ids)))
        acc = MergeAccumulator()
        acc.set_reference(reference)
        del reference                           # set_reference keeps a centred copy
        any_stream = next(iter(mine.values()))  # every rank ran >= 1: geometry and path for rank 0
        acc.data, acc.path = any_stream.data, any_stream.path
        del any_stream
        # with match, a repeat must also be the same solution as the best: near-equal errors
        # do not make two solutions one (their average would blur both)
        least = MIN_AGREEMENT if match is not None else None
        # popped: a stream merged is let go (the kept ones were all held through the merge)
        agreements = [(i, acc.add(mine.pop(i), i, least)) for i in sorted(chosen & set(mine))]
        del mine
        apart = sorted(p for rank_apart in self.comm.allgather(
            [(i, float(a)) for i, a in agreements if least is not None and a < least])
                       for p in rank_apart)
        self.selection["kept"] -= len(apart)
        self.selection["different"] = {"repeat_ids": [i for i, _ in apart],
                                       "agreement": [a for _, a in apart], "below": least}
        errors = dict(every)
        left_out += [{"repeat": int(i), "error": float(errors[i]), "why": "different",
                      "agreement": a} for i, a in apart]
        self.selection["left_out"] = sorted(left_out, key=lambda d: d["error"])
        acc.phases = self._reduce(phases)
        return acc

    def _owner(self, repeat_id, per_rank):
        return repeat_id // per_rank

    def _guarded(self, work):
        """Run ``work`` on every rank; if any rank failed, every rank raises naming them."""
        error, value = None, None
        try:
            value = work()
        except Exception as exc:  # reported to every rank below, then re-raised
            error = f"{type(exc).__name__}: {exc}"
            local = exc
        errors = self.comm.allgather(error)
        failed = {r: e for r, e in enumerate(errors) if e is not None}
        if failed:
            if self.comm.size == 1:
                raise local
            detail = "; ".join(f"rank {r}: {e}" for r, e in failed.items())
            raise RankError(f"{len(failed)} of {self.comm.size} MPI ranks failed: {detail}")
        return value

    def _reduce(self, acc):
        """Sum the accumulators of all ranks onto rank 0 (constant memory on rank 0)."""
        if self.comm.size == 1:
            return acc
        # a rank that merged nothing (keep_best) still joins every Reduce, with zeros
        layouts = self.comm.allgather({k: (v.shape, v.dtype.str) for k, v in acc.sums.items()})
        layout = next(item for item in layouts if item)
        for key, (shape, dtype) in sorted(layout.items()):
            mine = acc.sums.get(key)
            acc.sums[key] = self.comm.reduce_array(np.zeros(shape, dtype) if mine is None else mine)
        lists = self.comm.gather((acc.count, acc.curves, acc.final_emod, acc.free, acc.repeat_ids,
                                  acc.agreements))
        if self.comm.rank == 0:
            counts, curves, emods, free, ids, agreements = zip(*lists)   # one tuple per rank
            acc.count = sum(counts)
            acc.curves = {k: [c for rank in curves for c in rank[k]] for k in acc.curves}
            acc.final_emod = [e for rank in emods for e in rank]
            acc.free = [f for rank in free for f in rank]
            acc.repeat_ids = [i for rank in ids for i in rank]
            acc.agreements = [a for rank in agreements for a in rank]
        return acc

    def run_once(self, repeat_id, seed):
        """One pass through the network for repeat ``repeat_id``; returns the output stream.

        With a checkpoint open, a finished repeat is read back instead, a new one saved."""
        store = self.checkpoint
        if store is not None and repeat_id in store:
            stream = store.load(repeat_id, self.inputs)
        else:
            stream = self._pass(repeat_id, seed)
            _check_object(stream, repeat_id)
            if store is not None:
                from .fileutil import signals_deferred
                with signals_deferred():      # h5py swallows a Ctrl-C raised inside it
                    store.save(repeat_id, stream, self.inputs)
        done = getattr(self.progress, "repeat_done", None)
        if done is not None:
            done(repeat_id, stream)
        return stream

    def iterations_per_repeat(self):
        """Iterations of every algorithm node in one pass (progress and ETA)."""
        return sum(int(n.params.get("iteration", 0)) for n in self.order if n.kind == "algorithm")

    def _pass(self, repeat_id, seed):
        ctx = RunContext(precision=self.precision, threads=self.threads, progress=self.progress,
                         repeat=repeat_id, run_iterations=self.run_iterations)
        outputs, users = {}, {n.id: len(n.children) for n in self.order}
        for node in self.order:
            fathers = [outputs[f.id] for f in node.fathers]
            for f, stream in zip(node.fathers, fathers):
                # this node is the last to read it: it may drop its volumes once copied
                stream.disposable = users[f.id] == 1 and node.fathers.count(f) == 1
            rng = None
            if node.kind == "input":
                key = (int(repeat_id), self.inputs.index(node))
                rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))
            outputs[node.id] = _run_node(node, fathers, ctx, rng, repeat_id)
            for f in node.fathers:
                users[f.id] -= 1
                if users[f.id] == 0:
                    del outputs[f.id]
        result = outputs[self.output.id]
        result.disposable = False       # the runner's from here (merge, checkpoint)
        return result

    # ------------------------------------------------------------------ files
    def model_document(self, skeleton=True):
        """The network as the JSON-ready dict :meth:`dump_model` writes (``skeleton=True``:
        without the data); callers may add to its ``meta`` before writing it."""
        return modelfile.document(self.order, self.inputs, self.output, skeleton)

    def dump_model(self, model_file, skeleton=False):
        """Save the network to ``model_file`` (JSON); ``skeleton=True`` leaves the data out."""
        modelfile.write(model_file, self.model_document(skeleton))

    def save_h5(self, out, save_file, compression="auto"):
        """Write a result dict to an HDF5 file (atomically); see :mod:`prnf_core.results`."""
        from .results import save_h5
        save_h5(out, save_file, compression=compression)

    def plot_result(self, out, save_file=None):
        """Draw the result's six panels; returns the matplotlib figure."""
        from .results import plot_result
        return plot_result(out, save_file)


def _check_progress(progress):
    """None or False: no progress reports; else a callable (``Runner(progress=False)`` failed
    deep in the first node with "'bool' object is not callable")."""
    if progress is None or progress is False:
        return None
    if not callable(progress):
        raise ConfigError(f"progress={progress!r}: give a callable progress(node, done, total, "
                          "emod, repeat), or None/False for no progress reports")
    return progress


def _run_node(node, fathers, ctx, rng, repeat_id):
    try:
        return node.run(fathers, ctx, rng)
    except PRNFError as exc:
        raise type(exc)(f"{node!r} failed in repeat {repeat_id}: {exc}") from exc
    except Exception as exc:
        log.debug("node failure:\n%s", traceback.format_exc())
        raise NodeError(f"{node!r} failed in repeat {repeat_id}: {type(exc).__name__}: {exc}") from exc


def _check_object(stream, repeat_id):
    """A repeat's object must be finite; an all-zero one is said (its eMod means nothing)."""
    if not np.all(np.isfinite(stream.x)):
        raise NodeError(f"repeat {repeat_id} ended with NaN or infinite values in its object "
                        f"(path {printable(' -> '.join(stream.path))}): the data's values overflow the "
                        "run's precision; use precision='double' or scale the pattern")
    if not np.any(stream.x):
        log.warning("repeat %d ended with an all-zero object (path %s): its eMod means "
                    "nothing; check the support, the mask and the initial model", repeat_id,
                    printable(" -> ".join(stream.path)))


def _reference_of(stream):
    return None if stream is None else stream.x.copy()


def _check_repeat(repeat):
    if isinstance(repeat, bool) or not isinstance(repeat, numbers.Integral) or repeat < 1:
        raise ConfigError(f"repeat={repeat!r}: give an integer >= 1 (phasings per rank)")


def _check_threads(threads):
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise ConfigError(f"threads={threads!r}: give an integer >= 1 (threads per rank), or "
                          "None for the cores divided among the ranks")
    return int(threads)


def _check_seed(seed):
    """None or an integer >= 0 (what numpy's SeedSequence takes; -1 was a raw ValueError)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
                             or seed < 0):
        raise ConfigError(f"seed={seed!r}: give an integer >= 0, or None for a fresh one")


def _check_match(match):
    if match is not None and not (isinstance(match, numbers.Real) and not isinstance(match, bool)
                                  and 0 <= match < 10):
        raise ConfigError(f"match={match!r}: give a fraction >= 0 (e.g. 0.1: within 10% of the "
                          "best repeat's error), or None")


def _keep_count(keep_best, total):
    if keep_best is None:
        return None
    if isinstance(keep_best, numbers.Integral) and not isinstance(keep_best, bool) and 1 <= keep_best:
        return min(int(keep_best), total)
    if isinstance(keep_best, float) and 0 < keep_best <= 1:
        return max(1, int(round(keep_best * total)))
    raise ConfigError(f"keep_best={keep_best!r}: give a count >= 1 or a fraction in (0, 1]")


def result_dict(acc, runner, seed, repeat, keep_best):
    """The merged result: spipy's keys plus per-repeat errors, PRTF shells and the model."""
    d = acc.data
    phases = getattr(acc, "phases", acc)        # keep_best: every repeat's phases
    count = phases.count
    # the accumulators are spent here: each sum becomes its mean in place, no copies
    prtf = d.centred(phases.prtf(spend=True))
    means = acc.means(spend=True)
    mean = acc.mean_stream(means)
    # shells beyond the edge of the data (the corners) are not whole shells: left out
    radial = radial_profile(prtf, d.center)[:edge_shell(d.shape, d.center) + 1]
    # volumes in the run's precision (single: float32), each made once
    real = mean.x.real.dtype
    shell_background = mean.background.astype(real)[d.radial_bins]
    background = d.centred(shell_background)
    # hypot: sqrt(|F|^2 + b^2) without squares, which overflow single precision for data in
    # large units
    model_amp = np.abs(sfft.fftn(mean.x))
    np.hypot(model_amp, shell_background, out=model_amp)
    del shell_background
    curves = acc.curves
    return {
        "sample_ret": mean.x,
        "support": means["support"],
        "PRTF": prtf,
        "PRTF_radial": radial,
        "PRTF_repeats": count,
        "resolution_shell": resolution_shell(radial),
        "background": background,
        "eMod": mean.emod,
        "eCon": mean.econ,
        "eMod_estimate": mean.emod_estimate,
        "eMod_per_repeat": np.array(curves["emod"]),
        "eCon_per_repeat": np.array(curves["econ"]),
        "eMod_estimate_per_repeat": np.array(curves["emod_estimate"]),
        "final_eMod": np.array(acc.final_emod),
        "free_eMod": np.array([f[0] for f in acc.free], dtype=np.float64),
        "free_deviance": np.array([f[1] for f in acc.free], dtype=np.float64),
        "selection": runner.selection,
        "repeat_ids": np.array(acc.repeat_ids),
        "agreement": np.array(acc.agreements, dtype=np.float64),
        "stream_path": list(mean.path),
        "diffraction_amp": d.centred(model_amp),
        "input_amp": d.centred(d.amplitude.astype(real, copy=False)),
        "input_mask": d.centred(~d.measured),
        "center": d.center,
        "preparation": dict(getattr(d, "preparation", None) or {}),
        "model": runner.model_document(skeleton=True),
        "seed": seed,
        "repeat": repeat,
        "ranks": runner.comm.size,
        "merged": acc.count,
        "keep_best": keep_best,
        "precision": runner.precision,
    }
