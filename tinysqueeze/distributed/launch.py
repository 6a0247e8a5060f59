"""Was this process started as one of several ranks? What the launchers say, read without MPI.

MPICH's mpiexec (hydra) and Slurm's srun with PMI-2 set PMI_SIZE in each process they start; Open MPI's
mpirun OMPI_COMM_WORLD_SIZE; MVAPICH MV2_COMM_WORLD_SIZE; Slurm's srun SLURM_STEP_NUM_TASKS in every
task of a job step. Nothing here imports NumPy or MPI (threads.py reads it before NumPy loads).
"""
from __future__ import annotations

import os

SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")


def launched_size(environ=os.environ) -> tuple[int, str | None]:
    """-> (how many ranks the launcher started, the variable that says so), or (1, None) for a plain run."""
    for name in SIZE_VARIABLES:
        text = environ.get(name, "")
        if text.strip().isdigit() and int(text) > 1:
            return int(text), name
    return 1, None
