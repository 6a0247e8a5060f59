"""The command line, as a user types it."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.cli import main
from tinysqueeze.io import save_weights
from tinysqueeze.models import squeezenet1_1


def test_gradcheck_command_prints_a_table_and_passes(capsys):
    assert main(["gradcheck", "--only", "pool"]) == 0
    out = capsys.readouterr().out
    assert "MaxPool2d" in out and "AvgPool2d" in out and "pass" in out and "FAIL" not in out
    assert "0 failed" in out


def test_gradcheck_command_fails_on_unknown_layer(capsys):
    assert main(["gradcheck", "--only", "transformer"]) == 2
    assert "no gradient-check case matches" in capsys.readouterr().err


def test_summary_prints_table_1(capsys):
    assert main(["summary", "--model", "squeezenet1_0", "--image-size", "227"]) == 0
    out = capsys.readouterr().out
    assert "111x111x96" in out and "13x13x1000" in out and "1,248,424" in out and "48.9x fewer" in out


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "squeezenet1_1" in out and "alexnet" in out


def test_predict_prints_top5(tmp_path, capsys):
    model = squeezenet1_1(num_classes=6, seed=0)
    weights = save_weights(model, tmp_path / "w.npz")
    rng = np.random.default_rng(0)
    images = []
    for k, size in enumerate([(300, 260), (90, 120)]):
        path = tmp_path / f"img{k}.png"
        Image.fromarray(rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    names = tmp_path / "classes.txt"
    names.write_text("".join(f"n0{k}\tthing {k}\n" for k in range(6)))
    assert main(["predict", *images, "--weights", str(weights), "--classes", str(names)]) == 0
    out = capsys.readouterr().out
    assert out.count("thing") == 10 and "1. " in out and "5. " in out
    probs = [float(line.split("%")[0].split()[-1]) for line in out.splitlines() if "%" in line]
    assert all(0 <= p <= 100 for p in probs)


def test_predict_errors_are_clear(tmp_path, capsys):
    weights = save_weights(squeezenet1_1(num_classes=3), tmp_path / "w.npz")
    assert main(["predict", str(tmp_path / "nope.jpg"), "--weights", str(weights)]) == 2
    assert "no image file" in capsys.readouterr().err
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    assert main(["predict", str(bad), "--weights", str(weights)]) == 2
    assert "cannot read image" in capsys.readouterr().err
    assert main(["predict", str(bad), "--weights", str(weights), "--model", "alexnet"]) == 2
    assert "missing keys" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "summary", "--model", "nonexistent"],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "known models" in result.stderr
    with pytest.raises(SystemExit):
        main(["summary", "--image-size", "-3"])
