"""The vital signs of training's first steps: update ratios and live classes."""
import numpy as np

from tinysqueeze import nn
from tinysqueeze.cli import main
from tinysqueeze.training.diagnose import dead_classes, trace_steps
from tinysqueeze.optim import SGD, named_layer_groups
from tinysqueeze.evaluation.evaluate import final_relu

from ..conftest import tiny_argv


class LinearThenReLU(nn.Module):
    """x (N, 2) -> ReLU(x W^T + b), with the ReLU where SqueezeNet's conv10 has its own."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 3)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.fc(x))

    def backward(self, dout):
        return self.fc.backward(self.relu.backward(dout))


def test_update_ratio_and_live_classes_by_hand():
    model = LinearThenReLU()
    model.fc.weight.data = np.array([[3.0, 0.0], [0.0, 4.0], [-1.0, -1.0]])
    model.fc.bias.data = np.array([0.0, 0.0, -5.0])          # class 2 scores max(-x1 - x2 - 5, 0) = 0
    x, y = np.array([[1.0, 1.0]]), np.array([0])
    records = trace_steps(model, SGD(model.parameters(), lr=0.1, momentum=0.0), iter([(x, y)]), 1)
    # logits [3, 4, 0]: p = softmax; dlogits = p - onehot(0); class 2's ReLU passes nothing back
    p = np.exp([3.0, 4.0, 0.0]) / np.exp([3.0, 4.0, 0.0]).sum()
    d = (p - [1, 0, 0]) * [1, 1, 0]
    grad_norm = np.sqrt((d[:, None] * x).__pow__(2).sum() + (d ** 2).sum())    # dW = d x^T, db = d
    weight_norm = np.sqrt(9 + 16 + 1 + 1 + 25)
    assert np.isclose(records[0].update_ratio["fc"], 0.1 * grad_norm / weight_norm)
    np.testing.assert_array_equal(records[0].alive, [1.0, 1.0, 0.0])
    assert dead_classes(records) == [2]
    assert final_relu(model) is model.relu
    assert [name for name, _ in named_layer_groups(model)] == ["fc"]


def test_diagnose_command_prints_the_trace_and_draws_it(tmp_path, capsys):
    plot = tmp_path / "trace.png"
    assert main(["diagnose", *tiny_argv(tmp_path / "unused", synthetic_train=64, synthetic_val=10), "--steps", "4",
                 "--plot", str(plot), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "live classes" in out and "classifier.1" in out and "features.0" in out
    assert "dead classes at the end" in out and plot.is_file()
    assert not (tmp_path / "unused").exists()                 # diagnose reads data, writes no run folder


def test_a_diverging_trace_records_the_step_and_stops(capsys):
    """The loss becomes inf at step 1 (a huge rate): that step is recorded, no weight moved in it, the
    trace ends there, and `diagnose`'s table says so instead of failing."""
    from tinysqueeze.training.diagnose import format_trace

    model = LinearThenReLU()
    model.fc.weight.data = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    model.fc.bias.data = np.zeros(3)
    x, y = np.array([[1.0, 1.0]]), np.array([0])
    seen = []

    def batches():
        while True:
            seen.append(model.fc.weight.data.copy())        # the weights as each step begins
            yield x, y

    with np.errstate(all="ignore"):
        records = trace_steps(model, SGD(model.parameters(), lr=1e300, momentum=0.0), batches(), 5)
    assert len(records) == 2 and np.isfinite(records[0].loss) and not np.isfinite(records[1].loss)
    assert np.array_equal(model.fc.weight.data, seen[1])                # the diverged step moved nothing
    table = format_trace(records, 1, ["a", "b", "c"])
    assert f"the loss became {records[1].loss} at step 1: the run diverged" in table
