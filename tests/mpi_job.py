"""Run under mpiexec by tests/test_mpi.py: a small network over COMM_WORLD.

Usage: python mpi_job.py PATTERN MASK OUT.npz REPEAT SEED [--fail-rank R] [--keep-best K]
"""
import argparse

import numpy as np
from mpi4py import MPI

from prnf_core import AlgorithmNode, Param, Runner, phmodel


class FailOnRank(AlgorithmNode):
    """Raises on one rank only, to show the job stops with a message instead of hanging."""

    algorithm = "FAIL_ON_RANK"
    parameters = (Param("rank", kind="int", low=0),)

    def iterate(self, stream, ctx):
        if MPI.COMM_WORLD.Get_rank() == self.params["rank"]:
            raise RuntimeError("injected failure")
        return stream


def main():
    p = argparse.ArgumentParser()
    for name in ("pattern", "mask", "out"):
        p.add_argument(name)
    p.add_argument("repeat", type=int)
    p.add_argument("seed", type=int)
    p.add_argument("--fail-rank", type=int, default=None)
    p.add_argument("--keep-best", type=int, default=None)
    # faults on one rank only, as a user's script under mpiexec meets them
    p.add_argument("--missing-pattern-rank", type=int, default=None)
    p.add_argument("--bad-mask-rank", type=int, default=None, help="a mask of another shape")
    p.add_argument("--seed-per-rank", action="store_true", help="seed + rank")
    p.add_argument("--precision-per-rank", action="store_true", help="double on rank 1")
    args = p.parse_args()
    rank = MPI.COMM_WORLD.Get_rank()
    if args.missing_pattern_rank == rank:
        args.pattern += ".missing.npy"
    if args.bad_mask_rank == rank:
        args.mask = args.mask + ".small.npy"
        np.save(args.mask, np.zeros((8, 8)))
    seed = args.seed + rank if args.seed_per_rank else args.seed
    precision = "double" if args.precision_per_rank and rank == 1 else "single"
    cfg = {"pattern_path": args.pattern, "mask_path": args.mask, "background": False}
    a, b = phmodel.pInput(cfg), phmodel.pInput(cfg)
    merge = phmodel.pMerge().after(phmodel.HIO(30, 40, 0.9).after(a)).after(phmodel.RAAR(30, 40, 0.9).after(b))
    last = phmodel.ERA(10, 40).after(merge)
    if args.fail_rank is not None:
        last = FailOnRank(1, 40, args.fail_rank, name="flaky").after(last)
    runner = Runner([a, b], phmodel.pOutput().after(last), comm=MPI.COMM_WORLD, threads=1,
                    precision=precision)
    out = runner.run(args.repeat, seed=seed, keep_best=args.keep_best)
    if MPI.COMM_WORLD.Get_rank() == 0:
        np.savez(args.out, sample_ret=out["sample_ret"], PRTF=out["PRTF"], final_eMod=out["final_eMod"],
                 repeat_ids=out["repeat_ids"], ranks=out["ranks"], merged=out["merged"],
                 support=out["support"], eMod=out["eMod"])
    else:
        assert out is None


if __name__ == "__main__":
    main()
