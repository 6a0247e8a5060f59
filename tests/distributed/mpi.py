"""Running commands on several ranks from a test: mpiexec beside this Python, a timeout that kills the
whole process group (mpiexec, its proxy, the ranks), so a hang fails a test instead of the suite."""
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_mpiexec() -> str | None:
    """The mpiexec beside this Python (the mpich wheel puts one in the venv's bin/), else one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def launch(ranks: int, command: list[str], timeout: float = 120, cwd=ROOT, env=None) -> subprocess.CompletedProcess:
    """`command` on `ranks` ranks (1: plainly, without mpiexec); an MPMD launch when `command` holds ":".
    -> its exit status and output, as text."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **(env or {})}
    if ranks > 1:
        mpiexec = find_mpiexec()
        if mpiexec is None:
            pytest.skip("no mpiexec beside sys.executable or on PATH")
        command = [mpiexec, "-n", str(ranks)] + command
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                          text=True, env=env, cwd=cwd, start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"{ranks} ranks still running after {timeout} s (a hang?)\n{stdout}\n{stderr}")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
