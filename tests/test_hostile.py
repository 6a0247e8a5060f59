"""Hostile files that used to give silent wrong answers (issue 23, section 3). Each is built here, given
to the command that reads it, and must be refused with one `error:` line naming the problem (exit 2,
no traceback) -- or, for the images of high bit depth, decoded to the right pixels.

Expected values come from the files' own definitions, not from tinysqueeze: a 16-bit image holds its
8-bit twin's values times 257, a palette image the palette's colours, YCbCr and HSV the textbook
formulas (ITU-R BT.601 full range as in JPEG, colorsys)."""
import colorsys
import json
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.cli import main
from tinysqueeze.datasets import transforms
from tinysqueeze.datasets.transforms import load_rgb
from tinysqueeze.formats.weights import load_weights, save_weights
from tinysqueeze.models import squeezenet1_1

from .conftest import tiny_argv
from .test_io import crafted_pth


def refused(capsys, argv, *says) -> str:
    """Runs the command: exit 2, exactly one `error:` line on stderr, containing each of `says`; no
    traceback, nothing but the error from NumPy (a ComplexWarning or RuntimeWarning is a failure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        warnings.simplefilter("error", RuntimeWarning)
        code = main(argv)
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err[-2000:]
    for text in says:
        assert text in errors[0], errors[0]
    return errors[0]


def an_image(tmp_path, name="x.png"):
    path = tmp_path / name
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


def rewrite_npz(src, dst, arrays=None, meta=None):
    """A copy of the .npz `src` at `dst` with some arrays replaced (name -> function of the array)
    and its JSON meta changed (key -> new value, or a function of the meta)."""
    with np.load(src) as data:
        out = {k: data[k] for k in data.files}
    for name, change in (arrays or {}).items():
        out[name] = change(out[name].copy())
    if meta is not None:
        doc = json.loads(bytes(out["meta"]).decode())
        doc = meta(doc) if callable(meta) else dict(doc, **meta)
        out["meta"] = np.frombuffer(json.dumps(doc).encode(), dtype=np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, **out)
    return str(dst)


def poisoned(values, nan=0, inf=0):
    """values with its first `nan` elements NaN and the next `inf` ones +/-inf."""
    flat = values.reshape(-1)
    flat[:nan] = np.nan
    flat[nan:nan + inf] = [np.inf, -np.inf] * (inf // 2) + [np.inf] * (inf % 2)
    return values


# ------------------------------------------------------------------- (a) non-finite weights
@pytest.mark.parametrize("nan, inf, says", [(3, 0, "3 NaN values"), (0, 1, "1 infinite value"),
                                            (1, 2, "1 NaN value and 2 infinite values")])
def test_predict_refuses_non_finite_weights_in_an_npz(tmp_path, capsys, nan, inf, says):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.3.expand3x3.weight"] = poisoned(state["features.3.expand3x3.weight"].copy(), nan, inf)
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(weights)],
            f"features.3.expand3x3.weight has {says}", "refusing to load non-finite weights", str(weights))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_predict_refuses_non_finite_weights_in_a_pth(tmp_path, monkeypatch, capsys, legacy):
    storage = np.array([np.nan, 1, np.inf, 2], "<f4").tobytes()
    path = crafted_pth(tmp_path, monkeypatch, {"features.0.weight": (0, (4,), (1,))}, 4, storage, legacy)
    monkeypatch.undo()                                       # the fake torch modules are gone again
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(path)],
            "features.0.weight has 1 NaN value and 1 infinite value")


def tsq_with(path, tmp_path, codebook_entry=None, bias=None):
    """A .tsq file holding a sparse features.0.weight and a raw features.0.bias, written by hand after
    the documented layout (formats/tsq.py), with a codebook entry or a bias value replaced."""
    from tinysqueeze.formats.tsq import write_tsq

    codes = np.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2) % 4
    write_tsq(path, {"model": "squeezenet1_1", "bits": 2}, {"features.0.weight": (np.array([0, 1, 2, 3], np.float32), codes)},
              {"features.0.bias": np.zeros(2, np.float32)})
    data = bytearray(path.read_bytes())
    (head_len,) = struct.unpack("<I", data[5:9])
    header = json.loads(data[9:9 + head_len])
    start = 9 + head_len                                     # the first array's codebook: 4 float32
    if codebook_entry is not None:
        data[start + 4 * codebook_entry[0]:start + 4 * codebook_entry[0] + 4] = struct.pack("<f", codebook_entry[1])
    if bias is not None:
        bias_at = start + sum(header["arrays"][0]["sizes"])
        data[bias_at:bias_at + 4] = struct.pack("<f", bias)
    data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
    path.write_bytes(bytes(data))
    return str(path)


@pytest.mark.parametrize("change, says", [
    (dict(codebook_entry=(1, float("nan"))), "features.0.weight: its codebook has 1 NaN value"),
    (dict(codebook_entry=(3, float("inf"))), "features.0.weight: its codebook has 1 infinite value"),
    (dict(codebook_entry=(0, float("nan"))), "features.0.weight: its codebook has 1 NaN value"),  # pruned weights
    (dict(bias=float("-inf")), "features.0.bias has 1 infinite value"),
])
def test_a_tsq_with_a_non_finite_codebook_is_refused(tmp_path, capsys, change, says):
    path = tsq_with(tmp_path / "x.tsq", tmp_path, **change)
    with pytest.raises(ValueError, match="refusing to load non-finite weights"):
        load_weights(path)
    refused(capsys, ["predict", an_image(tmp_path), "--weights", path], says, path)
    refused(capsys, ["compress", "--checkpoint", path, "--density", "0.5", "--bits", "2",
                     "--out", str(tmp_path / "again.tsq")], says)
    assert not (tmp_path / "again.tsq").exists()


def test_a_finite_hand_written_tsq_still_loads(tmp_path):
    state = load_weights(tsq_with(tmp_path / "x.tsq", tmp_path))
    np.testing.assert_array_equal(state["features.0.weight"].reshape(-1), np.arange(24) % 4)


def test_evaluate_and_predict_refuse_a_checkpoint_with_non_finite_weights(tiny_run, tmp_path, capsys):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                      {"model.classifier.1.weight": lambda w: poisoned(w, nan=2)})
    says = ("classifier.1.weight has 2 NaN values", "refusing to load non-finite weights", bad)
    refused(capsys, ["evaluate", "--checkpoint", bad], *says)
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], *says)


def test_compress_refuses_non_finite_weights_and_writes_nothing(tiny_run, tmp_path, capsys):
    out = tmp_path / "out.tsq"
    checkpoint = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                             {"model.features.0.weight": lambda w: np.full_like(w, np.nan)})
    n = np.load(checkpoint)["model.features.0.weight"].size
    refused(capsys, ["compress", "--checkpoint", checkpoint, "--density", "0.5", "--out", str(out)],
            f"features.0.weight has {n} NaN values")
    state = squeezenet1_1(num_classes=10, seed=0).state_dict()
    state["features.0.weight"][:] = np.nan
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["compress", "--checkpoint", str(weights), "--model", "squeezenet1_1", "--density", "0.5",
                     "--out", str(out)], "features.0.weight has")
    assert not out.exists()


@pytest.mark.parametrize("key, named", [("model.features.0.bias", "features.0.bias"),
                                        ("optimizer.0", "optimizer.0")])     # LARS's momentum of conv1
def test_resume_refuses_non_finite_weights_or_optimizer_state(tiny_run_copy, capsys, key, named):
    last = tiny_run_copy / "last.npz"
    rewrite_npz(last, last, {key: lambda v: poisoned(v, inf=1)})
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=2), "--resume", "--quiet"],
            f"{named} has 1 infinite value", str(last))


def test_a_subprocess_gets_one_error_line_for_nan_weights(tmp_path):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.0.weight"] = poisoned(state["features.0.weight"].copy(), nan=3)
    weights = save_weights(state, tmp_path / "w.npz")
    result = subprocess.run([sys.executable, "-m", "tinysqueeze", "predict", an_image(tmp_path), "--weights",
                             str(weights)], capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"error: {weights}: features.0.weight has 3 NaN values: refusing to load non-finite weights"]


# ------------------------------------------------------------------- (b) normalisation statistics
@pytest.mark.parametrize("meta, says", [
    (dict(std=[0.29, 0.0, 0.31]), "std"),
    (dict(std=[0.29, -0.3, 0.31]), "std"),
    (dict(std=[0.29, float("inf"), 0.31]), "std"),
    (dict(mean=[0.5, float("nan"), 0.5]), "mean"),
    (dict(std=[0.29, 0.3]), "std"),
    (dict(mean="0.5"), "mean"),
])
def test_a_checkpoint_with_unusable_normalisation_is_refused(tiny_run, tmp_path, capsys, meta, says):
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz", meta=meta)
    refused(capsys, ["evaluate", "--checkpoint", bad], bad, says)
    refused(capsys, ["predict", an_image(tmp_path), "--checkpoint", bad], bad, says)


# ------------------------------------------------------------------- (c) complex weights
def test_complex_weights_are_refused_naming_the_tensor(tmp_path, tiny_run, capsys):
    state = squeezenet1_1(num_classes=3, seed=0).state_dict()
    state["features.0.weight"] = state["features.0.weight"] * (1 + 0.5j)
    weights = save_weights(state, tmp_path / "w.npz")
    refused(capsys, ["predict", an_image(tmp_path), "--weights", str(weights)],
            "features.0.weight holds complex64 values", "refusing")
    bad = rewrite_npz(tiny_run / "best.npz", tmp_path / "best.npz",
                      {"model.features.0.bias": lambda b: b.astype(np.complex128)})
    refused(capsys, ["evaluate", "--checkpoint", bad], "features.0.bias holds complex128 values")
    text = rewrite_npz(tiny_run / "best.npz", tmp_path / "text.npz",
                       {"model.features.0.bias": lambda b: np.array(["x"] * b.size)})
    refused(capsys, ["evaluate", "--checkpoint", text], "features.0.bias holds <U1 values")


# ------------------------------------------------------------------- (e) the resume point's epoch
@pytest.mark.parametrize("epoch, says", [
    (10 ** 6, "epoch 1000000"),
    (5, "epoch 5"),
    (1, "epoch 1"),          # two epochs finished of a run of one
    (-3, "-3"),
    (2.5, "2.5"),
    ("1", "'1'"),
    (True, "True"),
])
def test_resume_refuses_an_epoch_that_is_not_the_runs(tiny_run_copy, capsys, epoch, says):
    last = tiny_run_copy / "last.npz"
    rewrite_npz(last, last, meta=dict(epoch=epoch))
    refused(capsys, ["train", *tiny_argv(tiny_run_copy, epochs=3), "--resume", "--quiet"], str(last), says)
    assert "done" not in capsys.readouterr().out


# ------------------------------------------------------------------- (d) every image mode
def twins(mode: str, rng):
    """(an image of `mode`, the RGB uint8 pixels it stands for), derived without Pillow's conversions."""
    h, w = 5, 7
    gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    as_rgb = lambda g: np.repeat(g[..., None], 3, axis=2)                     # noqa: E731
    L = lambda a: Image.fromarray(np.ascontiguousarray(a, dtype=np.uint8))  # noqa: E731
    opaque = L(np.full((h, w), 255))
    if mode == "1":
        bits = gray > 127
        return Image.fromarray(bits), as_rgb(np.where(bits, 255, 0))
    if mode == "L":
        return L(gray), as_rgb(gray)
    if mode in ("LA", "La"):
        return Image.merge(mode, [L(gray), opaque]), as_rgb(gray)
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        dtype = {"I;16": "<u2", "I;16L": "<u2", "I;16B": ">u2", "I;16N": "=u2", "I": "=i4"}[mode]
        wide = (gray.astype(np.int64) * 257).astype(dtype)
        return Image.frombytes(mode, (w, h), wide.tobytes()), as_rgb(gray)
    if mode == "F":                                       # Pillow's scale for floats: 0..255, as L -> F gives
        return Image.frombytes("F", (w, h), gray.astype("=f4").tobytes()), as_rgb(gray)
    if mode in ("P", "PA"):
        palette = rng.integers(0, 256, (256, 3), dtype=np.uint8)
        image = Image.frombytes("P", (w, h), gray.tobytes())
        image.putpalette(palette.reshape(-1).tolist())
        if mode == "PA":
            image = image.convert("PA")
        assert image.mode == mode
        return image, palette[gray]
    if mode in ("RGB", "RGBA", "RGBX", "RGBa"):
        bands = [L(rgb[..., c]) for c in range(3)] + ([opaque] if len(mode) == 4 else [])
        return Image.merge(mode, bands), rgb
    if mode == "CMYK":
        return Image.merge("CMYK", [L(255 - rgb[..., c]) for c in range(3)] + [L(np.zeros((h, w)))]), rgb
    if mode == "YCbCr":                                   # JPEG's (BT.601, full range) inverse
        y, cb, cr = (rgb[..., c].astype(float) for c in range(3))
        out = np.stack([y + 1.402 * (cr - 128), y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128),
                        y + 1.772 * (cb - 128)], axis=-1)
        return Image.merge("YCbCr", [L(rgb[..., c]) for c in range(3)]), np.clip(np.round(out), 0, 255)
    if mode == "HSV":
        out = [[colorsys.hsv_to_rgb(*(p / 255.0)) for p in row] for row in rgb]
        return Image.merge("HSV", [L(rgb[..., c]) for c in range(3)]), np.round(np.array(out) * 255)
    if mode == "LAB":                                     # the neutral axis: L* to sRGB gray (D65)
        lightness = gray.astype(float) * 100 / 255
        fy = (lightness + 16) / 116
        y = np.where(fy > 6 / 29, fy ** 3, 3 * (6 / 29) ** 2 * (fy - 4 / 29))
        srgb = np.where(y <= 0.0031308, 12.92 * y, 1.055 * y ** (1 / 2.4) - 0.055) * 255
        return Image.merge("LAB", [L(gray), L(np.full((h, w), 128)), L(np.full((h, w), 128))]), as_rgb(srgb)
    raise AssertionError(f"Pillow has a mode this test does not know: {mode}; add its twin here")


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_every_pillow_mode_decodes_as_its_8_bit_twin(mode):
    image, expected = twins(mode, np.random.default_rng(sum(map(ord, mode))))
    assert image.mode == mode
    got = np.asarray(transforms.to_rgb8(image))
    assert got.dtype == np.uint8 and got.shape == expected.shape
    tolerance = 2 if mode == "LAB" else 1                # LAB: Pillow's own table, 1.7 off the formula
    assert np.abs(got.astype(float) - expected).max() <= tolerance, (mode, got[..., 0], expected[..., 0])


def png(path, pixels: np.ndarray, color_type: int, bit_depth: int = 16):
    """A PNG written by hand (Pillow writes no 48-bit RGB): signature, IHDR, one IDAT, IEND."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    h, w = pixels.shape[:2]
    rows = pixels.astype(">u2" if bit_depth == 16 else "u1").reshape(h, -1)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


HIGH_BIT_FILES = {                   # name -> (PNG colour type, channels taken from the twin)
    "gray16": (0, [0]), "rgb48": (2, [0, 1, 2]), "gray-alpha32": (4, [0, 3]), "rgba64": (6, [0, 1, 2, 3]),
}


@pytest.mark.parametrize("name", sorted(HIGH_BIT_FILES))
def test_16_bit_pngs_decode_as_their_8_bit_twins(tmp_path, name):
    color_type, channels = HIGH_BIT_FILES[name]
    rgba = np.random.default_rng(1).integers(0, 256, (9, 11, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    if len(channels) <= 2:
        rgba[..., 1] = rgba[..., 2] = rgba[..., 0]
    twin8 = png(tmp_path / "twin8.png", rgba[..., channels], color_type, 8)
    wide = png(tmp_path / "wide.png", rgba[..., channels].astype(np.uint16) * 257, color_type, 16)
    expected = rgba[..., :3]
    np.testing.assert_array_equal(np.asarray(load_rgb(twin8)), expected)
    got = np.asarray(load_rgb(wide)).astype(int)
    assert np.abs(got - expected).max() <= 1, name


def test_high_bit_depth_files_of_other_kinds(tmp_path):
    gray = np.random.default_rng(2).integers(0, 256, (6, 8), dtype=np.uint8)
    expected = np.repeat(gray[..., None], 3, axis=2)
    Image.frombytes("I;16", (8, 6), (gray.astype("<u2") * 257).tobytes()).save(tmp_path / "pillow16.png")
    Image.frombytes("I;16B", (8, 6), (gray.astype(">u2") * 257).tobytes()).save(tmp_path / "big.tif")
    Image.frombytes("I", (8, 6), (gray.astype("=i4") * 257).tobytes()).save(tmp_path / "int32.tif")
    for maxval in (65535, 1023):       # a PGM scales its own maxval to white
        (tmp_path / f"max{maxval}.pgm").write_bytes(
            f"P5 8 6 {maxval}\n".encode() + np.round(gray.astype(float) * maxval / 255).astype(">u2").tobytes())
    for name in ("pillow16.png", "big.tif", "int32.tif", "max65535.pgm", "max1023.pgm"):
        got = np.asarray(load_rgb(tmp_path / name)).astype(int)
        assert np.abs(got - expected).max() <= 1, (name, Image.open(tmp_path / name).mode)


def test_predict_and_training_see_a_16_bit_png_as_its_8_bit_twin(tmp_path, capsys, monkeypatch):
    from tinysqueeze.datasets import load_split

    monkeypatch.setenv("TINYSQUEEZE_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        for k in range(2):
            for depth in (8, 16):
                folder = tmp_path / f"data{depth}" / split / f"class{k}"
                folder.mkdir(parents=True, exist_ok=True)
            gray = rng.integers(0, 256, (40, 48), dtype=np.uint8)
            png(tmp_path / "data8" / split / f"class{k}" / "a.png", gray, 0, 8)
            png(tmp_path / "data16" / split / f"class{k}" / "a.png", gray.astype(np.uint16) * 257, 0, 16)
    for split in ("train", "val"):
        eight = load_split(str(tmp_path / "data8"), split, 32, progress=False).images
        sixteen = load_split(str(tmp_path / "data16"), split, 32, progress=False).images
        assert np.abs(np.asarray(eight, int) - np.asarray(sixteen, int)).max() <= 1
        assert (np.asarray(sixteen) == 255).mean() < 0.05
    weights = save_weights(squeezenet1_1(num_classes=3, seed=0), tmp_path / "w.npz")
    outputs = []
    for depth in (8, 16):
        assert main(["predict", str(tmp_path / f"data{depth}" / "val" / "class0" / "a.png"), "--weights",
                     str(weights), "--image-size", "32"]) == 0
        outputs.append(capsys.readouterr().out.split("\n", 1)[1])    # the ranks, without the file name
    assert outputs[0] == outputs[1]
