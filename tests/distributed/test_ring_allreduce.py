"""tinysqueeze.distributed.ring: the ring all-reduce against MPI's own Allreduce, on 1, 2 and 3 ranks.

Each multi-rank case launches `mpiexec -n N python tests/fixtures/ring_allreduce_check.py` in a
subprocess (with a timeout, so a ring that deadlocks fails instead of hanging the suite); the script
checks sizes 1, 2, 5, 7, 1000, 1001 in float64 and float32, and that every rank ends with the same
bits. One rank is a plain run, no mpiexec: the buffer must come back unchanged."""
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("mpi4py")

from tinysqueeze.distributed.ring import chunk_bounds, ring_allreduce  # noqa: E402

from .mpi import ROOT, launch  # noqa: E402

SCRIPT = ROOT / "tests" / "fixtures" / "ring_allreduce_check.py"
TIMEOUT = 60
EXPECTED_CASES = 12   # 6 sizes x 2 dtypes


def run_check(ranks: int) -> subprocess.CompletedProcess:
    """Run the check script on `ranks` ranks (1: plainly, without mpiexec); its stdout and stderr, as text.
    `-m mpi4py`: a rank that raises calls MPI_Abort, ending every rank at once, instead of leaving the
    others waiting for it until the timeout."""
    return launch(ranks, [sys.executable, "-m", "mpi4py", str(SCRIPT)], timeout=TIMEOUT)


def case_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in done.stdout.splitlines() if line.startswith("CASE ")]


@pytest.mark.parametrize("ranks", [2, 3])
def test_ring_matches_allreduce_and_every_rank_has_the_same_bits(ranks):
    done = run_check(ranks)
    cases = case_lines(done)
    failed = [line for line in cases if "=False" in line]
    assert done.returncode == 0 and not failed, f"{failed or ''}\n{done.stdout}\n{done.stderr}"
    assert len(cases) == EXPECTED_CASES, done.stdout
    assert f"RANKS {ranks} OK" in done.stdout


def test_one_rank_leaves_the_buffer_unchanged():
    done = run_check(1)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert len(case_lines(done)) == EXPECTED_CASES and "RANKS 1 OK" in done.stdout, done.stdout


def test_chunks_cover_the_buffer_in_nearly_equal_contiguous_pieces():
    assert chunk_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert chunk_bounds(2, 3) == [(0, 1), (1, 2), (2, 2)]      # shorter than N: an empty last chunk
    assert chunk_bounds(5, 1) == [(0, 5)]
    for length in (0, 1, 5, 1001):
        for n in (1, 2, 3, 8):
            bounds = chunk_bounds(length, n)
            sizes = [stop - start for start, stop in bounds]
            assert bounds[0][0] == 0 and bounds[-1][1] == length and len(bounds) == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:])) and max(sizes) - min(sizes) <= 1


def test_refuses_buffers_it_cannot_sum_in_place():
    class OneRank:
        rank, size = 0, 1

    with pytest.raises(TypeError):
        ring_allreduce(OneRank(), np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError):
        ring_allreduce(OneRank(), np.zeros((2, 2)))
    with pytest.raises(ValueError):
        ring_allreduce(OneRank(), np.zeros(8)[::2])
