"""The lessons' pictures are drawn from the running code."""
import numpy as np
from PIL import Image

from tinysqueeze.evaluation import pictures
from tinysqueeze.datasets import SYNTHETIC_CLASSES, make_synthetic


def test_montage_filters_and_im2col_pictures_are_drawn(tmp_path, monkeypatch):
    images, labels = make_synthetic(30, 32, seed=0)
    montage = pictures.class_montage(images, labels, list(SYNTHETIC_CLASSES), tmp_path / "m.png", per_class=2)
    filters = pictures.filter_grid({"a": np.random.default_rng(0).normal(size=(16, 3, 3, 3))}, tmp_path / "f.png")
    calls = []
    from tinysqueeze.nn import kernels
    from tinysqueeze.nn.fast import numba_kernels
    monkeypatch.setattr(kernels, "im2col_numpy", lambda *a: calls.append(a) or numba_kernels.im2col_numba(*a))
    unfold = pictures.im2col_picture(tmp_path / "i.png")
    assert calls and calls[0][1:] == (3, 3, 1, 0, 2, 2)          # the picture shows what im2col computes
    for path in (montage, filters, unfold):
        with Image.open(path) as im:
            assert im.size[0] > 200 and im.size[1] > 200


def test_several_runs_are_drawn_on_one_picture(tmp_path):
    from tinysqueeze.evaluation.plots import plot_runs
    rows = [{"epoch": e, "val_top1": 0.1 * e, "val_top5": 0.2 * e, "train_loss": 2.0 / e, "val_loss": 2.1 / e}
            for e in (1, 2, 3)]
    plot_runs({"squeezenet": [rows, rows[:1]], "alexnet": [rows[:2]]}, tmp_path / "both.png", "two models")
    assert (tmp_path / "both.png").stat().st_size > 1000
