"""A Ctrl-C during training that Python swallows still stops the run.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to be. When
that is inside a finalizer (a `__del__`, such as the one llvmlite runs while Numba compiles), Python
prints "Exception ignored in ..." and carries on: the interrupt is gone, and a run asked to stop
trains to its last epoch. So the command line installs `sigint_remembered()`, whose handler also
writes the request down, and the training loop calls `stop_if_interrupted()` after every step: an
interrupt swallowed during a step is raised again at that step's end, one swallowed between steps
(validation, writing an epoch's files) at the end of the next step. One swallowed after the last
step is not: the run has finished every epoch and says "done".

    with sigint_remembered():
        fit(run)        # train_epoch calls stop_if_interrupted() after each step
"""
from __future__ import annotations

import contextlib
import signal
import threading

_requested = threading.Event()       # set by the handler; cleared when a new `sigint_remembered` starts


def _remember_and_raise(signum, frame):
    _requested.set()
    raise KeyboardInterrupt


@contextlib.contextmanager
def sigint_remembered():
    """Within it, Ctrl-C raises KeyboardInterrupt as usual and is also remembered, for
    `stop_if_interrupted`. Only the main thread can install a handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested.clear()
    previous = signal.signal(signal.SIGINT, _remember_and_raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_if_interrupted() -> None:
    """Raises KeyboardInterrupt if a Ctrl-C arrived under `sigint_remembered` (whether or not its
    own KeyboardInterrupt got through)."""
    if _requested.is_set():
        raise KeyboardInterrupt
