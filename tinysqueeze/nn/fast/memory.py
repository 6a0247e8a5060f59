"""Keeping freed memory for the next step: one process-wide setting of the C allocator.

A training step allocates the same arrays every time -- each layer's output, its im2col columns, the
gradients on the way back -- and frees them by the end of the step. NumPy takes that memory from the
C library's `malloc` (glibc's, on Linux). By default glibc gives a freed block at the top of its heap
back to the operating system once more than 128 KB lie free there, and serves any block over 128 KB
(raised, as it learns, up to 32 MB) with a fresh `mmap`. Fresh memory is not yet in the process: the
first write to each 4-KB page stops the program for a page fault while the kernel finds and zeroes a
page. So every step paid for thousands of page faults on memory it had just given back -- about
2,700 per step for squeezenet1_1 at 64 px, batch 64, and more in a virtual machine, where each fault
costs more (lesson 14 measures both).

`keep_freed_memory()` tells glibc to keep what is freed (`mallopt`): every block comes from the heap
(up to 32 MB by raising the threshold as far as glibc allows; larger ones, such as the 36-56 MB
arrays of squeezenet1_0's conv1 at 224 px, by turning glibc's mmap off), and the heap is not
trimmed, so the next step reuses the same, already-mapped pages. The peak memory is the same; it is
simply not returned between steps, nor, once freed, before the process ends. This is what
PyTorch's caching allocator does for GPU memory, done here by the allocator NumPy already uses.
The command line calls it for every command; a script of your own may call it once at its start.
It changes the whole process, so the library never calls it on its own.
"""
from __future__ import annotations

import ctypes
import sys

# mallopt's parameter numbers, from glibc's malloc.h
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -2, -3, -4
MMAP_THRESHOLD_MAX = 32 * 2**20    # glibc's largest M_MMAP_THRESHOLD on a 64-bit machine
NEVER_TRIM = 2**31 - 1             # M_TRIM_THRESHOLD is a C int: the largest is "never"
TOP_PAD = 64 * 2**20               # grow the heap 64 MB at a time (untouched pages cost nothing)
NO_MMAP = 0                        # M_MMAP_MAX: how many blocks may have their own mmap at once


def keep_freed_memory() -> bool:
    """Sets glibc's malloc to keep freed memory for reuse (see the module's docstring). -> True if it
    was set; False where there is no glibc `mallopt` (macOS, Windows, musl): nothing changes there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt          # the C library already loaded in this process
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    applied = [mallopt(parameter, value) == 1 for parameter, value in                # each one, whatever
               [(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_MMAP_MAX, NO_MMAP),
                                                  (M_TRIM_THRESHOLD, NEVER_TRIM), (M_TOP_PAD, TOP_PAD)]]
    return all(applied)
