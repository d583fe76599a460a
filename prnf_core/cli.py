"""The ``prnf`` command: run model files, the embedded demo, list plugins, simulate patterns."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import numpy as np

from .errors import PRNFError

log = logging.getLogger("prnf")
EXIT_USAGE, EXIT_ERROR = 2, 1


class Progress:
    """Per-node progress on stderr: iterations done and current eMod, at most every 0.5 s."""

    def __init__(self, rank=0):
        self.rank, self.last = rank, 0.0

    def __call__(self, node, done, total, emod, repeat=0):
        now = time.monotonic()
        if self.rank == 0 and (done == total or now - self.last > 0.5):
            self.last = now
            sys.stderr.write(f"  repeat {repeat:3d}  {node.name:>10s} {done:5d}/{total:<5d} "
                             f"eMod {emod:.4f}\n")
            sys.stderr.flush()


def build_parser():
    parser = argparse.ArgumentParser(prog="prnf", description=__doc__)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a model file (under mpiexec: repeats on every rank)")
    run.add_argument("model", help="model JSON written by Runner.dump_model (or the reference system)")
    _add_run_options(run)
    run.add_argument("--out", default="result.h5", help="HDF5 result file (default result.h5)")
    run.add_argument("--plot", default=None, help="also draw the result to this PNG")
    run.add_argument("--checkpoint", default=None,
                     help="HDF5 file keeping finished repeats; run again to resume after a crash")

    demo = sub.add_parser("demo", help="simulate a pattern and phase it with the seed's network")
    _add_run_options(demo, repeat=8, seed=2026, keep_best=4)
    demo.add_argument("--out", default="result.h5")
    demo.add_argument("--plot", default="result.png")

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
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--out", default="pattern.npy")
    sim.add_argument("--mask", default="mask.npy")
    sim.add_argument("--truth", default=None, help="also save the true object here")
    return parser


def _add_run_options(p, repeat=1, seed=None, keep_best=None):
    p.add_argument("--repeat", type=int, default=repeat, help="independent phasings per rank")
    p.add_argument("--seed", type=int, default=seed, help="random seed (default: fresh, reported)")
    p.add_argument("--keep-best", type=_keep_best, default=keep_best,
                   help="merge only the K best repeats by final eMod (or a fraction < 1)")
    p.add_argument("--threads", type=int, default=None, help="threads per rank (default: cores/ranks)")
    p.add_argument("--precision", choices=("single", "double"), default="single")


def _keep_best(text):
    value = float(text)
    return int(value) if value >= 1 and value.is_integer() else value


def main(argv=None):
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="prnf: %(levelname)s: %(message)s")
    if not args.verbose:
        log.setLevel(logging.INFO)      # PRNF's own notes (FFT planning time), not libraries'
    try:
        return COMMANDS[args.command](args) or 0
    except PRNFError as exc:
        print(f"prnf: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("prnf: interrupted", file=sys.stderr)
        return 130


def _runner(args, **kwargs):
    from . import parallel
    from .phexec import Runner
    comm = parallel.world()
    progress = None if args.quiet else Progress(comm.rank)
    return Runner(comm=comm, precision=args.precision, threads=args.threads, progress=progress,
                  **kwargs)


def _finish(runner, out, args):
    """Write the result (rank 0 only) and print a short summary."""
    if out is None:
        return
    runner.save_h5(out, args.out)
    if args.plot:
        runner.plot_result(out, args.plot)
    shell = out["resolution_shell"]
    print(f"merged {out['merged']} repeats over {out['ranks']} rank(s), seed {out['seed']}")
    print(f"path: {' -> '.join(out['stream_path'])}")
    print(f"final eMod (median over repeats): {np.median(out['final_eMod']):.4f}")
    print(f"PRTF drops below 1/e at shell: {shell if shell is not None else 'never (edge of data)'}")
    print(f"wrote {args.out}" + (f" and {args.plot}" if args.plot else ""))


def cmd_run(args):
    runner = _runner(args, loadfile=args.model)
    out = runner.run(repeat=args.repeat, seed=args.seed, keep_best=args.keep_best,
                     checkpoint=args.checkpoint)
    _finish(runner, out, args)


def cmd_demo(args):
    from . import demo
    runner, truth = demo.build(workdir=os.path.dirname(os.path.abspath(args.out)),
                               make_runner=lambda inputs, output: _runner(args, inputnodes=inputs,
                                                                          outputnode=output))
    start = time.monotonic()
    out = runner.run(repeat=args.repeat, seed=args.seed, keep_best=args.keep_best)
    _finish(runner, out, args)
    if out is not None:
        from .simulate import object_error
        print(f"error against the known object: {object_error(out['sample_ret'], truth):.3f} "
              f"(relative, after alignment); {time.monotonic() - start:.1f} s")


def cmd_plugins(args):
    from .plugins import get_registry
    registry = get_registry()
    for name in registry.names():
        algo = registry.get(name)
        print(f"{name:8s} {algo.signature():60s} from {algo.distribution} {algo.version}")
    for entry, (dist, exc) in registry.broken.items():
        print(f"(broken) plugin '{entry}' from {dist} failed to import: {exc}")


def cmd_simulate(args):
    from .simulate import simulate_pattern
    try:
        shape = tuple(int(v) for v in args.shape.split(","))
    except ValueError:
        raise SystemExit(f"prnf simulate: --shape {args.shape!r}: give integers like 96,96") from None
    intensity, mask, obj = simulate_pattern(shape, args.radius, args.photons, seed=args.seed)
    np.save(args.out, intensity)
    np.save(args.mask, mask)
    if args.truth:
        np.save(args.truth, obj)
    print(f"wrote {args.out} and {args.mask} (shape {shape}, 1 = masked); "
          f"the object covers {int((obj > 0).sum())} pixels")


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


COMMANDS = {"run": cmd_run, "demo": cmd_demo, "plugins": cmd_plugins, "simulate": cmd_simulate,
            "project": cmd_project}

if __name__ == "__main__":
    sys.exit(main())
