"""The course: assignments a learner writes and the grader that proves them (`python -m tinysqueeze check`).

Each assignment is a file of the real layers' signatures, docstrings and shapes with a TODO where the
learner writes the body (`stubs/`, copied to `assignments/` on first use). `grading.py` runs the
project's own checks on it: the learner's function against tinysqueeze's on several shapes, its
backward against centred finite differences (evaluation/gradcheck.py), and, for the common mistakes,
what is probably wrong. `your_layers.py` puts a learner's passing layers into a SqueezeNet, so that
`train --layers assignments` trains a network made of them.
"""


class NotWrittenYet(NotImplementedError):
    """Raised by an assignment's TODO: the learner has not written this function yet."""

    def __init__(self, what: str):
        super().__init__(f"{what} is not written yet")
        self.what = what
