"""The grader's machinery: run a learner's function, compare it, check its gradient, say what is wrong.

An assignment is graded as a list of `Part`s, one per function the learner writes
("Conv2d.backward: dweight"). Each part is tried on several cases (shapes, strides, ...). On every
case the learner's result is compared with tinysqueeze's own function (`compare`), and a layer's
backward is also checked against centred finite differences in float64 (`gradient_check`, the
project's own checker, evaluation/gradcheck.py). A part passes when every case does.

When a part fails, the grader says what is probably wrong, two ways:
- a hint tied to the failing result itself (`Hint`): "dW has the transposed shape", "your dx is
  what col2im gives with `=` instead of `+=`";
- a pattern over the cases (`Pattern`): a part that passes every case without overlapping windows
  and fails every case with them adds where it should overwrite, or the other way round.

`checks.py` holds what is graded for each assignment; this file knows nothing of layers.
"""
from __future__ import annotations

import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..evaluation.gradcheck import TOLERANCE as GRADCHECK_TOLERANCE
from ..evaluation.gradcheck import gradcheck, rel_error
from . import NotWrittenYet

REFERENCE_TOLERANCE = 1e-9          # your result against tinysqueeze's, both in float64
FORWARD_DISAGREES = ("your backward agrees with tinysqueeze's but not with your own forward: the forward "
                     "computes something else (a bias left out?)")


class Stop(Exception):
    """Ends a part's cases: the learner's code is not written yet or raised an error."""


@dataclass
class Hint:
    """`applies(yours, expected)` is True when the failure looks like `text`'s mistake.

    A hint that needs the case itself (the layer, its input x, the dout sent back) sets
    `needs_case`; it is then called as applies(yours, expected, case), case being a `CaseData`."""

    text: str
    applies: Callable[..., bool]
    needs_case: bool = False


@dataclass
class CaseData:
    """What a layer was given on the case being judged: the layer (tinysqueeze's), x, and dout."""

    layer: object = None
    x: object = None
    dout: object = None


@dataclass
class Pattern:
    """When every failing case has `tag` and every case without it passes, `text` is the likely mistake."""

    tag: str
    text: str


@dataclass
class Part:
    """One function a learner writes, e.g. "Conv2d.backward: dx", and how it did over its cases."""

    name: str
    hints: list[Hint] = field(default_factory=list)
    patterns: list[Pattern] = field(default_factory=list)
    cases: int = 0
    worst: float = 0.0                                 # against tinysqueeze's
    worst_gradcheck: float | None = None               # against finite differences
    failure: str = ""                                  # the first failing case, and how it failed
    hint: str = ""
    not_written: str = ""                              # "Conv2d.backward is not written yet"
    stopped: bool = False                              # an earlier part stopped the checks part-way
    outcomes: list[tuple[frozenset, bool]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if self.not_written:
            return "not written yet"
        if self.failure:
            return "FAIL"
        return "pass" if self.cases and not self.stopped else "not tried"

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def fail(self, case: str, how: str, hint: str = "") -> None:
        if not self.failure:                            # keep the first failure: it is the simplest
            self.failure, self.hint = f"{how} on {case}", hint
        elif hint and not self.hint:
            self.hint = hint

    def finish(self) -> None:
        """After the last case: a pattern over the cases names the mistake when no hint did."""
        if not self.failure or self.hint:
            return
        failed = [tags for tags, ok in self.outcomes if not ok]
        passed = [tags for tags, ok in self.outcomes if ok]
        for pattern in self.patterns:
            if failed and all(pattern.tag in tags for tags in failed) and \
                    any(pattern.tag not in tags for tags in passed):
                self.hint = pattern.text
                return


class Grader:
    """The parts of one assignment, in the order the learner writes them, and the learner's file."""

    def __init__(self, yours, path: Path):
        self.yours, self.path = yours, Path(path)
        self.parts: dict[str, Part] = {}
        self.case = CaseData()                          # the case being judged, for the hints that need it

    def part(self, name: str, hints=(), patterns=()) -> Part:
        if name not in self.parts:
            self.parts[name] = Part(name, list(hints), list(patterns))
        return self.parts[name]

    def subclass(self, part: Part, name: str, base: type) -> type:
        """The learner's class `name`, which must subclass `base` (it inherits __init__, the parameters,
        .to() and .train() from it); a clear failure, not a traceback, when it does not."""
        found = self.function(name)
        if not (isinstance(found, type) and issubclass(found, base)):
            what = f"a subclass of {found.__bases__[0].__name__}" if isinstance(found, type) else \
                f"a {type(found).__name__}"
            part.cases += 1
            part.fail("your file", f"{name} is {what}, not of {base.__name__}",
                      f"keep the starting file's `class {name}({base.__module__.split('.')[1]}.{base.__name__})`: "
                      f"your class inherits __init__, the parameters, .to() and .train() from it"
                      if base.__module__.startswith("tinysqueeze.") else f"keep `class {name}({base.__name__})`")
            raise Stop
        return found

    def stopped(self, parts) -> None:
        """An exception or an unwritten function stopped a layer's cases: its parts that had not
        failed were not tried on every case, so none of them may say "pass"."""
        for part in parts:
            part.stopped = True

    def function(self, name: str):
        """The learner's function or class `name`; a clear error if the file does not define it."""
        found = getattr(self.yours, name, None)
        if found is None:
            part = self.part(name)
            part.fail("your file", f"{self.path.name} defines no {name!r} (keep the names of the starting file)")
            raise Stop
        return found

    # -- running the learner's code -------------------------------------------------------------
    def call(self, part: Part, case: str, fn: Callable, *args, **kwargs):
        """fn(*args) for the learner; NotWrittenYet or an exception ends the part (raises Stop)."""
        try:
            return fn(*args, **kwargs)
        except NotWrittenYet as error:
            part.not_written = str(error)
            raise Stop from None
        except Stop:
            raise
        except (Exception, SystemExit) as error:        # the learner's bug, reported, not raised
            part.fail(case, f"raised {type(error).__name__}: {error}{self.where(error)}", hint_for_error(str(error)))
            raise Stop from None

    def where(self, error: BaseException) -> str:
        """" (conv.py line 42)": the last line of the learner's file the error went through."""
        lines = [frame.lineno for frame in traceback.extract_tb(error.__traceback__)
                 if Path(frame.filename).resolve() == self.path.resolve()]
        return f" ({self.path.name} line {lines[-1]})" if lines else ""

    # -- judging a result -----------------------------------------------------------------------
    def compare(self, part: Part, case: str, yours, expected, tags=()) -> bool:
        """Your result against tinysqueeze's: equal shapes, and a relative error below 1e-9."""
        part.cases += 1
        ok = self._compare(part, case, yours, np.asarray(expected))
        part.outcomes.append((frozenset(tags), ok))
        return ok

    def _compare(self, part: Part, case: str, yours, expected: np.ndarray) -> bool:
        if yours is None:
            part.fail(case, "returned None")
            return False
        if expected.ndim == 0:                          # a number (a loss, a relative error)
            if isinstance(yours, np.ndarray) and yours.ndim > 0:
                part.fail(case, f"returned an array of shape {yours.shape}, expected a number",
                          "return a Python float: float(...) of the 0-d result")
                return False
            if not isinstance(yours, (int, float, np.number, np.ndarray)) or isinstance(yours, bool):
                part.fail(case, f"returned a {type(yours).__name__}, expected a number (a Python float)")
                return False
        elif not isinstance(yours, np.ndarray):
            part.fail(case, f"returned a {type(yours).__name__}, expected a numpy array",
                      "keep NumPy arrays throughout (no .tolist(), no Python lists): the next layer does "
                      "array arithmetic on what you return")
            return False
        try:
            yours = np.asarray(yours, dtype=np.float64)
        except (TypeError, ValueError):
            part.fail(case, f"returned a {type(yours).__name__}, not an array of numbers")
            return False
        if yours.shape != expected.shape:
            transposed = "the shape is transposed" if yours.ndim >= 2 and yours.shape == expected.shape[::-1] else ""
            part.fail(case, f"shape {yours.shape}, expected {expected.shape}",
                      first_hint(part, yours, expected, self.case) or transposed)
            return False
        if not np.all(np.isfinite(yours)):
            part.fail(case, "gave NaN or inf", first_hint(part, yours, expected, self.case))
            return False
        error = rel_error(yours, expected)
        part.worst = max(part.worst, error)
        if error <= REFERENCE_TOLERANCE:
            return True
        part.fail(case, f"rel. error {error:.1e} against tinysqueeze's", first_hint(part, yours, expected, self.case))
        return False

    def gradient_check(self, parts: dict[str, Part], case: str, module, inputs, *args) -> None:
        """The project's own gradient check (float64, centred differences) on the learner's module.

        parts: which Part each gradient belongs to, by gradcheck's names ("x", "weight", ...)."""
        first = next(iter(parts.values()))
        errors = self.call(first, case, gradcheck, module, inputs, *args)
        for name, error in errors.items():
            part = parts.get(name) or parts.get(name.split("[")[0])
            if part is None:
                continue
            part.worst_gradcheck = max(part.worst_gradcheck or 0.0, error)
            if not error <= GRADCHECK_TOLERANCE:
                agrees = not part.failure and part.cases > 0
                part.fail(case, f"gradient check: rel. error {error:.1e} against finite differences",
                          FORWARD_DISAGREES if agrees else "")

    # -- the report -----------------------------------------------------------------------------
    def finish(self) -> list[Part]:
        for part in self.parts.values():
            part.finish()
        return list(self.parts.values())


def hint_for_error(message: str) -> str:
    """What an exception's message suggests: two shapes that are each other's transpose, or an array
    added into a .grad of another shape."""
    shapes = [tuple(int(n) for n in re.findall(r"\d+", found))
              for found in re.findall(r"\((\d+(?:,\s*\d+)*),?\)", message)]
    if "non-broadcastable output operand" in message and len(shapes) >= 2:
        into, added = shapes[0], shapes[1]
        if added[::-1] != into:
            return (f"an array of shape {added} was added into one of shape {into} (a parameter's .grad?): a "
                    "gradient has its parameter's own shape; sum over the axes it does not have (the batch, "
                    "the pixels)")
    if "mismatch in its core dimension" in message and not transposed_in(message):
        return ("the shapes of a product do not chain (in a @ b, a's last axis must be b's first): write each "
                "factor's shape beside it, e.g. dout @ W is (N, out) @ (out, in) -> (N, in)")
    return transposed_in(message)


def transposed_in(message: str) -> str:
    """A hint when an error message names two shapes that are each other's transpose, (4,7) and (7,4)."""
    shapes = [tuple(int(n) for n in re.findall(r"\d+", found)) for found in re.findall(r"\((\d+(?:,\s*\d+)+)\)", message)]
    for a in shapes:
        if len(a) == 2 and a[0] != a[1] and a[::-1] in shapes:
            return (f"the shapes {a} and {a[::-1]} are each other's transpose: a product taken the wrong way round "
                    "(e.g. x.T @ dout where dout.T @ x is meant: a gradient has its parameter's own shape)")
    return ""


def first_hint(part: Part, yours, expected, case: CaseData | None = None) -> str:
    """The text of the first of the part's hints that fits this failing result ("" if none does)."""
    return next((h.text for h in part.hints
                 if _safely(h.applies, yours, expected, *([case] if h.needs_case else []))), "")


def _safely(test: Callable, *args) -> bool:
    try:
        return bool(test(*args))
    except Exception:
        return False


def same(a, b, tolerance: float = 1e-7) -> bool:
    """a and b are the same array (shape and values), up to rounding."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and rel_error(a, b) <= tolerance


def ratio_is(value: float):
    """A hint test: yours is `value` times the expected result (a factor forgotten or added)."""
    return lambda yours, expected: same(yours, expected * value)


def print_report(name: str, path: Path, parts: list[Part], lesson: str, next_step: str | None,
                 out=None) -> bool:
    """Prints one line per part (and the hint under a failing one); -> True when every part passes."""
    out = out or sys.stdout
    width = max(len(p.name) for p in parts) + 2 if parts else 10
    status_width = max([len(p.status) for p in parts] + [4]) + 2      # two spaces after the longest status
    stoppers = [p.name for p in parts if p.status in ("FAIL", "not written yet")]
    print(f"check {name}: {path}", file=out)
    for part in parts:
        if part.status == "pass":
            detail = f"rel. error {part.worst:.0e} against tinysqueeze's"
            if part.worst_gradcheck is not None:
                detail += f", {part.worst_gradcheck:.0e} against finite differences"
            detail += f" ({part.cases} case{'s' * (part.cases != 1)})"
        elif part.status == "not written yet":
            detail = f"the TODO in {path.name}"
        else:
            detail = part.failure or (f"the checks stopped at {stoppers[0]} before this part was tried"
                                      if stoppers else "the checks stopped before this part was tried")
        print(f"  {part.name:<{width}}{part.status:<{status_width}}{detail}", file=out)
        if part.hint:
            print(f"  {'':<{width}}{'':<{status_width}}probably: {part.hint}", file=out)
    passed = sum(p.passed for p in parts)
    everything = bool(parts) and passed == len(parts)
    if everything:
        print(f"All {len(parts)} pass: the assignment of {lesson} is done."
              + (f" Next: {next_step}." if next_step else ""), file=out)
    else:
        print(f"{passed} of {len(parts)} pass (tolerance {REFERENCE_TOLERANCE:.0e} against tinysqueeze's, "
              f"{GRADCHECK_TOLERANCE:.0e} against finite differences, float64).", file=out)
    return everything
