"""The processes that train one model together: a `World` of `size` ranks, this one `rank`.

`python -m tinysqueeze train ...` is one process, a world of one, and needs no MPI at all.
`mpiexec -n 4 python -m tinysqueeze train ...` (or `srun python -m tinysqueeze train ...` under
Slurm) starts four copies of the same command; each finds out from MPI which one it is
(`current_world()`), and from then on they compute as one: every step each rank takes its slice of
the same global batch, and its gradients are summed with everyone else's before anyone's weights move.

What the ranks say to each other is five things, all here:
- `sum(buffer)`: the all-reduce. Every rank hands in a float buffer and gets back the sum of all of
  them, in place: MPI's own `Allreduce` (the default), or `ring.py`'s ring, written from first
  principles (`--allreduce ring`).
- `broadcast_object(obj)`: rank 0's object, on every rank (the starting weights, a resumed run's state).
- `gather_object(obj)`: every rank's object, as a list on every rank (the check that all agree).
- `max(buffer)`: the element-wise maximum (each class's largest score, for the dead-class check).
- `abort(code)`: end every rank now (a rank that failed must not leave the others waiting forever).

A World of one does each of these as nothing at all, so the code that trains never asks how many
ranks there are, except to decide who writes the run folder (`is_writer`: rank 0 alone).
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from .launch import launched_size
from .ring import ring_allreduce

ALLREDUCES = ("mpi", "ring")


class DistributedError(RuntimeError):
    """The processes of a job cannot work together (mpi4py missing, or built against another MPI)."""


class World:
    """A world of one process: rank 0 of 1. Every collective operation is the identity."""

    rank, size = 0, 1
    allreduce = "mpi"

    @property
    def is_writer(self) -> bool:
        """Only rank 0 writes files (the run folder, checkpoints, plots); the others compute only."""
        return self.rank == 0

    def sum(self, buffer: np.ndarray) -> None:
        """In place: buffer (S,) becomes the element-wise sum over all ranks' buffers."""

    def max(self, buffer: np.ndarray) -> None:
        """In place: buffer (S,) becomes the element-wise maximum over all ranks' buffers."""

    def broadcast_object(self, obj):
        """-> rank 0's `obj` on every rank (any picklable object)."""
        return obj

    def gather_object(self, obj) -> list:
        """-> [rank 0's obj, rank 1's obj, ...] on every rank."""
        return [obj]

    def barrier(self) -> None:
        """Returns when every rank has called it."""

    def abort(self, code: int) -> None:
        """Ends every rank of the job with exit status `code` (a world of one: this process)."""
        sys.stdout.flush(), sys.stderr.flush()
        os._exit(code)


class MPIWorld(World):
    """The ranks of an MPI job (mpi4py's COMM_WORLD)."""

    def __init__(self, comm, allreduce: str = "mpi"):
        self.comm, self.rank, self.size = comm, comm.rank, comm.size
        self.allreduce = check_allreduce(allreduce)

    def sum(self, buffer: np.ndarray) -> None:
        if self.allreduce == "ring":
            ring_allreduce(self.comm, buffer)
        else:
            from mpi4py import MPI
            wait(self.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.SUM))

    def max(self, buffer: np.ndarray) -> None:
        from mpi4py import MPI
        wait(self.comm.Iallreduce(MPI.IN_PLACE, buffer, op=MPI.MAX))

    def broadcast_object(self, obj):
        wait(self.comm.Ibarrier())        # the others may be far behind rank 0 (it may have read a checkpoint)
        return self.comm.bcast(obj, root=0)

    def gather_object(self, obj) -> list:
        wait(self.comm.Ibarrier())
        return self.comm.allgather(obj)

    def barrier(self) -> None:
        wait(self.comm.Ibarrier())

    def abort(self, code: int) -> None:
        sys.stdout.flush(), sys.stderr.flush()
        time.sleep(0.5)        # the launcher forwards what this rank printed (why it stops) before it kills all
        self.comm.Abort(code)


def wait(request, pause: float = 0.0005) -> None:
    """Waits for a non-blocking MPI operation, sleeping between looks. MPI's own Wait spins at a whole
    core until the others arrive, and on a machine whose every core runs a rank that core is taken from
    a rank still computing (docs/distributed.md has the measurements)."""
    while not request.Test():
        time.sleep(pause)


def check_allreduce(name: str) -> str:
    if name not in ALLREDUCES:
        raise ValueError(f"--allreduce must be one of {', '.join(ALLREDUCES)}, got {name!r}")
    return name


_WORLD: World | None = None


def started() -> bool:
    """Has this process joined an MPI job of several (so that ending it needs MPI's abort)?"""
    return _WORLD is not None and _WORLD.size > 1


def current_world(allreduce: str = "mpi") -> World:
    """The world this process belongs to: a World of one unless a launcher started several ranks, in
    which case MPI is started (mpi4py) and this process learns its rank. Refuses, rather than letting
    N processes each train alone, a launch of several ranks without mpi4py."""
    global _WORLD
    if _WORLD is None:
        size, variable = launched_size()
        if size == 1:
            _WORLD = World()
        else:
            try:
                from mpi4py import MPI
            except ImportError:
                raise DistributedError(f"this process is one of {size} ({variable}={size}) but mpi4py is not installed, "
                                   "so it cannot reach the others: install the 'dist' extra (pip install -e "
                                   "'.[dist]'), or run one process without mpiexec") from None
            _WORLD = MPIWorld(MPI.COMM_WORLD)
            if _WORLD.size != size:
                raise DistributedError(f"{variable}={size} says this process is one of {size}, but MPI started it alone "
                                   f"({_WORLD.size}): either no launcher started it ({variable} left over in the "
                                   "environment: unset it), or mpi4py is built against another MPI than the mpiexec "
                                   "or srun that did (docs/distributed.md)")
    _WORLD.allreduce = check_allreduce(allreduce)
    return _WORLD


class GradientSum:
    """The all-reduce of a data-parallel step: every parameter's .grad, summed over the ranks, in ONE
    call on one flat buffer (a call per parameter would pay MPI's latency 52 times a step).

    Each rank's gradients arrive already weighted by its share of the global batch (train_step scales
    each slice's loss gradient by rows / global rows), so the sum IS the gradient of the global batch's
    mean loss, exactly what one process computing the whole batch gets (to rounding). The loss rides
    along in the last element, weighted the same way.
    """

    def __init__(self, params, world: World):
        self.params, self.world = list(params), world
        dtype = self.params[0].data.dtype if self.params else np.float32
        self.buffer = np.empty(sum(p.data.size for p in self.params) + 1, dtype=dtype)   # (S + 1,)
        self.seconds = 0.0                                # time spent in the all-reduce, for the record

    def __call__(self, loss_share: float) -> float:
        """Sums the gradients in place over the ranks; -> the sum of the ranks' loss shares."""
        offset = 0
        for p in self.params:                            # pack: every .grad into one buffer
            self.buffer[offset : offset + p.data.size] = p.grad.reshape(-1)
            offset += p.data.size
        self.buffer[-1] = loss_share
        started = time.perf_counter()
        self.world.sum(self.buffer)                      # the all-reduce
        self.seconds += time.perf_counter() - started
        offset = 0
        for p in self.params:                            # unpack: every rank now holds the same sums
            p.grad[...] = self.buffer[offset : offset + p.data.size].reshape(p.grad.shape)
            offset += p.data.size
        return float(self.buffer[-1])
