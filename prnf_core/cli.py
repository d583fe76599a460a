"""The ``prnf`` command: run model files, the embedded demo, list plugins, simulate patterns."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

import numpy as np

from .errors import ConfigError, DataFileError, PRNFError, RankError, printable

log = logging.getLogger("prnf")
OWN_LOGGERS = ("prnf", "prnf_core", "prnf_algorithms")
EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 1, 130, 143


class Progress:
    """Progress on stderr (rank 0): on a terminal (or in a notebook, as a widget:
    ``tqdm.auto``) a bar over this rank's iterations with the repeat, node, iteration and
    eMod, and an ETA; otherwise (batch logs) one line per finished repeat.

    ETAs come from the iterations after the first report: the first ones include compiling
    the kernels (up to a minute on a cold cache), which once made the first line say "about
    494 s left" of a run done 7 s later."""

    def __init__(self, rank=0, stream=None, clock=time.monotonic):
        self.rank, self.stream, self.clock = rank, stream or sys.stderr, clock
        self.tty = self.stream.isatty() or (stream is None and _in_notebook())
        self.bar, self.repeats, self.per_repeat, self.finished = None, 0, 0, 0
        self.started, self.last = self.clock(), {}
        self.computed, self.first, self.latest = 0, None, None

    def begin(self, repeats, per_repeat):
        self.repeats, self.per_repeat, self.finished = repeats, per_repeat, 0
        self.started = self.clock()
        self.computed, self.first, self.latest = 0, None, None
        if self.rank == 0 and self.tty:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=repeats * per_repeat, file=self.stream, unit="it",
                            dynamic_ncols=True, leave=True)

    def __call__(self, node, done, total, emod, repeat=0):
        key = (repeat, node.id)
        step = done - self.last.get(key, 0)
        self.last[key] = done
        self.computed += step
        now = self.clock()
        if self.first is None:
            self.first = (now, self.computed)
        else:
            self.latest = (now, self.computed)
        if self.bar is None:
            return
        self.bar.update(step)
        if self.latest is None:         # the rate so far is the compile's: start it afresh
            self._restart_rate()
        self.bar.set_postfix_str(f"repeat {self.finished + 1}/{self.repeats} {printable(node.name)} "
                                 f"{done}/{total} eMod {emod:.4f}", refresh=False)

    def _restart_rate(self):
        """tqdm's rate (and so its ETA) from here on; its elapsed time still from the start."""
        n, start = self.bar.n, self.bar.start_t
        self.bar.reset()
        self.bar.start_t, self.bar.n, self.bar.last_print_n = start, n, n
        self.bar.refresh()

    def rate(self):
        """Iterations per second since the first report, or None before a second one."""
        if self.first is None or self.latest is None:
            return None
        (t0, n0), (t1, n1) = self.first, self.latest
        return (n1 - n0) / (t1 - t0) if t1 > t0 and n1 > n0 else None

    def repeat_done(self, repeat, stream):
        self.finished += 1
        if self.rank != 0:
            return
        if self.bar is not None:        # a repeat read back from a checkpoint fills its share
            self.bar.n = self.finished * self.per_repeat
            self.bar.refresh()
            if self.finished == self.repeats:
                self.bar.close()
            return
        elapsed = self.clock() - self.started
        rate = self.rate()
        if rate:
            left = (self.repeats - self.finished) * self.per_repeat / rate
        else:                           # no iterations timed (all read back from a checkpoint)
            left = elapsed / self.finished * (self.repeats - self.finished)
        # the estimate's eMod (the answer), not the last iterate's (HIO's fits worse)
        estimate = np.asarray(getattr(stream, "emod_estimate", []), dtype=float)
        known = estimate[np.isfinite(estimate)]
        emod = known[-1] if len(known) else (stream.emod[-1] if len(stream.emod) else np.nan)
        self.stream.write(f"prnf: repeat {self.finished} of {self.repeats} done (id {repeat}, "
                          f"{_path(stream.path)}, eMod {emod:.4f}), {elapsed:.1f} s, "
                          f"about {left:.0f} s left\n")
        self.stream.flush()


def _in_notebook():
    """Whether this is a Jupyter kernel (its stderr is no terminal, yet shows tqdm.auto's
    widget)."""
    if "IPython" not in sys.modules:
        return False
    try:
        shell = sys.modules["IPython"].get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:
        return False


def _path(names):
    """A stream's path of node names, escaped for the terminal (names come from files)."""
    return " -> ".join(printable(name) for name in names)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's default shown, unless it is None or False."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text
                and action.option_strings and "default" not in text):
            text += " (default: %(default)s)"
        return text


VTK_HELP = ("also write the object as VTK image data for ParaView or napari: amplitude, phase "
            "and support, the voxel spacing in metres with --wavelength/--distance/--pixel-size "
            "(needs pip install 'prnf[vtk]')")


def build_parser():
    from . import __version__
    parser = argparse.ArgumentParser(prog="prnf", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"prnf {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="PRNF's debug messages (libraries stay quiet)")
    # -q and -v also after the subcommand (``prnf run model.json -q``)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="no progress output")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="PRNF's debug messages (libraries stay quiet)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser = sub.add_parser
    sub.add_parser = lambda *a, **kw: add_parser(*a, parents=[common],
                                                 **{"formatter_class": HelpFormatter, **kw})

    run = sub.add_parser("run", help="run a model file (under mpiexec: repeats on every rank)")
    run.add_argument("model", help="model JSON written by Runner.dump_model or --dump-model "
                     "(or spipy's phexec)")
    _add_run_options(run, repeat=None, from_model=True)
    run.add_argument("--match", type=_match, default=None,
                     help="of the kept repeats, merge only those within this fraction of the best "
                          "one's error that are, aligned, its solution (e.g. 0.1; 'off': all "
                          "kept); default: the model file's run options, else off")
    run.add_argument("--out", default="result.h5", help="result file (.h5, .cxi)")
    run.add_argument("--plot", default=None, help="also draw the result to this PNG")
    run.add_argument("--vtk", default=None, metavar="PATH.vti", help=VTK_HELP)
    run.add_argument("--checkpoint", default=None,
                     help="HDF5 file keeping finished repeats; run again to resume after a crash")
    run.add_argument("--data", action="append", default=[], metavar="[INPUT_ID=]PATTERN[,MASK]",
                     help="data for an input of the model (a skeleton file has none); the id "
                          "may be left out when the model has one input; repeat for several")
    _add_geometry_options(run)

    phase = sub.add_parser(
        "phase", help="phase a measured pattern from the data alone (no support, no size)",
        description=PHASE_HELP)
    phase.add_argument("pattern", help="intensity file (.npy .mat .bin .h5:/dataset .cxi:/dataset), "
                       "centred (or see --center)")
    phase.add_argument("--mask", default=None, help="mask file, 1 = bad pixel (gaps, beam stop)")
    phase.add_argument("--support", default=None,
                       help="support file, 1 = inside: the starting support (default: a loose one "
                            "from the autocorrelation)")
    phase.add_argument("--fixed-support", action="store_true",
                       help="keep --support as a fixed bound that shrinkwrap stays inside")
    phase.add_argument("--center", default="auto",
                       help="zero-frequency pixel, e.g. 61,61; 'auto': the intensity's centre of "
                            "symmetry (Friedel's law); 'max': its brightest measured pixel")
    phase.add_argument("--recipe", default="auto", help="phasing recipe (plugins add more)")
    phase.add_argument("--positivity", action="store_true",
                       help="a real, non-negative object (off: objects may be complex)")
    phase.add_argument("--iterations", type=int, default=None,
                       help="iterations of the recipe's main algorithm (auto: 2000 RAAR)")
    phase.add_argument("--repeat", type=int, default=None,
                       help="independent random starts per rank (recipe default: 8)")
    phase.add_argument("--keep-best", type=_keep_best, default=None,
                       help="merge only the K best repeats by free eMod (recipe default: 4)")
    phase.add_argument("--match", type=_match, default=None,
                       help="and only those within this fraction of the best ('off': all kept; "
                            "recipe default: 0.1)")
    phase.add_argument("--seed", type=int, default=None, help="random seed (default: fresh, reported)")
    phase.add_argument("--threads", type=int, default=None, help="threads per rank (default: cores/ranks)")
    phase.add_argument("--precision", choices=("single", "double"), default="single",
                       help="complex64 or complex128 iterations")
    phase.add_argument("--out", default="result.h5", help="result file (.h5, .cxi)")
    phase.add_argument("--plot", default=None, help="also draw the result to this PNG")
    phase.add_argument("--vtk", default=None, metavar="PATH.vti", help=VTK_HELP)
    phase.add_argument("--dump-model", default=None,
                       help="also write the network and its run options (repeat, keep-best, "
                            "match, precision, the seed if given) as a model file: prnf run "
                            "replays it, or edit it first")
    phase.add_argument("--checkpoint", default=None,
                       help="HDF5 file keeping finished repeats; run again to resume")
    _add_compression_option(phase)
    _add_preparation_options(phase)
    _add_geometry_options(phase)

    demo = sub.add_parser("demo", help="simulate a pattern and phase it with spipy's example network")
    _add_run_options(demo, repeat=8, seed=2026, keep_best=4)
    demo.add_argument("--out", default="result.h5", help="result file (.h5, .cxi)")
    demo.add_argument("--plot", default="result.png", help="picture of the result")
    demo.add_argument("--keep-data", action="store_true",
                      help="keep the simulated pattern and mask beside --out (demo_pattern.npy, "
                           "demo_mask.npy); without it they live in a temporary folder, "
                           "removed at the end")

    sub.add_parser("plugins", help="list installed algorithms, parameters and distributions")

    proj = sub.add_parser("project", help="the phase2d/phase3d project workflow")
    psub = proj.add_subparsers(dest="action", required=True)
    new = psub.add_parser("new", help="create a project folder with a default config.ini")
    new.add_argument("data", help="pattern file (.npy, .mat, .bin)")
    new.add_argument("--mask", default=None, help="mask file, 1 = masked")
    new.add_argument("--path", default=None, help="parent folder (default: here)")
    new.add_argument("--name", default=None, help="project name (default: chosen for you)")
    new.add_argument("--3d", dest="three_d", action="store_true", help="a 3D (phase3d) project")
    conf = psub.add_parser("config", help="set config keys: section|key=value ...")
    conf.add_argument("settings", nargs="+", help="e.g. 'phasing|iters=100RAAR 200ERA'")
    prun = psub.add_parser("run", help="run the current project")
    prun.add_argument("-n", "--num-proc", type=int, default=1, help="MPI processes")
    prun.add_argument("--nohup", action="store_true", help="run in the background, log to run.log")
    prun.add_argument("--cluster", action="store_true", help="only write a Slurm job script")
    use = psub.add_parser("use", help="make an existing project current")
    use.add_argument("folder")

    sim = sub.add_parser("simulate", help="write a simulated pattern and mask (.npy)")
    sim.add_argument("--shape", default="96,96", help="pattern shape, e.g. 96,96 or 64,64,64")
    sim.add_argument("--radius", type=float, default=8, help="object radius in pixels")
    sim.add_argument("--photons", type=float, default=1e7, help="total photons (0: no noise)")
    sim.add_argument("--seed", type=int, default=0, help="random seed of object and noise")
    sim.add_argument("--out", default="pattern.npy", help="pattern file to write")
    sim.add_argument("--mask", default="mask.npy", help="mask file to write (1 = masked)")
    sim.add_argument("--truth", default=None, help="also save the true object here")
    sim.add_argument("--force", action="store_true", help="replace files that exist")
    parser.subcommands = sub.choices        # name -> parser (for _check_option_order)
    return parser


def _check_option_order(parser, argv):
    """A subcommand's option given before the subcommand (``prnf --repeat 2 run m.json``)
    is a usage error that says where it belongs; argparse's own words were "invalid choice:
    '2'" (the option's value taken for the subcommand)."""
    own = {s for action in parser._actions for s in action.option_strings}
    misplaced, rest, k = [], [], 0
    while k < len(argv):
        token = argv[k]
        if token in parser.subcommands:
            break
        name = token.split("=", 1)[0]
        if token.startswith("-") and name not in own:
            owners = [cmd for cmd, p in parser.subcommands.items()
                      if any(name in a.option_strings for a in p._actions)]
            if owners:
                action = next(a for a in parser.subcommands[owners[0]]._actions
                              if name in a.option_strings)
                count = 0 if "=" in token else (
                    action.nargs if isinstance(action.nargs, int) else 0 if action.nargs == 0
                    else 1 if action.nargs in (None, "?") else 0)
                misplaced.append((name, owners, argv[k:k + 1 + count]))
                k += 1 + count
                continue
        rest.append(token)
        k += 1
    if not misplaced:
        return
    command = argv[k] if k < len(argv) else None
    names = list(dict.fromkeys(name for name, _, _ in misplaced))
    owners = [cmd for cmd in misplaced[0][1] if all(cmd in o for _, o, _ in misplaced)] \
        or misplaced[0][1]
    target = command if command in owners else owners[0]
    where = ", ".join(f"'prnf {cmd}'" for cmd in ([command] if command in owners else owners))
    message = (f"{' and '.join(names)} {'is an option' if len(names) == 1 else 'are options'} "
               f"of {where}, not of prnf itself"
               + (f" nor of 'prnf {command}'" if command and command not in owners else ""))
    moved = [t for _, _, tokens in misplaced for t in tokens]
    if command == target:
        fixed = ["prnf", *rest, command, *moved, *argv[k + 1:]]
    else:
        fixed = ["prnf", *rest, target, *moved, "..."]
    import shlex
    parser.error(f"{message}: write {'it' if len(names) == 1 else 'them'} after the subcommand: "
                 f"{' '.join(shlex.quote(t) if t != '...' else t for t in fixed)}")


def _add_compression_option(p):
    p.add_argument("--compression", default="auto", metavar="{auto,gzip,zstd,blosc2,none}",
                   help="of the result file's datasets: auto (default) gzips those that "
                        "compress (support, mask, PRTF) and stores float volumes raw, readable "
                        "by any HDF5; zstd and blosc2 are faster and need hdf5plugin to write "
                        "and to read (pip install 'prnf[compression]')")


def _add_preparation_options(p):
    """Data preparation from Bragg CDI practice (pInput's photon_threshold, bin, fft_size)."""
    p.add_argument("--photon-threshold", type=float, default=None, metavar="I",
                   help="intensities below I set to 0 (measured zeros), as cohere's "
                        "amp_threshold")
    p.add_argument("--bin", default=None, metavar="B",
                   help="sum the intensities over blocks: 2, or one per axis like 1,2,2")
    p.add_argument("--fft-size", choices=("crop", "pad"), default=None,
                   help="crop or pad each axis to an FFT-friendly length about the centre "
                        "(padding is masked)")


def _preparation_config(args):
    config = {}
    if args.photon_threshold is not None:
        config["photon_threshold"] = args.photon_threshold
    if args.bin is not None:
        try:
            factors = [int(v) for v in args.bin.split(",")]
        except ValueError:
            raise PRNFError(f"--bin {args.bin!r}: give an integer like 2, or one per axis "
                            "like 1,2,2") from None
        config["bin"] = factors[0] if len(factors) == 1 else factors
    if args.fft_size is not None:
        config["fft_size"] = args.fft_size
    return config


def _add_run_options(p, repeat=1, seed=None, keep_best=None, from_model=False):
    """``from_model``: unset options take the model file's run options (``prnf run``)."""
    recorded = "; default: the model file's run options, else " if from_model else ""
    _add_compression_option(p)
    p.add_argument("--repeat", type=int, default=repeat,
                   help="independent phasings per rank" + (recorded + "1" if from_model else ""))
    p.add_argument("--seed", type=int, default=seed, help="random seed (default: " +
                   ("the model file's, else " if from_model else "") + "fresh, reported)")
    p.add_argument("--keep-best", type=_keep_best, default=keep_best,
                   help="merge only the K best repeats (or a fraction < 1; 'all': every one), "
                        "ranked by free eMod when the inputs have free pixels, else by final "
                        "eMod" + (recorded + "all" if from_model else ""))
    p.add_argument("--threads", type=int, default=None, help="threads per rank (default: cores/ranks)")
    p.add_argument("--precision", choices=("single", "double"), default=None if from_model else "single",
                   help="complex64 or complex128 iterations" + (recorded + "single" if from_model else ""))


def _add_geometry_options(p):
    """The experiment's geometry, recorded in the result; all three give the object's pixel
    size (wavelength * distance / (N * pixel size) per axis)."""
    p.add_argument("--wavelength", type=_length, default=None, metavar="METRES",
                   help="X-ray wavelength in metres, e.g. 1.5e-10 (recorded in the result; with "
                        "--distance and --pixel-size the object's pixel size)")
    p.add_argument("--distance", type=_length, default=None, metavar="METRES",
                   help="sample to detector distance in metres, e.g. 0.7")
    p.add_argument("--pixel-size", type=_length, default=None, metavar="METRES",
                   help="detector pixel size in metres, e.g. 75e-6 (square pixels; for a 3D "
                        "volume the voxel of the merged reciprocal space)")


def _length(text):
    value = _number(text, "a length in metres such as 1.5e-10")
    if not (np.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a length in metres > 0, such as 1.5e-10")
    return value


#: the geometry options, in the words of the command line
GEOMETRY_OPTIONS = {"wavelength": "--wavelength", "distance": "--distance",
                    "pixel_size": "--pixel-size"}


def _geometry(args):
    """``--wavelength``, ``--distance``, ``--pixel-size`` as the result's ``geometry``: all
    three or none (one alone gives no pixel size, and a forgotten one would go unnoticed)."""
    given = {key: getattr(args, key, None) for key in GEOMETRY_OPTIONS}
    missing = [GEOMETRY_OPTIONS[key] for key, value in given.items() if value is None]
    if len(missing) == len(given):
        return None
    if missing:
        raise PRNFError(f"{', '.join(missing)} missing: --wavelength, --distance and "
                        "--pixel-size go together (the object's pixel size needs all three)")
    return given


#: ``--match off``: no match, even where a recipe or a model file asks for one
OFF = "off"


def _keep_best(text):
    if text.strip().lower() == "all":
        return 1.0                     # the fraction 1: every repeat
    value = _number(text, "a count such as 4, a fraction such as 0.5, or all")
    return int(value) if value >= 1 and value.is_integer() else value


def _match(text):
    if text.strip().lower() in ("off", "none"):
        return OFF
    return _number(text, "a fraction such as 0.1, or off")


def _number(text, fix):
    # argparse's own message would read "invalid _match value"
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give {fix}") from None


class Terminated(KeyboardInterrupt):
    """SIGTERM (a batch scheduler's time limit) as an exception, so that every ``finally``
    runs: the checkpoint flushed and closed, temporary files removed."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv=None):
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else [os.fspath(a) for a in argv]
    _check_option_order(parser, argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="prnf: %(levelname)s: %(message)s")
    for name in OWN_LOGGERS:        # PRNF's own notes (FFT planning time); libraries stay quiet
        logging.getLogger(name).setLevel(logging.DEBUG if args.verbose else logging.INFO)
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return COMMANDS[args.command](args) or 0
    except BrokenPipeError:            # `prnf plugins | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except RankError as exc:            # raised on every rank together: one message is enough
        if _world().rank == 0:
            print(f"prnf: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except PRNFError as exc:
        return _stop_every_rank(f"prnf: error{_on_rank()}: {exc}", EXIT_ERROR)
    except Terminated:
        # a signal to one rank of a job: the others would wait for it forever in their next
        # collective, so every rank is stopped (the checkpoint is closed by now)
        return _stop_every_rank(f"prnf: terminated by SIGTERM{_on_rank()}{_resume_hint(args)}",
                                EXIT_TERMINATED)
    except KeyboardInterrupt:
        return _stop_every_rank(f"prnf: interrupted{_on_rank()}{_resume_hint(args)}",
                                EXIT_INTERRUPTED)
    except Exception as exc:
        if _world().size == 1:
            raise
        import traceback
        traceback.print_exc()
        return _stop_every_rank(f"prnf: error{_on_rank()}: {type(exc).__name__}: {exc}", EXIT_ERROR)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _world():
    from . import parallel
    return parallel.world()


def _on_rank():
    world = _world()
    return f" on MPI rank {world.rank} of {world.size}" if world.size > 1 else ""


def _stop_every_rank(message, code):
    """Print ``message``; under MPI also end every other rank now (they may be waiting in a
    collective this rank will never join: a hang would burn the whole allocation)."""
    print(message, file=sys.stderr)
    world = _world()
    if world.size > 1:
        print("prnf: stopping every rank (MPI_Abort)", file=sys.stderr)
        sys.stderr.flush()
        world.abort(code)
    return code


def _resume_hint(args):
    saved = getattr(args, "saved", None)
    if saved:
        return (f"; the result was written completely before stopping: "
                f"{' and '.join(repr(path) for path in saved)}")
    checkpoint = getattr(args, "checkpoint", None)
    if checkpoint:
        return (f"; finished repeats are kept in the checkpoint '{checkpoint}': run the same "
                "command again to resume")
    return "; nothing was saved (give --checkpoint FILE to keep finished repeats)"


def _runner(args, **kwargs):
    from . import parallel
    from .phexec import Runner
    comm = parallel.world()
    progress = None if args.quiet else Progress(comm.rank)
    return Runner(comm=comm, precision=args.precision, threads=args.threads, progress=progress,
                  **kwargs)


def _check_outputs(args):
    """Every output file must be writable before the first iteration, not after the run."""
    from .fileutil import check_writable
    if _world().rank != 0:
        return
    for option in ("out", "plot", "vtk", "checkpoint", "dump_model"):
        value = getattr(args, option, None)
        if value:
            what = f"--{option.replace('_', '-')}"
            check_folder(value, what)
            check_writable(value, what)
    from .results import check_compression
    check_compression(getattr(args, "compression", "auto"))
    if getattr(args, "vtk", None):
        from . import export
        if not args.vtk.lower().endswith(export.SUFFIX):
            raise ConfigError(f"--vtk '{args.vtk}': VTK image data is written as XML, "
                              f"{export.SUFFIX}; give a path ending in {export.SUFFIX}")
        export.check_available()


def check_folder(path, what):
    """An output's folder must exist: a typo in it once made the whole path silently (the
    result then looked lost). A folder that is a file is check_writable's to refuse."""
    folder = os.path.dirname(os.fspath(path))
    if folder and not os.path.exists(folder):
        raise ConfigError(f"{what} '{path}': the folder '{folder}' does not exist; create it "
                        f"first (mkdir -p {folder}) or give a path in an existing folder")


def _check_collisions(args, inputs=(), outputs=()):
    """No output may replace an input or another output (same path, or one file through a
    link): checked before any work, on rank 0 (its error stops every rank)."""
    from .checkpoint import files_written
    from .fileutil import check_distinct
    if _world().rank != 0:
        return
    named = [(f"--{option.replace('_', '-')}", getattr(args, option, None))
             for option in ("out", "plot", "vtk", "dump_model")]
    if getattr(args, "checkpoint", None):
        named += [("--checkpoint", path) for path in files_written(args.checkpoint, _world().size)]
    check_distinct(named + list(outputs), inputs)


def _input_files(nodes):
    """(what, file) of every file the input nodes read."""
    from .io import file_part
    from .modelfile import PATH_KEYS
    for node in nodes:
        config = node.params["config_dict"]
        for key in PATH_KEYS:
            if isinstance(config.get(key), str):
                yield f"{key} of input {node.id}", file_part(config[key])


def _started(args):
    """The run's start, for the result's ``entry_1/start_time``."""
    from .results import now
    args.start_time = now()


def _finish(runner, out, args):
    """Write the result (rank 0 only) and print a short summary. Ctrl-C and SIGTERM wait
    until the files are complete; a result that cannot be written is kept elsewhere."""
    if out is None:
        return
    from .results import now
    out.setdefault("start_time", getattr(args, "start_time", None))
    out.setdefault("end_time", now())
    if getattr(args, "geometry", None):
        out["geometry"] = args.geometry
    from .fileutil import signals_deferred
    with signals_deferred():
        _save(runner, out, args.out, getattr(args, "compression", "auto"))
        if args.plot:
            _plot(runner, out, args)
        if getattr(args, "vtk", None):
            _vtk(out, args)
        # a signal held during the save is raised on leaving this block: its message must
        # say the files are complete, not "nothing was saved"
        args.saved = [path for path in (args.out, args.plot, getattr(args, "vtk", None)) if path]
    shell = out["resolution_shell"]
    from .merge import merge_note
    print(f"merged {merge_note(out)} over {out['ranks']} rank(s), seed {out['seed']}")
    if out.get("verdict"):
        print(f"verdict: {out['verdict']['words']}")
    print(f"path: {_path(out['stream_path'])}")
    print(f"final eMod of each repeat's estimate (median): {np.median(out['final_eMod']):.4f}")
    if np.isfinite(out["free_eMod"]).any():
        print(f"free eMod, on pixels never fitted (median): {np.nanmedian(out['free_eMod']):.4f}")
    print(f"PRTF drops below 1/e at shell: {shell if shell is not None else 'never (edge of data)'}")
    for line in finished_lines(out):
        print(line)
    _print_pixel_size(out)
    written = [path for path in (args.out, args.plot, getattr(args, "vtk", None)) if path]
    print("wrote " + (f"{', '.join(written[:-1])} and " if len(written) > 1 else "") + written[-1])


def finished_lines(out):
    """The summary's lines on the finished object (issue 32): its support, the corrections
    made after merging, and a warning for an object in several pieces of its support
    (pieces holding none of it, as a support chosen by size keeps, do not count); none for a result
    that has neither ``support_summary`` nor ``corrections``."""
    lines = []
    summary = out.get("support_summary") or {}
    if summary.get("size") is not None:
        lines.append(_support_line(summary))
        # pieces the object is in: a support chosen by size keeps empty single pixels too
        held = summary.get("pieces_with_object")
        pieces = (summary.get("components") if held is None else held) or 0
        if pieces > 1:
            where = "support is in" if held is None else "object is spread over"
            lines.append(f"warning: the {where} {pieces} separate pieces, a single "
                         "object is one: the others may be noise, a twin image or a second "
                         "solution; look at the picture (--plot) before using the result")
    if out.get("corrections"):
        lines.append(_corrections_line(out["corrections"]))
    return lines


def _support_line(summary):
    """``support: 1,851 px in 1 piece, box 12x14x11`` (the box's bounds are inclusive)."""
    words = f"support: {summary['size']:,} px"
    pieces = summary.get("components")
    if pieces is not None:
        words += f" in {pieces} piece{'' if pieces == 1 else 's'}"
        holding = summary.get("pieces_with_object")
        if holding is not None and holding != pieces:
            words += f" ({holding} holding the object, 1% of its intensity or more)"
    if summary.get("bbox"):
        words += ", box " + "x".join(str(int(hi) - int(lo) + 1) for lo, hi in summary["bbox"])
    return words


def _corrections_line(corrections):
    """``corrections: phase ramp removed (0.21, 0.00 rad/px), centred by (2, 0) px, ...``;
    only the corrections the result names."""
    parts = []
    ramp = corrections.get("phase_ramp")
    if ramp is not None:
        # to 1e-4 rad/px: 0.003 read "0.00" at two decimals, and a rounding-level 3e-9 is none
        shown = [round(float(g), 4) + 0.0 for g in ramp]
        parts.append("phase ramp removed (" + ", ".join(f"{g:g}" for g in shown) + " rad/px)"
                     if any(shown) else "no phase ramp")
    shift = corrections.get("shift")
    if shift is not None:
        parts.append("centred by (" + ", ".join(str(int(v)) for v in shift) + ") px"
                     if np.any(shift) else "already centred")
    if corrections.get("phase_offset") is not None:
        parts.append(f"phase offset {corrections['phase_offset']:.2f} rad removed")
    orientation = corrections.get("orientation")
    if orientation is not None:
        parts.append("orientation: " + ("twin of the found one" if orientation == "twin"
                                        else str(orientation)))
    return "corrections: " + (", ".join(parts) if parts else "none")


def _print_pixel_size(out):
    from .results import real_space_pixel_size
    size = real_space_pixel_size(out)
    if size is not None:
        print(f"object pixel size: {' x '.join(_metres(v) for v in size)} "
              "(wavelength * distance / (pixels * pixel size), per axis)")


def _metres(value):
    """A length with a readable unit: 12.3 nm, 1.50 um."""
    for unit, scale in (("m", 1.0), ("mm", 1e-3), ("um", 1e-6), ("nm", 1e-9)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value / 1e-12:.3g} pm"


def _plot(runner, out, args):
    """Draw --plot; a full disk or an unwritable path is a one-line error (the result file
    is complete by then, and the message says so)."""
    try:
        runner.plot_result(out, args.plot)
    except OSError as exc:
        args.saved = [args.out]
        raise DataFileError(f"cannot write --plot '{args.plot}': {exc.strerror or exc}; the "
                            f"result itself was saved in '{args.out}'") from exc


def _vtk(out, args):
    """Write --vtk; like --plot, a failure says the result file is complete."""
    from .export import write_vti
    try:
        write_vti(out, args.vtk)
    except OSError as exc:
        args.saved = [path for path in (args.out, args.plot) if path]
        raise DataFileError(f"cannot write --vtk '{args.vtk}': {exc.strerror or exc}; the "
                            f"result itself was saved in '{args.out}'") from exc


def _save(runner, out, path, compression="auto"):
    from .fileutil import rescue_path
    try:
        runner.save_h5(out, path, compression)
    except OSError as exc:
        rescue = rescue_path(path)
        runner.save_h5(out, rescue, compression)
        raise DataFileError(f"cannot write '{path}': {exc.strerror or exc}; the result is kept "
                            f"in '{rescue}'") from exc


def _datasets(specs, inputs):
    """``--data`` values as the runner's ``reload_dataset``."""
    datasets = {}
    for spec in specs:
        key, _, files = spec.rpartition("=")
        if not key:
            if len(inputs) != 1:
                raise PRNFError(f"--data {spec!r}: this model has {len(inputs)} inputs "
                                f"({', '.join(str(n.id) for n in inputs)}); write INPUT_ID=PATTERN")
            key = str(inputs[0].id)
        pattern, _, mask = files.partition(",")
        datasets[key] = {"pattern_path": pattern, "mask_path": mask or None}
    return datasets


#: what ``prnf run`` takes from a model file's run options when not given, and else
RUN_OPTIONS = {"repeat": 1, "keep_best": None, "match": None, "precision": "single",
               "seed": None}


#: what an option recorded as null means, in the words of the command line
NOT_SET = {"keep_best": "all", "match": OFF, "seed": "fresh"}


def _replayed_options(args):
    """The options of ``prnf run``: those given, else the model file's run options (written
    by ``prnf phase --dump-model``), else :data:`RUN_OPTIONS`. Returns the ones taken from
    the file."""
    from .modelfile import run_options
    recorded = run_options(args.model)
    taken = {}
    for key, fallback in RUN_OPTIONS.items():
        value = getattr(args, key)
        if value is None and key in recorded:
            value = taken[key] = recorded[key]
        setattr(args, key, fallback if value is None else None if value == OFF else value)
    return taken


def cmd_run(args):
    _check_outputs(args)
    args.geometry = _geometry(args)
    taken = _replayed_options(args)
    if taken and _world().rank == 0:
        log.info("run options from the model file: %s",
                 ", ".join(f"{k.replace('_', '-')} {NOT_SET.get(k) if v is None else v}"
                           for k, v in taken.items()))
    runner = _runner(args, loadfile=args.model)
    if args.data:
        runner.reload(_datasets(args.data, runner.inputs))
    _check_collisions(args, [("model file", args.model), *_input_files(runner.inputs)])
    _started(args)
    out = runner.run(repeat=args.repeat, seed=args.seed, keep_best=args.keep_best,
                     match=args.match, checkpoint=args.checkpoint)
    _finish(runner, out, args)


PHASE_HELP = """\
Phase a measured pattern knowing nothing about the object. The 'auto' recipe:
  1. centre: the intensity's centre of symmetry unless --center is given;
  2. start: random values on a loose support, the autocorrelation cut where it falls into
     its noise and halved in extent (it contains the object, which the thresholded
     autocorrelation itself often does not), or on --support;
  3. RAAR (beta 0.9) for 2000 iterations with threshold shrinkwrap: the support becomes the
     pixels where the Gaussian-smoothed modulus reaches 20% of its maximum, the smoothing
     narrowing from 3 to 0.5 pixel, updated every 10 iterations; after a quarter of them,
     10 iterations on the support cut at its centre of mass (detwinning: a mixture of the
     object and its twin cannot survive on it); then 200 ERA iterations;
  4. free pixels: 3% of the measured pixels, in small islands, are never fitted; their
     misfit (free eMod) ranks the repeats without bias;
  5. 8 repeats per rank; the best 4 by free eMod, and of those only the ones within 10% of
     the best, are aligned to 1/16 pixel and merged;
  6. a verdict: whether the merged repeats agree and the support is plausible for the data
     ("NOT TO BE TRUSTED: ..." otherwise).
The network is an ordinary model file (--dump-model): edit it and rerun with prnf run."""


def _phase_config(args):
    from .data import CENTER_RULES      # --center's words: the input config's
    config = {"pattern_path": args.pattern, "mask_path": args.mask, "support_path": args.support,
              "support_mode": "fixed" if args.fixed_support else "start"}
    if args.fixed_support and not args.support:
        raise PRNFError("--fixed-support needs --support FILE")
    rule = args.center.strip().lower()
    if rule in CENTER_RULES:
        config["center"] = rule
    else:
        try:
            config["center"] = [int(v) for v in args.center.split(",")]
        except ValueError:
            raise PRNFError(f"--center {args.center!r}: give pixel indices like 61,61, or one of "
                            f"{', '.join(CENTER_RULES)}") from None
    config.update(_preparation_config(args))
    return config


def cmd_phase(args):
    from .plugins import get_registry
    _check_outputs(args)
    args.geometry = _geometry(args)
    if args.dump_model:
        from .fileutil import check_writable
        check_writable(args.dump_model, "--dump-model")
    from .io import file_part
    _check_collisions(args, [("pattern", file_part(args.pattern)), ("--mask", args.mask),
                             ("--support", args.support)])
    recipe = get_registry().recipe(args.recipe)
    options = dict(recipe.run_options)      # a copy: the recipe's own stay as declared
    for key in ("repeat", "keep_best", "match"):
        if getattr(args, key) is not None:
            options[key] = None if getattr(args, key) == OFF else getattr(args, key)
    extra = {} if args.iterations is None else {"iterations": args.iterations}
    inputs, output = recipe.build(_phase_config(args), positivity=args.positivity, **extra)
    runner = _runner(args, inputnodes=inputs, outputnode=output)
    if args.dump_model and runner.comm.rank == 0:
        _dump_recipe(runner, args, options)
    _started(args)
    out = runner.run(seed=args.seed, checkpoint=args.checkpoint, **options)
    _finish(runner, out, args)


def _dump_recipe(runner, args, options):
    """The network (a skeleton: the data stays in its files) with the run options, so that
    ``prnf run FILE`` replays this ``prnf phase``."""
    from .modelfile import write
    recorded = {key: options.get(key, RUN_OPTIONS[key]) for key in ("repeat", "keep_best", "match")}
    recorded["precision"] = args.precision
    if args.seed is not None:        # a fresh seed is chosen when the run starts: not known here
        recorded["seed"] = args.seed
    doc = runner.model_document(skeleton=True)
    doc["meta"]["run_options"] = recorded
    path = os.path.abspath(args.dump_model)     # as _check_outputs checked it
    _relative_inputs(doc, os.path.dirname(path))
    write(path, doc)


def _relative_inputs(doc, folder):
    """Input paths relative to ``folder`` (the model file's, where ``prnf run`` resolves
    them): the model file and its data can move together, and a relative pattern path does
    not depend on where ``prnf run`` is started."""
    from .io import file_part
    from .modelfile import PATH_KEYS
    for node in doc["nodes"]:
        config = node["params"].get("config_dict") if node["class"] == "pInput" else None
        for key in PATH_KEYS if isinstance(config, dict) else ():
            path = config.get(key)
            if isinstance(path, str) and path:
                file = file_part(path)       # 'data.h5:/entry/data': the dataset stays as is
                config[key] = os.path.relpath(os.path.abspath(file), folder) + path[len(file):]


def cmd_demo(args):
    import tempfile
    from . import demo
    _check_outputs(args)
    if args.keep_data:
        folder = os.path.dirname(os.path.abspath(args.out))
        _check_collisions(args, outputs=[("the demo's pattern", os.path.join(folder, demo.PATTERN)),
                                         ("the demo's mask", os.path.join(folder, demo.MASK))])
        _demo(args, folder)
        return
    _check_collisions(args)
    # the simulated data is the demo's own: it once stayed in the working folder
    with tempfile.TemporaryDirectory(prefix="prnf-demo-") as folder:
        _demo(args, folder)


def _demo(args, folder):
    from . import demo
    runner, truth = demo.build(workdir=folder,
                               make_runner=lambda inputs, output: _runner(args, inputnodes=inputs,
                                                                          outputnode=output))
    start = time.monotonic()
    _started(args)
    out = runner.run(repeat=args.repeat, seed=args.seed, keep_best=args.keep_best)
    _finish(runner, out, args)
    if out is not None:
        from .simulate import object_error
        print(f"error against the known object: {object_error(out['sample_ret'], truth):.3f} "
              f"(relative, after alignment); {time.monotonic() - start:.1f} s")
        result = os.path.abspath(args.out) + (f" (picture: {os.path.abspath(args.plot)})"
                                              if args.plot else "")
        data = (f"the simulated pattern and mask are beside it: {demo.PATTERN}, {demo.MASK}"
                if args.keep_data else "the simulated pattern and mask were temporary "
                "(--keep-data keeps them beside the result)")
        print(f"result: {result}; {data}")


def cmd_plugins(args):
    """Every installed algorithm with its own declared parameters, the keyword options a
    family shares listed once, then the support rules and recipes."""
    from .params import signature
    from .plugins import get_registry
    registry = get_registry()
    shared = {}                      # options' descriptions -> the algorithms sharing them
    for name in registry.names():
        algo = registry.get(name)
        options = {p.name for p in getattr(algo.cls, "options", ())}
        own = [p for p in algo.parameters() if p.name not in options]
        call = signature(own)
        print(f"{name}{call}   from {algo.distribution} {algo.version}")
        for param in own[2:]:        # iteration and support_size: the same for all
            print(f"    {param.describe()}")
        if options:
            lines = tuple(p.describe() for p in algo.cls.options)
            shared.setdefault(lines, []).append(name)
    for lines, names in shared.items():
        print(f"\nkeyword options of {', '.join(names)}:")
        for line in lines:
            print(f"    {line}")
    rules = ", ".join(f"{name} (from {dist})" for name, (_, dist) in sorted(registry.support_rules.items()))
    print(f"\nsupport rules (support_rule=...): {rules or 'none'}")
    for name in sorted(registry.recipes):
        recipe = registry.recipe(name)
        print(f"recipe {name}: {recipe.summary} (from {recipe.distribution}; prnf phase --recipe {name})")
    for entry, (dist, exc) in registry.broken.items():
        print(f"(broken) plugin '{entry}' from {dist}, skipped: {exc}")
    sys.stdout.flush()          # a closed pipe shows here, inside main's handler


def cmd_simulate(args):
    from .simulate import simulate_pattern
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        raise SystemExit(f"prnf simulate: --shape {args.shape!r}: give integers like 96,96") from None
    _check_simulation(shape, args)
    from .fileutil import check_distinct, check_writable
    named = [("--out", args.out), ("--mask", args.mask), ("--truth", args.truth)]
    check_distinct(named)
    for what, path in named:
        if path:
            check_folder(path, what)
            check_writable(path, what)
    targets = [path for path in (args.out, args.mask, args.truth) if path]
    existing = [path for path in targets if os.path.exists(path)]
    if existing and not args.force:       # default names once replaced a user's own data
        raise PRNFError(f"{', '.join(existing)} exist(s); give other --out/--mask names or "
                        "--force to replace them")
    intensity, mask, obj = simulate_pattern(shape, args.radius, args.photons, seed=args.seed)
    np.save(args.out, intensity)
    np.save(args.mask, mask)
    if args.truth:
        np.save(args.truth, obj)
    print(f"wrote {args.out} and {args.mask} (shape {shape}, 1 = masked); "
          f"the object covers {int((obj > 0).sum())} pixels")


def _check_simulation(shape, args):
    """Refuse values that would fail deep inside NumPy (or fill the memory) with a traceback."""
    if not 2 <= len(shape) <= 3 or min(shape) < 4:
        raise PRNFError(f"--shape {args.shape!r}: give 2 or 3 sizes of at least 4 pixels, "
                        "e.g. 96,96 or 64,64,64")
    if not (np.isfinite(args.radius) and 0 < args.radius <= min(shape) / 2):
        raise PRNFError(f"--radius {args.radius:g}: give an object radius in pixels in "
                        f"(0, {min(shape) / 2:g}] (half the smallest axis)")
    if not (np.isfinite(args.photons) and args.photons >= 0):
        raise PRNFError(f"--photons {args.photons:g}: give a total photon count >= 0 (0: no noise)")
    if args.seed < 0:
        raise PRNFError(f"--seed {args.seed}: give an integer >= 0")
    from .memory import SIMULATION_BYTES_PER_PIXEL, check_fits
    check_fits(int(np.prod(shape, dtype=np.float64)) * SIMULATION_BYTES_PER_PIXEL,
               f"simulating a pattern of shape {shape}", "give a smaller --shape")


def cmd_project(args):
    from . import project
    if args.action in ("new", "use"):
        dims = project.project_dims(args.folder) if args.action == "use" else (3 if args.three_d else 2)
        workflow = project.Workflow(dims)
        folder = (workflow.new_project(args.data, args.mask, args.path, args.name)
                  if args.action == "new" else workflow.use_project(args.folder))
        print(f"current project: {folder}")
        return
    folder = project.current_folder()
    if folder is None:
        raise PRNFError("no current project: `prnf project new DATA` or `prnf project use FOLDER`")
    workflow = project.Workflow(project.project_dims(folder))
    if args.action == "config":
        pairs = dict(item.split("=", 1) for item in args.settings if "=" in item)
        if len(pairs) != len(args.settings):
            raise PRNFError("config settings are section|key=value, e.g. 'phasing|repeats=8'")
        workflow.config_project(pairs)
        print(f"configured {folder}")
    else:
        result = workflow.run_project(args.num_proc, args.nohup, args.cluster)
        print(f"{'started, log in run.log' if args.nohup else result}")


COMMANDS = {"run": cmd_run, "phase": cmd_phase, "demo": cmd_demo, "plugins": cmd_plugins, "simulate": cmd_simulate,
            "project": cmd_project}

if __name__ == "__main__":
    sys.exit(main())
