"""How idle threads wait (tinysqueeze/distributed/threads.py, `let_idle_threads_sleep`) and the Numba
thread policy that follows from it (top of tinysqueeze/nn/fast/numba_kernels.py): the command line
tells both pools' idle threads to sleep and runs Numba's loops on every core; a library import keeps
one thread; what the user set is kept; PyTorch's side of the bench gets the user's waits; and the
thread count never changes a result."""
import json
import os
import subprocess
import sys

import pytest

from tinysqueeze.distributed.threads import (IDLE_THREADS_SLEEP, THREAD_WAITS, idle_threads_sleep,
                                             let_idle_threads_sleep, waits_as_the_user_set)


def test_unset_waits_are_set_to_sleep_and_marked():
    environ = {}
    assert let_idle_threads_sleep(environ) is True
    assert environ == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "10000", "OPENBLAS_THREAD_TIMEOUT": "16",
                       THREAD_WAITS: "sleep"}
    assert idle_threads_sleep(environ)


@pytest.mark.parametrize("environ, sleeps", [
    ({"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}, True),       # no spin at all: round 6's
    ({"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16", "GOMP_SPINCOUNT": "10000"}, True),
    ({"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "17"}, False),     # OpenBLAS spins longer
    ({"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16", "GOMP_SPINCOUNT": "30000"}, False),
    ({"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "16", "GOMP_SPINCOUNT": "INFINITE"}, False),
    ({"OPENBLAS_THREAD_TIMEOUT": "4", "GOMP_SPINCOUNT": "0"}, False),              # OpenMP's default: it spins
    ({"OMP_WAIT_POLICY": "PASSIVE"}, False),                                       # OpenBLAS's default: 2**28
])
def test_what_counts_as_sleeping_after_a_short_spin(environ, sleeps):
    """The thread policy lets the kernels use every core only if both pools' idle threads spin no
    longer than the command line's setting (longer spins fought for the cores: lesson 14, round 7)."""
    assert idle_threads_sleep(environ) is sleeps


def test_a_wait_the_user_set_is_kept_and_nothing_else_is_set():
    for name in IDLE_THREADS_SLEEP:
        environ = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "300000" if name == "GOMP_SPINCOUNT" else "28"}
        before = dict(environ)
        assert let_idle_threads_sleep(environ) is False
        assert environ == before                              # neither variable added, no mark
    environ = {"OMP_WAIT_POLICY": "passive", "OPENBLAS_THREAD_TIMEOUT": "4"}     # the user's own, same meaning
    assert let_idle_threads_sleep(environ) is True and THREAD_WAITS not in environ


def test_as_is_leaves_the_waits_alone():
    environ = {THREAD_WAITS: "as-is"}
    assert let_idle_threads_sleep(environ) is False and environ == {THREAD_WAITS: "as-is"}


def test_the_bench_gives_pytorch_the_users_waits():
    ours = {"PATH": "/bin"}
    let_idle_threads_sleep(ours)
    assert waits_as_the_user_set(ours) == {"PATH": "/bin", THREAD_WAITS: "as-is"}     # what we set, gone
    users = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4"}
    let_idle_threads_sleep(users)
    assert waits_as_the_user_set(users) == {**users, THREAD_WAITS: "as-is"}          # the user's, kept


PROBE = """
import json, os, sys
if sys.argv[1] == "cli":
    import tinysqueeze.cli                      # what `python -m tinysqueeze` runs first
import numba, numpy as np
from tinysqueeze.studies.bench import OurStep
step = OurStep("squeezenet1_1", 32, 8)
for _ in range(2):
    step.train()
weights = b"".join(np.ascontiguousarray(p.data).tobytes() for p in step.model.parameters())
print(json.dumps({"threads": numba.get_num_threads(), "cores": numba.config.NUMBA_DEFAULT_NUM_THREADS,
                  "wait": os.environ.get("OMP_WAIT_POLICY"),
                  "weights": __import__("hashlib").sha256(weights).hexdigest()}))
"""


def probe(how: str, **environ) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (*IDLE_THREADS_SLEEP, THREAD_WAITS, "NUMBA_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", PROBE, how], env={**env, **environ}, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_the_command_line_runs_numba_on_every_core_and_the_library_on_one_with_the_same_bits():
    cli, library = probe("cli"), probe("library")
    assert (cli["threads"], cli["wait"]) == (cli["cores"], "PASSIVE")      # every core Numba sees
    assert (library["threads"], library["wait"]) == (1, None)
    assert cli["weights"] == library["weights"]                # two training steps, bit for bit
    assert probe("cli", NUMBA_NUM_THREADS="1")["threads"] == 1  # a count the user set is kept


def test_the_kernels_use_every_core_only_with_sleeping_waits_and_openblas():
    from tinysqueeze.nn.fast.numba_kernels import kernels_on_one_thread

    sleeping = dict(IDLE_THREADS_SLEEP)
    assert kernels_on_one_thread({}, blas_is_openblas=True)                      # a library import
    assert not kernels_on_one_thread(sleeping, blas_is_openblas=True)            # the command line
    assert kernels_on_one_thread(sleeping, blas_is_openblas=False)               # another BLAS: not measured
    assert not kernels_on_one_thread({"NUMBA_NUM_THREADS": "2"}, blas_is_openblas=False)   # the user chose
