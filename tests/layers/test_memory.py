"""nn.keep_freed_memory: a step reuses the memory the last one freed instead of faulting in fresh
pages (counted, never timed: page faults are a number the kernel keeps, ru_minflt)."""
import subprocess
import sys

import pytest

PROGRAM = """
import resource, sys
import numpy as np
from tinysqueeze import nn
if sys.argv[1] == "keep":
    assert nn.keep_freed_memory()
MB = int(sys.argv[2])
def step():                           # what a training step does: big arrays, written, then freed
    a = np.ones((MB - 8, 2 ** 18), np.float32)         # 12 MB, or 40 (more than glibc's largest threshold)
    b = np.ones((8, 2 ** 18), np.float32)              # 8 MB
    del a, b
step()                                # the first step may map its memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1000          # Linux: kilobytes
print(faults, peak_mb)
"""


def ten_steps(mode: str, megabytes: int = 20) -> tuple[int, float]:
    """-> (page faults of ten steps of `megabytes` each, the process's peak resident memory in MB)."""
    run = subprocess.run([sys.executable, "-c", PROGRAM, mode, str(megabytes)], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    faults, peak_mb = run.stdout.split()
    return int(faults), float(peak_mb)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_is_reused_without_page_faults():
    """20 MB written per step: fresh memory each time is 5,120 pages of 4 KB per step (fewer with huge
    pages), so ten steps fault in hundreds of pages at the least. Kept, they fault in (almost) none."""
    (fresh, _), (kept, _) = ten_steps("default"), ten_steps("keep")
    assert fresh > 100
    assert kept < 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_blocks_larger_than_any_threshold_are_reused_too():
    """A 40-MB array, as squeezenet1_0's conv1 has at 224 px (36-56 MB), is above the largest mmap
    threshold glibc accepts (32 MB): only with mmap turned off (M_MMAP_MAX = 0) does it come from the
    heap and its pages get reused."""
    (fresh, fresh_peak), (kept, kept_peak) = ten_steps("default", 48), ten_steps("keep", 48)
    assert fresh > 1000
    assert kept < 20
    assert kept_peak <= fresh_peak + 8


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_does_not_raise_the_peak():
    """The docstring's promise: the memory is held between steps, not added. The heap grows 64 MB at a
    time, but pages never written are not resident; a step's 20 MB are the same pages each time."""
    (_, fresh_peak), (_, kept_peak) = ten_steps("default"), ten_steps("keep")
    assert kept_peak <= fresh_peak + 8


def test_the_command_line_sets_it_for_its_commands(monkeypatch, capsys):
    from tinysqueeze import cli, nn

    calls = []
    monkeypatch.setattr(nn, "keep_freed_memory", lambda: calls.append(True))
    assert cli.main(["summary", "--model", "squeezenet1_1", "--image-size", "32"]) == 0
    assert calls == [True]


def test_elsewhere_it_changes_nothing_and_says_so(monkeypatch):
    from tinysqueeze.nn.fast import memory

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False
