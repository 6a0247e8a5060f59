"""How many threads each rank computes with: the machine's cores shared among the ranks on it.

NumPy's BLAS (OpenBLAS) and Numba each start as many threads as the machine has cores. Two ranks on a
2-core laptop would then run four busy threads on two cores, and each would wait for the other's
threads to be descheduled. So, before NumPy is first imported, each rank of a job of several is given
cores // (ranks on this machine) threads, unless the user chose (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
MKL_NUM_THREADS or NUMBA_NUM_THREADS set: those are kept as given). Nothing here imports NumPy.
"""
from __future__ import annotations

import os

from .launch import launched_size

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# How many ranks share this machine, as the launchers say it: MPICH's hydra, Open MPI, Slurm.
LOCAL_SIZE_VARIABLES = ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE")


def ranks_on_this_machine(environ=os.environ) -> int:
    for name in LOCAL_SIZE_VARIABLES:
        text = environ.get(name, "")
        if text.strip().isdigit() and int(text) > 0:
            return int(text)
    return launched_size(environ)[0]          # no launcher said: assume all on this machine


def share_cores(environ=os.environ, cores: int | None = None) -> int | None:
    """In a job of several ranks, sets each thread-count variable the user left unset to this rank's
    share of the cores; -> that share, or None (one process, or the user chose)."""
    if launched_size(environ)[0] == 1 or any(name in environ for name in THREAD_VARIABLES):
        return None
    if cores is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // ranks_on_this_machine(environ))
    for name in THREAD_VARIABLES:
        environ[name] = str(threads)
    return threads
