"""Was this process started as one of several ranks? What the launchers say, read without MPI.

MPICH's mpiexec (hydra) and Slurm's srun with PMI-2 set PMI_SIZE in each process they start; Open MPI's
mpirun OMPI_COMM_WORLD_SIZE; MVAPICH MV2_COMM_WORLD_SIZE; Slurm's srun SLURM_STEP_NUM_TASKS in every
task of a job step. Nothing here imports NumPy or MPI (threads.py reads it before NumPy loads).
"""
from __future__ import annotations

import os

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "SLURM_PROCID")


def launched_size(environ=os.environ) -> tuple[int, str | None]:
    """-> (how many ranks the launcher started, the variable that says so), or (1, None) for a plain run."""
    for name in SIZE_VARIABLES:
        text = environ.get(name, "")
        if text.strip().isdigit() and int(text) > 1:
            return int(text), name
    return 1, None


def launched_rank(environ=os.environ) -> int:
    """This process's rank as the launcher says it (0 for a plain run): who speaks before MPI has started."""
    for name in RANK_VARIABLES:
        text = environ.get(name, "")
        if text.strip().isdigit():
            return int(text)
    return 0
