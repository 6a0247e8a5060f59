"""The command line, as a user types it."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.cli import main
from tinysqueeze.formats.weights import save_weights
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


@pytest.mark.slow
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


def test_predict_prints_the_softmax_of_the_logits(tmp_path, capsys):
    """conv10's weights zero and its biases 0..5: every image's logits are exactly [0, 1, 2, 3, 4, 5]
    (ReLU and the average pool leave a constant map alone), so the probabilities are the softmax of
    those, computed here by hand."""
    import math
    model = squeezenet1_1(num_classes=6, seed=0)
    model.classifier[1].weight.data[:] = 0.0
    model.classifier[1].bias.data[:] = np.arange(6)
    weights = save_weights(model, tmp_path / "w.npz")
    image = tmp_path / "x.png"
    Image.new("RGB", (256, 256), (10, 200, 30)).save(image)
    assert main(["predict", str(image), "--weights", str(weights)]) == 0
    printed = [line.split() for line in capsys.readouterr().out.splitlines() if "%" in line]
    total = sum(math.exp(k) for k in range(6))
    expected = [(f"{100 * math.exp(k) / total:.2f}%", f"{k}") for k in (5, 4, 3, 2, 1)]
    assert [(words[1], words[-1]) for words in printed] == expected      # "1. 63.37%  class 5"


def test_fire_concatenates_expand1x1_before_expand3x3():
    """Known values, no PyTorch: squeeze passes x through, expand1x1 doubles it, expand3x3 (centre tap
    only) triples it; the output's channels must be [2x, 3x] in that order."""
    from tinysqueeze.models.fire import Fire
    fire = Fire(1, 1, 1, 1)
    for conv, value in ((fire.squeeze, 1.0), (fire.expand1x1, 2.0)):
        conv.weight.data[:] = value
        conv.bias.data[:] = 0.0
    fire.expand3x3.weight.data[:] = 0.0
    fire.expand3x3.weight.data[0, 0, 1, 1] = 3.0
    fire.expand3x3.bias.data[:] = 0.0
    out = fire(np.full((1, 1, 3, 3), 0.5, dtype=np.float32))
    np.testing.assert_array_equal(out[0, :, 1, 1], [1.0, 1.5])
    np.testing.assert_array_equal(out[0, 0], np.full((3, 3), 1.0))


def test_predict_refuses_an_image_over_the_decompression_bomb_limit(tmp_path, capsys, monkeypatch):
    weights = save_weights(squeezenet1_1(num_classes=3), tmp_path / "w.npz")
    big = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(big)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)          # 10,000 pixels is over twice that
    assert main(["predict", str(big), "--weights", str(weights)]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and "big.png" in err and "decompression bomb" in err
