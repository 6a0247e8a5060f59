"""Optimisers, schedules, and the training loop end to end on a tiny synthetic set."""
import csv
import json

import numpy as np
import pytest

from tinysqueeze import nn
from tinysqueeze.checkpoint import load_checkpoint
from tinysqueeze.cli import main
from tinysqueeze.io import load_weights
from tinysqueeze.optim import SGD, Adam, learning_rate
from tinysqueeze.train import Trainer, TrainConfig, TrainingDiverged, topk_correct


def param(values, grad):
    p = nn.Parameter(np.array(values, dtype=np.float64))
    p.grad = np.array(grad, dtype=np.float64)
    return p


def test_sgd_momentum_and_weight_decay_follow_pytorch():
    p = param([1.0, -2.0], [0.5, 0.5])
    opt = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    opt.step()                      # buf = g + wd w = [0.51, 0.48]
    np.testing.assert_allclose(p.data, [1 - 0.051, -2 - 0.048])
    opt.step()                      # buf = 0.9 buf + g + wd w
    buf = 0.9 * np.array([0.51, 0.48]) + np.array([0.5, 0.5]) + 0.01 * np.array([0.949, -2.048])
    np.testing.assert_allclose(p.data, np.array([0.949, -2.048]) - 0.1 * buf)
    state = opt.state_dict()
    other = SGD([param([0.0, 0.0], [0.0, 0.0])], lr=0.1)
    other.load_state_dict(state)
    np.testing.assert_allclose(other.buffers[0], buf)
    with pytest.raises(ValueError, match="learning rate must be a positive"):
        SGD([p], lr=0)


def test_adam_first_step_moves_each_weight_by_lr():
    p = param([1.0, 1.0, 1.0], [1e-2, -3.0, 50.0])
    Adam([p], lr=0.01).step()
    np.testing.assert_allclose(p.data, [0.99, 1.01, 0.99], rtol=1e-6)  # scale-free: that is the point


def test_learning_rate_schedules():
    assert learning_rate(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert learning_rate(9, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert learning_rate(55, 100, 1.0, warmup_steps=10, schedule="poly") == pytest.approx(0.5)
    assert learning_rate(55, 100, 1.0, warmup_steps=10, schedule="cosine") == pytest.approx(0.5)
    assert learning_rate(99, 100, 1.0, schedule="constant") == 1.0
    assert learning_rate(100, 100, 1.0) == 0.0
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rate(0, 10, 1.0, schedule="step")


def test_topk():
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.05]])
    assert topk_correct(logits, np.array([1, 2]), 1) == 1
    assert topk_correct(logits, np.array([1, 2]), 2) == 1
    assert topk_correct(logits, np.array([1, 2]), 5) == 2


def tiny_config(out, **kw):
    base = dict(model="squeezenet1_1", data="synthetic", image_size=32, epochs=2, batch_size=16,
                synthetic_train=48, synthetic_val=20, out=str(out), warmup_epochs=0.5, lr=1e-3)
    base.update(kw)
    return TrainConfig(**base)


def test_a_run_writes_its_folder(tmp_path):
    rows = Trainer(tiny_config(tmp_path / "run"), progress=False).run()
    assert [r["epoch"] for r in rows] == [1, 2]
    run = tmp_path / "run"
    for name in ("config.json", "metrics.csv", "curves.png", "last.npz", "best.npz"):
        assert (run / name).is_file(), name
    with open(run / "metrics.csv") as f:
        header = next(csv.reader(f))
    assert {"epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "images_per_s",
            "seconds"} <= set(header)
    state, optim, meta = load_checkpoint(run / "last.npz")
    assert meta["epoch"] == 1 and meta["classes"][0] == "circle" and len(meta["mean"]) == 3
    assert set(state) == set(load_weights(run / "best.npz"))  # a checkpoint is a weights file too
    assert json.loads((run / "config.json").read_text())["image_size"] == 32
    with pytest.raises(ValueError, match="already holds a run"):
        Trainer(tiny_config(run), progress=False)
    with pytest.raises(ValueError, match="choose one"):
        Trainer(tiny_config(run), resume=True, overwrite=True, progress=False)
    again = Trainer(tiny_config(run, epochs=1), overwrite=True, progress=False)
    assert not (run / "last.npz").exists()  # the old run is gone only when asked
    again.run()
    assert load_checkpoint(run / "last.npz")[2]["epoch"] == 0


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_continues_exactly(tmp_path, optimizer):
    straight = Trainer(tiny_config(tmp_path / "straight", optimizer=optimizer), progress=False)
    straight.run()
    Trainer(tiny_config(tmp_path / "stopped", epochs=1, optimizer=optimizer), progress=False).run()
    resumed = Trainer(tiny_config(tmp_path / "stopped", epochs=2, optimizer=optimizer), resume=True, progress=False)
    assert resumed.start_epoch == 1
    resumed.run()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-7, err_msg=key)
    with open(tmp_path / "stopped" / "metrics.csv") as f:
        assert [row["epoch"] for row in csv.DictReader(f)] == ["1", "2"]


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    Trainer(tiny_config(tmp_path / "run", epochs=1), progress=False).run()
    good = (tmp_path / "run" / "last.npz").read_bytes()
    original = nn.SoftmaxCrossEntropy.forward
    calls = {"n": 0}

    def poisoned(self, logits, labels):
        calls["n"] += 1
        return float("nan") if calls["n"] > 1 else original(self, logits, labels)

    monkeypatch.setattr(nn.SoftmaxCrossEntropy, "forward", poisoned)
    trainer = Trainer(tiny_config(tmp_path / "run", epochs=2), resume=True, progress=False)
    with pytest.raises(TrainingDiverged, match="the loss became nan at epoch 2, batch 2.*last good epoch"):
        trainer.run()
    assert (tmp_path / "run" / "last.npz").read_bytes() == good


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="optimizer must be one of"):
        tiny_config(tmp_path, optimizer="lbfgs")
    with pytest.raises(ValueError, match="image_size at least 32"):
        Trainer(tiny_config(tmp_path, image_size=16), progress=False)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        Trainer(tiny_config(tmp_path / "nothing"), resume=True, progress=False)


def test_cli_train_evaluate_predict(tmp_path, capsys):
    out = tmp_path / "cli-run"
    code = main(["train", "--data", "synthetic", "--image-size", "32", "--epochs", "1", "--batch-size", "16",
                 "--synthetic-train", "32", "--synthetic-val", "20", "--out", str(out), "--quiet"])
    assert code == 0 and "done: val top-1" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 20 and 0 <= result["top1"] <= result["top5"] <= 1
    assert (out / "best-confusion-val.png").is_file()
    from PIL import Image
    from tinysqueeze.datasets import make_synthetic
    images, labels = make_synthetic(10, 48, seed=5)
    path = tmp_path / "shape.png"
    Image.fromarray(images[0].transpose(1, 2, 0)).save(path)
    assert main(["predict", str(path), "--checkpoint", str(out / "best.npz")]) == 0
    printed = capsys.readouterr().out
    assert "1. " in printed and any(name in printed for name in ("circle", "square", "star", "ring"))
    tsq = tmp_path / "small.tsq"
    assert main(["compress", "--checkpoint", str(out / "best.npz"), "--density", "0.5", "--bits", "4",
                 "--finetune-epochs", "1", "--out", str(tsq)]) == 0
    printed = capsys.readouterr().out
    assert "uncompressed" in printed and "centroids fine-tuned" in printed and tsq.is_file()
    assert main(["evaluate", "--checkpoint", str(out / "best.npz"), "--json"]) == 0  # the original is untouched


# --- Training learns: the default recipe, on fixed data, with nothing random left to help it ---

def fixed_batch(n=32, size=32, seed=0):
    """n synthetic images with their labels, centre-cropped and normalised: no augmentation."""
    from tinysqueeze.datasets import DataLoader, channel_stats, load_split
    data = load_split("synthetic", "train", size, seed=seed, synthetic_sizes=(n, 10), progress=False)
    mean, std = channel_stats(data.images)
    return next(DataLoader(data, n, size, False, mean, std).batches(0))


def default_recipe_model(x, seed=0):
    """squeezenet1_1 without dropout, started and optimised exactly as `train` does by default."""
    from tinysqueeze.models import squeezenet1_1
    from tinysqueeze.optim import make_optimizer
    from tinysqueeze.train import RECIPES, skip_image_gradient
    config = TrainConfig()
    recipe = RECIPES[config.optimizer]
    model = squeezenet1_1(num_classes=10, dropout=0.0, seed=seed)
    skip_image_gradient(model)
    model.start_classes_alive(x, config.class_margin)
    optimizer = make_optimizer(config.optimizer, model, recipe["lr"], config.momentum, recipe["weight_decay"])
    return model, optimizer, recipe["lr"]


@pytest.mark.parametrize("seed", [0, 1])
def test_the_default_recipe_overfits_32_images(seed):
    """CS231n's first sanity check: a network that cannot memorise 32 images cannot learn anything.
    Measured: 39 to 66 steps on seeds 0-3; torchvision's start with the paper's plain SGD never gets
    there (its classes die), nor does the layer-wise SGD without the class margin."""
    x, y = fixed_batch(seed=seed)
    model, optimizer, lr = default_recipe_model(x, seed)
    loss_fn = nn.SoftmaxCrossEntropy()
    accuracy = 0.0
    for step in range(200):
        optimizer.lr = learning_rate(step, 10**6, lr, warmup_steps=10, schedule="constant")
        optimizer.zero_grad()
        logits = model(x)
        loss = loss_fn(logits, y)
        accuracy = float((logits.argmax(axis=1) == y).mean())
        if accuracy == 1.0:
            break
        model.backward(loss_fn.backward())
        optimizer.step()
    assert accuracy == 1.0, f"train accuracy {accuracy:.0%} after 200 steps (loss {loss:.3f})"


def test_a_few_steps_move_every_parameter_and_lower_the_loss():
    x, y = fixed_batch(n=16)
    model, optimizer, lr = default_recipe_model(x)
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    loss_fn = nn.SoftmaxCrossEntropy()
    losses = []
    for step in range(6):
        optimizer.lr = lr
        optimizer.zero_grad()
        losses.append(loss_fn(model(x), y))
        model.backward(loss_fn.backward())
        optimizer.step()
    losses.append(loss_fn(model(x), y))
    unmoved = [name for name, p in model.named_parameters() if np.array_equal(p.data, before[name])]
    assert unmoved == []
    assert losses[-1] < losses[0] - 0.05, losses


def test_evaluate_is_the_same_whether_the_model_was_left_in_train_or_eval_mode():
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.models import squeezenet1_1
    from tinysqueeze.train import evaluate
    x_uint8 = np.random.default_rng(0).integers(0, 256, size=(20, 3, 36, 36), dtype=np.uint8)
    data = ArrayDataset(x_uint8, np.arange(20) % 4, ["a", "b", "c", "d"], "random")
    loader = DataLoader(data, 8, 32, False, (0.5,) * 3, (0.25,) * 3)
    model = squeezenet1_1(num_classes=4, seed=0)
    model.classifier[1].bias.data[:] = 0.5      # every class alive, so dropout would change the logits
    left_in_eval = evaluate(model.eval(), loader, 4)
    left_in_train = evaluate(model.train(), loader, 4)
    assert left_in_train["loss"] == left_in_eval["loss"]
    np.testing.assert_array_equal(left_in_train["confusion"], left_in_eval["confusion"])


def test_evaluate_reports_recall_per_class_and_silent_classes():
    from tinysqueeze.datasets import ArrayDataset, DataLoader
    from tinysqueeze.train import evaluate

    class FixedScores(nn.Module):
        """Scores: class 0 for images 0-3, class 1 for images 4-5, class 2 never above zero."""
        def forward(self, x):
            index = np.rint(x[:, 0, 0, 0] * 255).astype(int)     # the image's number, planted below
            logits = np.zeros((len(x), 3))
            logits[index < 4, 0] = 1.0
            logits[index >= 4, 1] = 1.0
            return logits

    images = np.zeros((6, 3, 4, 4), dtype=np.uint8)
    images[:, 0, 0, 0] = np.arange(6)                         # normalised (mean 0, std 1) to i / 255
    labels = np.array([0, 0, 1, 2, 1, 2])
    loader = DataLoader(ArrayDataset(images, labels, ["a", "b", "c"], "planted"), 6, 4, False, (0, 0, 0),
                        (1, 1, 1))
    result = evaluate(FixedScores(), loader, 3)
    # by hand: class a: images 0, 1 -> predicted a, a (2/2); class b: images 2 (-> a), 4 (-> b): 1/2;
    # class c: images 3 (-> a), 5 (-> b): 0/2. Class c's score is 0 on every image: silent.
    np.testing.assert_allclose(result["recall"], [1.0, 0.5, 0.0])
    assert list(result["silent"]) == [2]


def test_lars_moves_each_layer_by_lr_times_its_own_size():
    from tinysqueeze.optim import LARS
    big = param([3.0, 4.0], [0.0, 10.0])          # ||w|| = 5, ||g|| = 10
    small = param([0.03, 0.04], [6.0, 8.0])       # ||w|| = 0.05, ||g|| = 10
    opt = LARS([[big], [small]], lr=0.01, momentum=0.9)
    opt.step()
    # first step: w -= lr * ||w|| / ||g|| * g, by hand: big moves 0.01 * 0.5 * [0, 10] = [0, 0.05];
    # small moves 0.01 * 0.005 * [6, 8] = [3e-4, 4e-4]: each by 1% of its own norm.
    np.testing.assert_allclose(big.data, [3.0, 3.95])
    np.testing.assert_allclose(small.data, [0.0297, 0.0396])
    opt.step()   # second step: buf = 0.9 buf + lr * local * g, local from the moved weights
    local = np.sqrt(3.0 ** 2 + 3.95 ** 2) / 10
    np.testing.assert_allclose(big.data, [3.0, 3.95 - (0.9 * 0.05 + 0.01 * local * 10)])
    decayed = LARS([[param([3.0, 4.0], [0.0, 10.0])]], lr=0.01, momentum=0.9, weight_decay=0.1)
    decayed.step()  # local = 5 / (10 + 0.1 * 5); g + wd w = [0.3, 10.4]
    np.testing.assert_allclose(decayed.params[0].data, [3.0 - 0.01 * 5 / 10.5 * 0.3, 4.0 - 0.01 * 5 / 10.5 * 10.4])


def healthy_then(tmp_path, kill_classes):
    """A tiny run in which `kill_classes` are dead from the start: their conv10 rows are zero and
    their bias -1, so their score is max(-1, 0) = 0 on every image and no gradient reaches them."""
    trainer = Trainer(tiny_config(tmp_path / "run", epochs=2), progress=False)
    conv10 = trainer.model.classifier[1]
    conv10.weight.data[kill_classes] = 0.0
    conv10.bias.data[kill_classes] = -1.0
    return trainer


def test_a_dead_network_stops_the_run_and_says_why(tmp_path):
    trainer = healthy_then(tmp_path, slice(None))
    with pytest.raises(TrainingDiverged, match=r"the network is dead: in epoch 1, every class score was exactly 0 "
                                               r"on all 48 training images.*ln\(10\) = 2.30259.*lower --lr"):
        trainer.run()
    assert read_rows(tmp_path / "run")[0]["silent_classes"] == "10"       # the epoch's row is kept


def test_dead_classes_are_named_and_the_run_goes_on(tmp_path, capsys):
    trainer = healthy_then(tmp_path, [2, 4])
    trainer.run()
    err = capsys.readouterr().err
    assert "2 of 10 classes never scored above 0" in err and "triangle" in err and "ring" in err
    assert [r["silent_classes"] for r in read_rows(tmp_path / "run")] == ["2", "2"]


def test_a_healthy_run_raises_no_alarm(tmp_path, capsys):
    Trainer(tiny_config(tmp_path / "run", epochs=2), progress=False).run()
    assert "never scored above 0" not in capsys.readouterr().err
    assert [r["silent_classes"] for r in read_rows(tmp_path / "run")] == ["0", "0"]


def read_rows(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))
