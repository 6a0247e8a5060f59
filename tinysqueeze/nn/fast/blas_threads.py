"""How many threads NumPy's matrix products use in training: one for small images, all cores else.

NumPy's matrix products run in OpenBLAS, which starts one thread per core and splits a large product
among them; the product is done when its slowest thread is. When another program is busy on the
machine, one of the two threads of a 2-core laptop shares its core with it, and every product of a
step waits for that thread (squeezenet1_1, batch 64, median of 10 steps; lesson 14, round 4):

    32 px: quiet 32-41 ms on 2 threads, 35-39 on 1; one busy program 72 against 35; two, 181 against 53
    48 px: quiet 86 ms on 2 threads, 100 on 1
    64 px: quiet 120 ms on 2 threads, 154 on 1; one busy program 361 against 230

The batch-inside layers of nn/fast are the ones it hits: they do one large product per layer, which
OpenBLAS splits. The plain layers (and a learner's own) multiply one image at a time, products small
enough that OpenBLAS keeps each on one thread, so a busy machine slows them no more than any program.

So a training run whose batches are as small as 64 images of 32 px (`SMALL_BATCH` pixels per
channel) or smaller runs its products on one thread: quiet, the second thread bought less than 10%;
on a shared machine it cost 2-3x. Larger runs keep every core, where the second thread is worth
1.2-1.3x when the machine is quiet; on a shared machine set OPENBLAS_NUM_THREADS=1.

The count is a function of the run's settings, never of the machine's load: OpenBLAS adds up some
products (small ones, 64x3600 @ 3600x27 for one) in another order on 1 thread than on 2, so a count
that followed the load would make the same seeded command give other bits from one run to the next.
A count you set (OPENBLAS_NUM_THREADS or OMP_NUM_THREADS; a job of several ranks sets its share,
distributed/threads.py) is kept as given, as it is when NumPy's BLAS is not OpenBLAS.
"""
from __future__ import annotations

import contextlib
import ctypes
import glob
import os
from pathlib import Path

USER_CHOICE = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
SMALL_BATCH = 64 * 32 * 32          # pixels per channel of a batch: at or below, one thread


class OpenBLAS:
    """The thread count of the OpenBLAS NumPy has loaded, get() and set(n), and the kernels it runs,
    core(): through its C functions."""

    NAMES = [("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
             ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
             ("openblas_get_num_threads", "openblas_set_num_threads")]
    CORE_NAMES = ["scipy_openblas_get_corename64_", "openblas_get_corename64_", "openblas_get_corename"]

    def __init__(self, library: ctypes.CDLL):
        self.library = library
        for get_name, set_name in self.NAMES:
            if hasattr(library, get_name) and hasattr(library, set_name):
                self._get, self._set = getattr(library, get_name), getattr(library, set_name)
                self._get.restype, self._set.argtypes = ctypes.c_int, [ctypes.c_int]
                return
        raise LookupError("this library has no OpenBLAS thread functions")

    @classmethod
    def loaded(cls) -> "OpenBLAS | None":
        """NumPy's OpenBLAS, or None (another BLAS, or none found)."""
        import numpy                                   # loads the BLAS, if nothing has yet
        for path in loaded_libraries() + glob.glob(str(Path(numpy.__file__).parent.parent / "numpy.libs" / "*")):
            if "openblas" in Path(path).name.lower():
                try:
                    return cls(ctypes.CDLL(path))
                except (OSError, LookupError):
                    continue
        return None

    def core(self) -> str | None:
        """The kernels OpenBLAS chose for this CPU ("Haswell", "SkylakeX", ...), or the ones
        OPENBLAS_CORETYPE asked for; None if the library does not say."""
        for name in self.CORE_NAMES:
            if hasattr(self.library, name):
                function = getattr(self.library, name)
                function.restype = ctypes.c_char_p
                return function().decode()
        return None

    def get(self) -> int:
        return int(self._get())

    def set(self, threads: int) -> None:
        self._set(int(threads))


def loaded_libraries() -> list[str]:
    """The shared libraries this process has mapped (Linux's /proc/self/maps; [] elsewhere)."""
    try:
        lines = Path("/proc/self/maps").read_text().splitlines()
    except OSError:
        return []
    return sorted({line.split()[-1] for line in lines if line.rstrip().endswith(".so") or ".so." in line})


def training_threads(batch_size: int, image_size: int, cores: int) -> int:
    """The BLAS threads a training run of these settings computes with: 1 for small batches."""
    return 1 if batch_size * image_size * image_size <= SMALL_BATCH else cores


@contextlib.contextmanager
def blas_threads_for_training(batch_size: int, image_size: int, blas=..., environ=os.environ):
    """Inside: OpenBLAS on `training_threads(...)` threads, unless the user set a count (or the BLAS
    is not OpenBLAS: blas=None); the count it had is put back afterwards. Yields the count."""
    if blas is ...:
        blas = None if any(name in environ for name in USER_CHOICE) else OpenBLAS.loaded()
    if blas is None:
        yield None
        return
    before = blas.get()
    threads = training_threads(batch_size, image_size, before)
    blas.set(threads)
    try:
        yield threads
    finally:
        blas.set(before)
