"""Assignment `gradcheck` (lesson 5): the numerical gradient every other assignment is graded with.

Write the two bodies marked TODO, then grade them:

    python -m tinysqueeze check gradcheck

The grader runs your functions on functions whose gradient is known exactly (by hand), compares
them with tinysqueeze's (`tinysqueeze/evaluation/gradcheck.py`), and says what is probably wrong
when something is.
"""
import numpy as np

from tinysqueeze.course import NotWrittenYet


def numeric_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The gradient of the scalar function f at x by centred finite differences.

    f: a function of no arguments that returns a float computed from x (it reads x, so nudging an
    entry of x in place changes what f returns). x: a float64 array of any shape.
    -> an array of x's shape whose entry i is (f() with x[i] + eps  -  f() with x[i] - eps) / (2 eps).
    x must hold exactly its original values again when you return.
    """
    # TODO: for each entry (np.ndindex(x.shape), or a loop over x.reshape(-1), which is a view of x when
    # x is contiguous, as the grader's arrays are; x.flatten() is always a copy):
    # nudge it up, evaluate, nudge it down, evaluate, put it back.
    raise NotWrittenYet("numeric_gradient")


def rel_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """How far two gradients are apart, relative to their size:

        max|analytic - numeric| / max(1e-8, max|analytic| + max|numeric|)

    0 for equal arrays; about 1 when they have nothing in common; for a correct backward checked
    in float64, typically 1e-11 to 1e-8, and the checks pass below 1e-6 (lesson 5).
    This is the formula of lesson 5, over whole arrays: the start lesson compared single numbers.
    """
    # TODO
    raise NotWrittenYet("rel_error")
