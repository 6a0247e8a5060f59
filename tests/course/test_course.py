"""The course's assignments and their grader (tinysqueeze/course/).

Three promises, each attacked: the reference implementations (tinysqueeze's own layers, and the
worked solutions in tests/fixtures/solutions/) pass every check; the untouched starting files fail
with "not written yet"; and each common mistake, put into a worked solution, fails with its
diagnosis.
"""
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

from tinysqueeze.course.assignments import ASSIGNMENTS, STUBS, grade, report_text
from tinysqueeze.course.grading import hint_for_error

SOLUTIONS = Path(__file__).parents[1] / "fixtures" / "solutions"
NAMES = [a.name for a in ASSIGNMENTS]

# Each assignment's file written with tinysqueeze's own code: the reference must pass its own grader.
TINYSQUEEZE_ITSELF = {
    "value": "from tinysqueeze.nn.scalar import Value",
    "linear": "from tinysqueeze.nn import Linear",
    "conv": "from tinysqueeze.nn import Conv2d\n"
            "from tinysqueeze.nn.kernels import col2im_numpy as col2im, im2col_numpy as im2col",
    "pooling": "from tinysqueeze.nn import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d",
    "relu_dropout_concat": "from tinysqueeze.nn import Concat, Dropout, ReLU",
    "loss": "from tinysqueeze.nn import SoftmaxCrossEntropy",
    "gradcheck": "import numpy as np\n"
                 "from tinysqueeze.evaluation.gradcheck import rel_error, numeric_gradient as by_index\n"
                 "def numeric_gradient(f, x, eps=1e-6):\n"
                 "    return by_index(f, x, np.arange(x.size), eps).reshape(x.shape)",
    "step": "from tinysqueeze.optim.step import train_step",
    "fire": "from tinysqueeze.models import Fire",
    "sgd": "from tinysqueeze.optim import SGD",
}


def test_every_assignment_has_a_starting_file_a_solution_and_a_lesson():
    root = Path(__file__).parents[2]
    assert sorted(p.stem for p in STUBS.glob("*.py")) == sorted(NAMES)
    assert sorted(p.stem for p in SOLUTIONS.glob("*.py")) == sorted(NAMES)
    assert set(TINYSQUEEZE_ITSELF) == set(NAMES)
    for task in ASSIGNMENTS:
        lesson = root / "lessons" / task.lesson_file
        assert lesson.is_file(), task.lesson_file
        assert f"check {task.name}" in lesson.read_text(), f"{task.lesson_file} does not name its assignment's command"


@pytest.mark.parametrize("name", NAMES)
def test_tinysqueeze_own_code_passes_every_check(name, tmp_path):
    path = tmp_path / f"{name}.py"
    path.write_text(TINYSQUEEZE_ITSELF[name] + "\n")
    parts = grade(name, path)
    assert parts and all(p.status == "pass" for p in parts), report_text(name, path)


@pytest.mark.parametrize("name", NAMES)
def test_worked_solutions_pass_every_check(name):
    parts = grade(name, SOLUTIONS / f"{name}.py")
    assert parts and all(p.status == "pass" for p in parts), report_text(name, SOLUTIONS / f"{name}.py")


@pytest.mark.parametrize("name", NAMES)
def test_untouched_starting_files_fail_with_not_written_yet(name):
    parts = grade(name, STUBS / f"{name}.py")
    assert parts[0].status == "not written yet"
    assert {p.status for p in parts} <= {"not written yet", "not tried"}
    assert "not written yet" in report_text(name, STUBS / f"{name}.py")


# (assignment, [(text in the worked solution, the mistake put in its place)], part that must fail,
#  words its diagnosis must contain)
MISTAKES = [
    ("value", [("            self.grad += out.grad\n", "            self.grad = out.grad\n")],
     "Value.__add__'s _backward", "assigned"),
    ("value", [("            self.grad += other.data * out.grad", "            self.grad += self.data * out.grad"),
               ("            other.grad += self.data * out.grad", "            other.grad += other.data * out.grad")],
     "Value.__mul__'s _backward", "swapped"),
    ("value", [("        for node in reversed(topological_order(self)):", "        for node in topological_order(self):")],
     "Value.backward", "REVERSE"),
    ("value", [("        self.grad = 1.0\n", "")], "Value.backward", "= 1"),
    ("linear", [("self.weight.grad += dout.T @ x", "self.weight.grad += x.T @ dout")],
     "Linear.backward: dx", "transpose"),
    ("linear", [("self.weight.grad += dout.T @ x", "self.weight.grad = dout.T @ x")],
     "Linear.backward: dweight", "must ADD"),
    ("linear", [("self.bias.grad += dout.sum(axis=0)", "self.bias.grad += dout.mean(axis=0)")],
     "Linear.backward: dbias", "summed"),
    ("linear", [("self.bias.grad += dout.sum(axis=0)", "self.bias.grad = self.bias.grad + dout")],
     "Linear.backward: dbias", "batch axis"),
    ("conv", [("] += d[:, :, i, j]", "] = d[:, :, i, j]")], "col2im", "`+=`"),
    ("conv", [("return dxp[:, :, padding : padding + h, padding : padding + w]", "return dxp")],
     "col2im", "cut `padding`"),
    ("conv", [(".sum(axis=0).reshape(self.weight.data.shape)", "[0].reshape(self.weight.data.shape)")],
     "Conv2d.backward: dweight", "sum over the batch"),
    ("conv", [("xp[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]",
               "xp[:, :, i : i + h_out, j : j + w_out]")], "im2col", "stride"),
    ("pooling", [("dxp[:, :, i : i + s * h_out : s, j : j + s * w_out : s] += dout * (winner",
                  "dxp[:, :, i : i + s * h_out : s, j : j + s * w_out : s] = dout * (winner")],
     "MaxPool2d.backward: dx", "overlap"),
    ("pooling", [("constant_values=-np.inf", "constant_values=0")], "MaxPool2d.forward", "-inf"),
    ("pooling", [("        return out / (kh * kw)", "        return out")], "AvgPool2d.forward", "divide by KH*KW"),
    ("relu_dropout_concat", [("        self.cache = y > 0\n", "        self.cache = y >= 0\n")],
     "ReLU.backward: dx", "`y >= 0`"),
    ("relu_dropout_concat", [("        y = np.maximum(x, 0, out=x if self.inplace else None)\n        self.cache = y > 0\n",
                              "        self.cache = x\n        y = np.maximum(x, 0, out=x if self.inplace else None)\n"),
                             ("        return dout * self.cache\n\n\nclass Dropout",
                              "        dx = dout.copy()\n        dx[self.cache < 0] = 0\n        return dx\n\n\nclass Dropout")],
     "ReLU.backward: dx", "written over x"),
    ("relu_dropout_concat", [("        return dout * self.cache\n\n\nclass Dropout",
                              "        dout[~self.cache] = 0\n        return dout\n\n\nclass Dropout")],
     "ReLU.backward: dx", "changed `dout` in place"),
    ("relu_dropout_concat", [("        self.cache = keep / (1 - self.p)", "        self.cache = keep * 1.0")],
     "Dropout.forward", "(1 - p)"),
    ("relu_dropout_concat", [("        if not self.training or self.p == 0:", "        if self.p == 0:")],
     "Dropout.forward", "eval"),
    ("loss", [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")],
     "SoftmaxCrossEntropy.forward", "maximum"),
    ("loss", [("return dlogits * dout / n", "return dlogits * dout")], "SoftmaxCrossEntropy.backward: dx", "MEAN"),
    ("gradcheck", [("        flat[i] = original - eps\n", "        flat[i] = original\n"),
                   ("(plus - minus) / (2 * eps)", "(plus - minus) / eps")], "numeric_gradient", "one-sided"),
    ("gradcheck", [("(plus - minus) / (2 * eps)", "(plus - minus) / eps")], "numeric_gradient", "divided by eps"),
    ("gradcheck", [("        flat[i] = original\n        flat_grad", "        flat_grad")], "numeric_gradient", "back"),
    ("step", [("    optimizer.zero_grad()\n", "")], "train_step: the weights after each step", "zero_grad"),
    ("step", [("    optimizer.step()\n", "")], "train_step: the weights after each step", "optimizer.step()"),
    ("fire", [("        ds = ds + self.expand3x3", "        ds = self.expand3x3")],
     "Fire.backward: dsqueeze.weight", "SUM"),
    ("fire", [("            dx = dx + dout\n", "            dx = dx\n")], "Fire.backward: dx", "bypass"),
    ("sgd", [("self.buffers[k] = self.momentum * self.buffers[k] + g",
              "self.buffers[k] = self.momentum * self.buffers[k] + (1 - self.momentum) * g")], "SGD.step", "right without momentum"),
    ("sgd", [("g = p.grad + self.weight_decay * p.data", "g = p.grad")], "SGD.step", "right without weight decay"),
    # found by a newcomer trying the assignments
    ("sgd", [("g = p.grad + self.weight_decay * p.data",
              "g = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad"),
             ("self.buffers[k] = g.copy()", "self.buffers[k] = g")], "SGD.step", "COPY"),
    ("conv", [("class Conv2d(nn.Conv2d):", "class Conv2d:")], "Conv2d.forward", "keep the starting file's"),
    ("relu_dropout_concat", [("class ReLU(nn.ReLU):", "class ReLU:")], "ReLU.forward", "keep the starting file's"),
    ("linear", [("        return out\n", "        return out.tolist()\n")], "Linear.forward", "NumPy arrays"),
    ("linear", [("            out = out + self.bias.data\n", "            pass\n")], "Linear.forward", "bias"),
    ("loss", [("return dlogits * dout / n", "return dlogits / n")], "SoftmaxCrossEntropy.backward: dx",
     "multiply by dout"),
    ("value", [("(self.data > 0) * out.grad", "(self.data >= 0) * out.grad")], "Value.relu's _backward", "at 0 too"),
    ("conv", [("np.matmul(dy, cols.transpose(0, 2, 1))", "np.matmul(cols, dy.transpose(0, 2, 1))")],
     "Conv2d.backward: dweight", "transposed"),
    ("fire", [("out = self.concat([e1, e3])", "out = self.concat([e3, e1])")], "Fire.forward", "wrong order"),
    ("step", [("    return loss, logits", "    return logits, loss")], "train_step: loss and logits", "(loss, logits)"),
    ("gradcheck", [("flat, flat_grad = x.reshape(-1), grad.reshape(-1)", "flat, flat_grad = x.flatten(), grad.reshape(-1)")],
     "numeric_gradient", "copies"),
    ("pooling", [("better = tap > best", "better = tap >= best")], "MaxPool2d.backward: dx", "compare with > (strictly)"),
    ("relu_dropout_concat", [("y = np.maximum(x, 0, out=x if self.inplace else None)", "y = np.maximum(x, 0)")],
     "ReLU.forward", "write y over x"),
    # wrong or missing diagnoses found by a newcomer (issue 33)
    ("conv", [("return dxp[:, :, padding : padding + h, padding : padding + w]", "return dxp[:, :, :h, :w]")],
     "col2im", "not dxp[:, :, :h, :w]"),
    ("conv", [("    return dxp[:, :, padding : padding + h, padding : padding + w]",
               "    p = padding\n    dx = dxp[:, :, p : p + h, p : p + w].copy()\n    if p:\n"
               "        dx[:, :, 0, :] += dxp[:, :, :p, p : p + w].sum(axis=2)\n"
               "        dx[:, :, -1, :] += dxp[:, :, p + h :, p : p + w].sum(axis=2)\n"
               "        dx[:, :, :, 0] += dxp[:, :, p : p + h, :p].sum(axis=3)\n"
               "        dx[:, :, :, -1] += dxp[:, :, p : p + h, p + w :].sum(axis=3)\n    return dx")],
     "col2im", "added onto the edge pixels"),
    ("loss", [("shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits")],
     "SoftmaxCrossEntropy.backward: dx", "SoftmaxCrossEntropy.forward fails"),
    ("relu_dropout_concat", [("y = np.maximum(x, 0, out=x if self.inplace else None)", "y = np.maximum(x, 0, out=x)")],
     "ReLU.backward: dx", "ReLU.forward fails (changed its input x in place"),
    ("relu_dropout_concat", [("y = np.maximum(x, 0, out=x if self.inplace else None)", "y = np.maximum(x, 0, out=x)")],
     "ReLU.forward", "only with inplace=True"),
    ("pooling", [("+= dout * (winner == i * kw + j)", "+= dout * (xp[:, :, i : i + s * h_out : s, j : j + s * w_out : s] "
                                                      "== best)"),
                 ("self.cache = (x.shape, winner, bottom, right)", "self.cache = (x.shape, winner, bottom, right, xp, best)"),
                 ("(n, c, h, w), winner, bottom, right = self.cache",
                  "(n, c, h, w), winner, bottom, right, xp, best = self.cache")],
     "MaxPool2d.backward: dx", "every maximum"),
    ("linear", [("return dout @ self.weight.data", "return dout @ self.weight.data.T")],
     "Linear.backward: dx", "yours is dout @ W.T"),
    ("relu_dropout_concat", [("keep = self.rng.random(x.shape) >= self.p", "keep = self.rng.random(x.shape) < 1 - self.p")],
     "Dropout.forward", "keeps exactly what should be dropped"),
    ("relu_dropout_concat", [("keep = self.rng.random(x.shape) >= self.p", "keep = self.rng.random(x.shape) < 1 - self.p")],
     "Dropout.backward: dx", "Dropout.forward fails"),
]


def with_mistake(name, changes, folder):
    """The worked solution of `name` with `changes` made, written to folder/<name>.py."""
    source = (SOLUTIONS / f"{name}.py").read_text()
    for old, new in changes:
        assert old in source, f"the worked solution no longer contains {old!r}"
        source = source.replace(old, new, 1)
    path = Path(folder) / f"{name}.py"
    path.write_text(source)
    return path


@pytest.mark.filterwarnings("ignore::RuntimeWarning")          # a naive exp overflows, on purpose
@pytest.mark.parametrize("name, changes, part_name, diagnosis", MISTAKES,
                         ids=[f"{m[0]}-{k}" for k, m in enumerate(MISTAKES)])
def test_each_common_mistake_fails_with_its_diagnosis(name, changes, part_name, diagnosis, tmp_path):
    path = with_mistake(name, changes, tmp_path)
    parts = {p.name: p for p in grade(name, path)}
    part = parts[part_name]
    assert part.status == "FAIL", report_text(name, path)
    assert diagnosis in part.hint, report_text(name, path)


# Mistakes with one symptom, whose one hint names both causes: the ReLU mask all True, from `y >= 0`
# or from a test of x after an inplace forward has written over it; SGD right only without momentum,
# from a damped buffer or from a buffer that is p.grad itself.
ONE_HINT_FOR_BOTH = [{"`y >= 0`", "written over x"}, {"right without momentum", "COPY"}]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_no_diagnosis_names_another_mistake_of_the_same_part(tmp_path):
    """A hint naming the wrong cause is worse than none: each mistake's hint must not contain the
    diagnosis of any other mistake graded on the same part."""
    hints = {}
    for k, (name, changes, part_name, diagnosis) in enumerate(MISTAKES):
        folder = tmp_path / str(k)
        folder.mkdir()
        parts = {p.name: p for p in grade(name, with_mistake(name, changes, folder))}
        hints[k] = parts[part_name].hint
    wrong = [(MISTAKES[k][1][0][1].strip()[:60], MISTAKES[j][3], hints[k])
             for k in hints for j in hints
             if j != k and MISTAKES[j][2] == MISTAKES[k][2] and MISTAKES[j][3] in hints[k]
             and {MISTAKES[j][3], MISTAKES[k][3]} not in ONE_HINT_FOR_BOTH]
    assert not wrong, "\n".join(f"{mistake!r} is told {other!r}: {hint}" for mistake, other, hint in wrong)


def test_a_product_whose_shapes_do_not_chain_is_told_how_they_must():
    try:
        np.ones((3, 4)) @ np.ones((7, 4))
    except ValueError as error:
        assert "a's last axis must be b's first" in hint_for_error(str(error))
    assert hint_for_error("something else went wrong") == ""


# ------------------------------------------------------------------ a SqueezeNet of your own layers
def test_a_squeezenet_of_your_layers_computes_exactly_what_tinysqueeze_does():
    """The worked solutions put into a SqueezeNet (float64): the same layers by name, the same
    state_dict, and three training steps give tinysqueeze's losses and weights to rounding."""
    import numpy as np

    from tinysqueeze import nn
    from tinysqueeze.course.your_layers import with_your_layers, your_classes
    from tinysqueeze.models import get_model
    from tinysqueeze.optim import SGD, train_step

    classes = your_classes(SOLUTIONS)
    assert {"Conv2d", "MaxPool2d", "ReLU", "Dropout", "Concat", "Fire", "AdaptiveAvgPool2d",
            "SoftmaxCrossEntropy", "SGD"} <= set(classes)
    ours = get_model("squeezenet1_1", num_classes=4, seed=3, image_grad=False).to(np.float64)
    yours = with_your_layers(get_model("squeezenet1_1", num_classes=4, seed=3, image_grad=False, fast=False)
                             .to(np.float64), classes)
    kinds = {type(m).__name__: type(m) for _, m in yours.named_modules()}
    for name in ("Conv2d", "MaxPool2d", "ReLU", "Dropout", "Concat", "Fire"):
        assert kinds[name] is classes[name], f"the model still runs tinysqueeze's {name}"
    assert not any("CNHW" in type(m).__name__ for _, m in yours.named_modules())
    assert list(yours.state_dict()) == list(ours.state_dict())
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((3, 3, 32, 32)), np.array([0, 3, 1])
    opt_ours, opt_yours = SGD(ours.parameters(), 0.01), classes["SGD"](yours.parameters(), 0.01)
    loss_ours, loss_yours = nn.SoftmaxCrossEntropy(), classes["SoftmaxCrossEntropy"]()
    for _ in range(3):
        a, _ = train_step(ours, loss_ours, opt_ours, x, y)
        b, _ = train_step(yours, loss_yours, opt_yours, x, y)
        assert abs(a - b) < 1e-10 * abs(a)
    for (name, p), q in zip(ours.named_parameters(), yours.parameters()):
        assert np.allclose(p.data, q.data, rtol=1e-9, atol=1e-12), name
    with pytest.raises(ValueError, match="features is a fast layer.*fast=False"):
        with_your_layers(get_model("squeezenet1_1", num_classes=4), classes)      # (C, N, H, W) inside: refused


def test_train_refuses_layers_that_do_not_pass_their_checks(tmp_path, capsys):
    from tinysqueeze.cli import main
    from ..conftest import tiny_argv

    folder = tmp_path / "assignments"
    shutil.copytree(SOLUTIONS, folder)
    shutil.copyfile(STUBS / "conv.py", folder / "conv.py")          # one assignment not written yet
    (folder / "fire.py").unlink()                                     # one missing
    assert main(["train", *tiny_argv(tmp_path / "run"), "--layers", str(folder), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert "conv.py does not pass yet" in error and "fire.py is missing" in error
    assert not (tmp_path / "run" / "last.npz").exists()
    # the command it names grades the folder given, not assignments/: it fails, and on conv.py
    command = re.search(r"python -m tinysqueeze (check conv --folder \S+) says why", error).group(1)
    assert main(shlex.split(command)) == 1
    assert "not written yet" in capsys.readouterr().out


@pytest.mark.slow
def test_train_with_your_layers_learns_and_its_checkpoint_is_tinysqueezes(tmp_path, capsys):
    """`train --layers`: the run learns (the loss falls; the synthetic classes are easy), and its
    checkpoint is an ordinary one: `evaluate` reads it with tinysqueeze's own layers."""
    import csv
    import json

    from tinysqueeze.cli import main
    from ..conftest import tiny_argv

    out = tmp_path / "run"
    assert main(["train", *tiny_argv(out, epochs=3, synthetic_train=96), "--layers", str(SOLUTIONS), "--quiet"]) == 0
    assert json.loads((out / "config.json").read_text())["layers"] == str(SOLUTIONS)
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert main(["evaluate", "--checkpoint", str(out / "best.npz")]) == 0


def test_check_command_writes_the_starting_files_then_grades(tmp_path, monkeypatch, capsys):
    from tinysqueeze.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["check", "conv"]) == 1                              # the starting files: not written yet
    assert sorted(p.name for p in (tmp_path / "assignments").glob("*.py")) == sorted(f"{n}.py" for n in NAMES)
    out = capsys.readouterr()
    assert "wrote" in out.err and "not written yet" in out.out
    shutil.copyfile(SOLUTIONS / "conv.py", tmp_path / "assignments" / "conv.py")
    assert main(["check", "conv"]) == 0                              # the learner's file is never replaced
    assert "All 6 pass" in capsys.readouterr().out
    assert main(["check"]) == 1
    table = capsys.readouterr().out
    assert "conv" in table and "done" in table and "not written yet" in table
    assert main(["check", "conv", "--impl", str(SOLUTIONS / "fire.py")]) == 1      # the wrong file: named parts
    assert "defines no 'im2col'" in capsys.readouterr().out
    (tmp_path / "broken.py").write_text("def im2col(:\n")
    assert main(["check", "conv", "--impl", "broken.py"]) == 2
    assert "broken.py does not import: SyntaxError" in capsys.readouterr().err
    assert main(["check", "convolution"]) == 2
    assert "the assignments are: value, linear, conv" in capsys.readouterr().err


def test_a_class_that_is_not_the_starting_ones_stops_only_its_own_layer(tmp_path):
    """`class ReLU:` (not a subclass) fails ReLU's parts with a clear line; Dropout and Concat are still graded."""
    source = (SOLUTIONS / "relu_dropout_concat.py").read_text().replace("class ReLU(nn.ReLU):", "class ReLU:")
    (tmp_path / "relu_dropout_concat.py").write_text(source)
    parts = {p.name: p for p in grade("relu_dropout_concat", tmp_path / "relu_dropout_concat.py")}
    assert parts["ReLU.forward"].status == "FAIL" and parts["ReLU.backward: dx"].status == "not tried"
    assert parts["Dropout.forward"].status == "pass" and parts["Concat.backward: dx"].status == "pass"


def test_a_file_that_exits_is_a_clear_error_not_a_silent_pass(tmp_path):
    (tmp_path / "step.py").write_text("import sys\nsys.exit(0)\n")
    with pytest.raises(ValueError, match="does not import: SystemExit"):
        grade("step", tmp_path / "step.py")


def test_the_report_keeps_its_columns_apart_and_names_the_part_that_stopped_the_checks(tmp_path):
    """Every part line is name, status, detail with at least two spaces between (the longest status,
    'not written yet', once ran into its detail); a part not tried names the part the checks stopped
    at, one that failed or is not written, instead of 'an earlier part' (which could be below it)."""
    from tinysqueeze.course.assignments import report_text

    shutil.copyfile(STUBS / "value.py", tmp_path / "value.py")
    source = (SOLUTIONS / "relu_dropout_concat.py").read_text().replace("class ReLU(nn.ReLU):", "class ReLU:")
    (tmp_path / "relu_dropout_concat.py").write_text(source)
    for name, statuses in (("value", {"not written yet", "not tried"}), ("relu_dropout_concat", {"FAIL", "not tried"})):
        lines = [line for line in report_text(name, tmp_path / f"{name}.py").splitlines()[1:-1]
                 if not line.lstrip().startswith("probably:")]
        columns = [re.split(r"\s{2,}", line.strip()) for line in lines]
        assert all(len(c) == 3 for c in columns), lines
        assert statuses <= {c[1] for c in columns}
        stoppers = {c[0] for c in columns if c[1] in ("FAIL", "not written yet")}
        for part, status, detail in columns:
            if status == "not tried":
                stopper = re.fullmatch(r"the checks stopped at (.+) before this part was tried", detail)
                assert stopper and stopper.group(1) in stoppers, detail


def test_the_sgd_starting_file_states_the_task_not_the_code():
    """The `sgd` starting file says what the optimizer must do and whose convention it follows,
    not the update written out (it once held `buf = momentum * buf + g` and `p.data -= lr * buf`)."""
    text = (STUBS / "sgd.py").read_text()
    assert "torch.optim.SGD" in text and "momentum" in text and "weight decay" in text
    assert not re.search(r"^\s*[\w.\[\]]+\s*[-+*]?=\s*\S", text.split('class SGD')[1].split("def step")[0], re.M)


def test_the_readmes_example_report_is_what_check_prints(tmp_path):
    """The README shows the grader's report for `=` in col2im: it must be what `check` prints today."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    example = re.search(r"For example, with `=` in col2im:\n\n```\n(.*?)```", readme, re.S).group(1).splitlines()
    path = with_mistake("conv", [("] += d[:, :, i, j]", "] = d[:, :, i, j]")], tmp_path)
    printed = report_text("conv", path).splitlines()
    assert example[0] == "check conv: assignments/conv.py"
    assert example[1:] == printed[1:len(example)]


def test_a_learners_endless_loop_is_stopped_with_a_message(tmp_path, capsys):
    from tinysqueeze.course.assignments import grade

    loop = tmp_path / "linear.py"
    loop.write_text("while True:\n    pass\n")
    with pytest.raises(ValueError, match=r"still running after 0.5 s.*a loop"):
        grade("linear", loop, seconds=0.5)
    import signal
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)          # no timer left behind
