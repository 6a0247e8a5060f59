"""Images of every Pillow mode and bit depth decode to the right 8-bit pixels. Expected values come
from the files' own definitions, not from tinysqueeze: a 16-bit image holds its 8-bit twin's values
times 257, a palette image the palette's colours, YCbCr and HSV the textbook formulas (ITU-R BT.601
full range as in JPEG, colorsys)."""
import colorsys
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from tinysqueeze.cli import main
from tinysqueeze.datasets import transforms
from tinysqueeze.datasets.transforms import load_rgb
from tinysqueeze.formats.weights import save_weights
from tinysqueeze.models import squeezenet1_1


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
