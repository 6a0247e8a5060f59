"""The assignments, in the lessons' order, and the one command that grades them.

    python -m tinysqueeze check conv                      # grades assignments/conv.py
    python -m tinysqueeze check conv --impl my/conv.py    # or any file
    python -m tinysqueeze check                           # every assignment: one line each

The starting files live in tinysqueeze/course/stubs/; the first `check` copies them to
`assignments/` (never over a file that is already there), where the learner writes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import shutil
import signal
import sys
import threading
from pathlib import Path

from . import checks
from .checks import Assignment
from .grading import Grader, Part, Stop, print_report

STUBS = Path(__file__).parent / "stubs"
DEFAULT_FOLDER = Path("assignments")

ASSIGNMENTS = [
    Assignment("value", "the start lesson", "0-start-here-the-graph-on-scalars.md",
               "backpropagation on single numbers: +, *, relu and the walk backwards", checks.grade_value),
    Assignment("linear", "lesson 0", "00-one-layers-backward.md", "Linear: forward and backward", checks.grade_linear,
               ("Linear",)),
    Assignment("conv", "lesson 1", "01-convolution-and-im2col.md", "im2col, col2im, Conv2d forward and backward",
               checks.grade_conv, ("Conv2d",)),
    Assignment("pooling", "lesson 2", "02-pooling.md", "MaxPool2d, AvgPool2d, global average pooling",
               checks.grade_pooling, ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d")),
    Assignment("relu_dropout_concat", "lesson 3", "03-relu-dropout-concat.md", "ReLU, Dropout, Concat",
               checks.grade_relu_dropout_concat, ("ReLU", "Dropout", "Concat")),
    Assignment("loss", "lesson 4", "04-softmax-cross-entropy.md", "softmax cross-entropy", checks.grade_loss,
               ("SoftmaxCrossEntropy",)),
    Assignment("gradcheck", "lesson 5", "05-gradient-checking.md", "centred differences and the relative error",
               checks.grade_gradcheck),
    Assignment("step", "lesson 5b", "05b-your-first-training-loop.md", "one training step", checks.grade_step),
    Assignment("fire", "lesson 6", "06-fire-module.md", "the Fire module's forward and backward", checks.grade_fire,
               ("Fire",)),
    Assignment("sgd", "lesson 11", "11-sgd-and-the-plateau.md", "SGD with momentum and weight decay",
               checks.grade_sgd, ("SGD",)),
]
BY_NAME = {a.name: a for a in ASSIGNMENTS}


def assignment(name: str) -> Assignment:
    if name not in BY_NAME:
        raise ValueError(f"no assignment {name!r}; the assignments are: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def next_step(name: str) -> str | None:
    names = list(BY_NAME)
    index = names.index(name)
    if index + 1 < len(names):
        following = ASSIGNMENTS[index + 1]
        return f"python -m tinysqueeze check {following.name} ({following.lesson}: {following.what})"
    return "python -m tinysqueeze train --layers assignments ... trains a SqueezeNet made of your layers (lesson 11)"


def write_starting_files(folder: Path = DEFAULT_FOLDER) -> list[Path]:
    """Copies every starting file that `folder` does not have yet; never overwrites. -> the new files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for stub in sorted(STUBS.glob("*.py")):
        target = folder / stub.name
        if not target.exists():
            shutil.copyfile(stub, target)
            written.append(target)
    return written


def load_file(path: Path):
    """Imports the learner's file as a module of its own (a fresh import each time it is graded).

    Raises ValueError naming the file when it is missing or does not import (a syntax error, ...)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = f"tinysqueeze_assignment_{path.stem}_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"{path} is not a Python file (an assignment is a .py file)")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as error:
        line = getattr(error, "lineno", None)
        raise ValueError(f"{path} does not import: {type(error).__name__}: {error}"
                         + (f" (line {line})" if line and not isinstance(error, SyntaxError) else "")) from None
    return module


# Grading any assignment takes seconds; a file still running after this long loops forever.
GRADING_SECONDS = 300


class TookTooLong(BaseException):
    """Raised into the learner's code when the time is up (a BaseException: no `except Exception` of the
    grader's, or of the learner's, can swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Within it, code running longer than `seconds` is stopped with TookTooLong (main thread only: a
    timer signal; elsewhere there is no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise TookTooLong

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def grade(name: str, path: Path, seconds: float = GRADING_SECONDS) -> list[Part]:
    """Grades the file `path` as assignment `name`. -> its parts, each passed, failed or not written.
    A file that runs longer than `seconds` (an endless loop) is a ValueError saying so."""
    try:
        with time_limit(seconds):
            grader = Grader(load_file(path), path)
            try:
                assignment(name).grade(grader)
            except Stop:                          # the file lacks a name the assignment needs
                pass
    except TookTooLong:
        raise ValueError(f"{path} was still running after {seconds:g} s, when grading it takes seconds: does a loop "
                         "in it never end? (Ctrl-C in a running check shows where it is)") from None
    return grader.finish()


def check(name: str, path: Path | None = None, out=None) -> bool:
    """Grades one assignment and prints its report; -> True when every part passes."""
    task = assignment(name)
    path = Path(path) if path is not None else DEFAULT_FOLDER / f"{name}.py"
    return print_report(name, path, grade(name, path), task.lesson, next_step(name), out=out)


def check_all(folder: Path = DEFAULT_FOLDER, out=None) -> bool:
    """One line per assignment: how many of its parts pass. -> True when all do."""
    out = out or sys.stdout
    everything = True
    width = max(len(task.lesson) for task in ASSIGNMENTS) + 2
    print(f"{'assignment':<21}{'lesson':<{width}}{'parts passing':<15}status", file=out)
    for task in ASSIGNMENTS:
        path = Path(folder) / f"{task.name}.py"
        try:
            parts = grade(task.name, path)
        except ValueError as error:
            print(f"{task.name:<21}{task.lesson:<{width}}{'-':<15}{error}", file=out)
            everything = False
            continue
        passed = sum(p.passed for p in parts)
        failing = [p.name for p in parts if p.status == "FAIL"]
        if passed == len(parts):
            status = "done"
        elif failing:
            status = "failing: " + ", ".join(failing)
        else:
            status = "not written yet" if passed == 0 else "in progress"
        everything &= passed == len(parts)
        print(f"{task.name:<21}{task.lesson:<{width}}{f'{passed} of {len(parts)}':<15}{status}", file=out)
    return everything


def report_text(name: str, path: Path) -> str:
    """The report `check` prints, as text (for tests and lessons)."""
    buffer = io.StringIO()
    check(name, path, out=buffer)
    return buffer.getvalue()
