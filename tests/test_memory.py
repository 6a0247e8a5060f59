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
def step():                           # what a training step does: big arrays, written, then freed
    a = np.ones((3, 2 ** 20), np.float32)              # 12 MB
    b = np.ones((2, 2 ** 20), np.float32)              # 8 MB
    del a, b
step()                                # the first step may map its memory
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_ten_steps(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return int(run.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_kept_memory_is_reused_without_page_faults():
    """20 MB written per step: fresh memory each time is 5,120 pages of 4 KB per step (fewer with huge
    pages), so ten steps fault in hundreds of pages at the least. Kept, they fault in (almost) none."""
    fresh, kept = page_faults_of_ten_steps("default"), page_faults_of_ten_steps("keep")
    assert fresh > 100
    assert kept < 20


def test_elsewhere_it_changes_nothing_and_says_so(monkeypatch):
    from tinysqueeze.nn import memory

    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False
