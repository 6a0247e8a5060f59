"""How many threads each rank computes with: the machine's cores shared among the ranks on it.

NumPy's BLAS (OpenBLAS) and Numba each start as many threads as the machine has cores. Two ranks on a
2-core laptop would then run four busy threads on two cores, and each would wait for the other's
threads to be descheduled. So, before NumPy is first imported, each rank of a job of several is given
cores // (ranks on this machine) threads, unless the user chose (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS,
MKL_NUM_THREADS or NUMBA_NUM_THREADS set: those are kept as given). Nothing here imports NumPy.

And how idle threads wait (`let_idle_threads_sleep`): OpenBLAS's threads spin for a while after each
matrix product, and OpenMP's (Numba's parallel loops) after each loop, so on two cores a second pool
of threads would fight the first (nn/fast/numba_kernels.py's thread policy). Told to sleep at once,
the two pools take turns, and Numba's loops may use every core: 1.09-1.12x a training step at 64 and
224 px, level at 32 px (lesson 14, round 6). Told to spin briefly first (about 0.1 ms, catching the
next loop or product of the same layer), inference at 32 px ran 1.15-1.25x faster again, training
level or better (round 7, an Intel Xeon; round 8: slower on a Zen 4 EPYC, faster again for inference
on a Zen 5). Both libraries read this when they load, so it is set
before NumPy loads, as the cores are.
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


# How the idle threads of OpenMP (Numba's parallel loops) and of OpenBLAS wait: a short spin, then
# asleep. PASSIVE alone (any OpenMP) sleeps at once; GNU OpenMP's GOMP_SPINCOUNT spins 10,000 times
# first (about 0.1 ms), OpenBLAS 2**16 cycles (20-30 us): long enough to catch the next loop or
# product of the same layer, far shorter than the other pool's work (lesson 14, rounds 6 and 7).
IDLE_THREADS_SLEEP = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000", "OPENBLAS_THREAD_TIMEOUT": "16"}
LONGEST_SPIN = {name: int(value) for name, value in IDLE_THREADS_SLEEP.items() if value.isdigit()}  # at most
# "sleep": let_idle_threads_sleep set IDLE_THREADS_SLEEP; "as-is": leave the waits as the environment has them
THREAD_WAITS = "TINYSQUEEZE_THREAD_WAITS"


def let_idle_threads_sleep(environ=os.environ) -> bool:
    """Before NumPy loads: sets IDLE_THREADS_SLEEP, unless the user set any of its variables (or
    THREAD_WAITS is "as-is"), and marks that it did (THREAD_WAITS = "sleep"). -> True if idle
    threads now sleep after a short spin (`idle_threads_sleep`)."""
    if environ.get(THREAD_WAITS) != "as-is" and not any(name in environ for name in IDLE_THREADS_SLEEP):
        environ.update(IDLE_THREADS_SLEEP)
        environ[THREAD_WAITS] = "sleep"
    return idle_threads_sleep(environ)


def idle_threads_sleep(environ=os.environ) -> bool:
    """-> True if the environment tells both pools' idle threads to sleep after a spin no longer than
    IDLE_THREADS_SLEEP's: OMP_WAIT_POLICY=PASSIVE, OPENBLAS_THREAD_TIMEOUT set to at most 16, and
    GOMP_SPINCOUNT unset (PASSIVE: no spin) or at most 10000."""
    def spin(name):
        value = environ.get(name, "0" if name == "GOMP_SPINCOUNT" else "").strip()
        return int(value) if value.isdigit() else None
    return environ.get("OMP_WAIT_POLICY", "").strip().upper() == "PASSIVE" and all(
        spin(name) is not None and spin(name) <= longest for name, longest in LONGEST_SPIN.items())


def waits_as_the_user_set(environ=os.environ) -> dict:
    """-> a copy of environ without what let_idle_threads_sleep set, marked "as-is" so that a process
    started with it (PyTorch's side of the bench) leaves its threads' waits as the user had them."""
    child = dict(environ)
    if child.get(THREAD_WAITS) == "sleep":
        for name in IDLE_THREADS_SLEEP:
            child.pop(name, None)
    child[THREAD_WAITS] = "as-is"
    return child
