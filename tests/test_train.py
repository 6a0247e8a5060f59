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
