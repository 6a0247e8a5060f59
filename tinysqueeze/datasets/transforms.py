"""Image preprocessing shared by prediction, datasets and evaluation.

Evaluation-time transform as torchvision's ImageNet recipe: resize the shorter side (to 256 for a
224 crop, i.e. crop / 0.875), centre-crop, scale to [0, 1], subtract the per-channel mean and
divide by the standard deviation.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

CROP_RATIO = 0.875                     # a 224 crop of an image resized to 256: torchvision's ImageNet recipe
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MAX_IMAGE_SIZE = 1024                  # the largest crop any command takes (4.6x the paper's 224): a flag or a
                                       # checkpoint asking for more is refused before anything is allocated


def load_rgb(path) -> Image.Image:
    """Opens an image file as RGB, 8 bits a channel, whatever its mode and bit depth (to_rgb8).

    Raises ValueError naming the file for anything unreadable, including an image over Pillow's
    decompression-bomb limit (Image.MAX_IMAGE_PIXELS) -- a crafted file must not exhaust memory."""
    try:
        with Image.open(path) as im:
            return to_rgb8(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None


SIXTEEN_BIT_GRAY = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def to_rgb8(image: Image.Image) -> Image.Image:
    """Any Pillow image -> RGB with 8 bits a channel, each mode read at its own scale.

    Pillow's own convert("RGB") clips the 16-bit grey modes at 255 (a 16-bit photo turned 99.7% white),
    so they are scaled here:
    - I;16, I;16L, I;16B, I;16N (16-bit PNG and TIFF), and I (32-bit integers: the mode a 16-bit PGM
      opens in, which Pillow scales to 0..65535 whatever its maxval): 0..65535 to 0..255, v / 257
      rounded (65535 -> 255); values outside 0..65535 clipped;
    - F (32-bit floats): on Pillow's own scale for them, 0..255 (L -> F keeps the values), rounded;
      NaN or infinite pixels are refused;
    - La (premultiplied alpha) through LA, as RGBa already goes to RGB;
    - every other mode (1, L, LA, P, PA, RGB, RGBA, RGBX, RGBa, CMYK, YCbCr, LAB, HSV) by Pillow's
      conversion. 16-bit RGB and RGBA PNGs already open as 8-bit RGB / RGBA (their high bytes).
    Alpha is dropped, not composited, as Pillow does."""
    if image.mode in SIXTEEN_BIT_GRAY:
        values = np.clip(np.asarray(image).astype(np.int64), 0, 65535)      # I;16B arrives big-endian, read right
        gray = (values + 128) // 257
    elif image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{int((~np.isfinite(values)).sum())} of its float pixels are NaN or infinite")
        gray = np.round(np.clip(values, 0, 255))
    elif image.mode == "La":
        return image.convert("LA").convert("RGB")
    else:
        return image.convert("RGB")
    return Image.fromarray(gray.astype(np.uint8)).convert("RGB")


def resize_shorter(image: Image.Image, size: int) -> Image.Image:
    """Scales the image so that its shorter side is `size` pixels (aspect ratio kept, bilinear).

    The resized image is held to Pillow's decompression-bomb limit (Image.MAX_IMAGE_PIXELS) as the file
    itself is: a 2,000,000 x 1 strip, harmless to open, would otherwise become 146,000,000 x 73 pixels
    (32 GB) for a 73-pixel side. ValueError, saying which limit was hit."""
    w, h = image.size
    if min(w, h) == size:
        return image
    scale = size / min(w, h)
    new_w, new_h = max(size, round(w * scale)), max(size, round(h * scale))
    limit = Image.MAX_IMAGE_PIXELS
    if limit and new_w * new_h > limit:
        raise ValueError(f"its {w:,} x {h:,} pixels would become {new_w:,} x {new_h:,} = {new_w * new_h:,} pixels "
                         f"with the shorter side at {size}, more than Pillow's decompression-bomb limit of "
                         f"{limit:,} pixels (PIL.Image.MAX_IMAGE_PIXELS): an image this elongated is refused")
    return image.resize((new_w, new_h), Image.BILINEAR)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def to_chw_uint8(image: Image.Image) -> np.ndarray:
    """PIL RGB image -> (3, H, W) uint8."""
    return np.asarray(image, dtype=np.uint8).transpose(2, 0, 1).copy()


def normalize(batch_uint8: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """(N, 3, H, W) or (3, H, W) uint8 -> float32, scaled to [0, 1], minus mean, over std."""
    x = batch_uint8.astype(np.float32) / 255.0
    shape = (3, 1, 1) if x.ndim == 3 else (1, 3, 1, 1)
    return (x - np.asarray(mean, np.float32).reshape(shape)) / np.asarray(std, np.float32).reshape(shape)


def stored_size(crop: int) -> int:
    """The shorter side an image is resized to before a `crop` x `crop` centre crop (and the size
    datasets keep their images at): round(crop / CROP_RATIO), 256 for 224."""
    return int(round(crop / CROP_RATIO))


def eval_image(path, crop: int = 224, resize: int | None = None, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """An image file -> (3, crop, crop) float32, ready for a network (resize defaults to stored_size(crop))."""
    resize = resize or stored_size(crop)
    try:
        image = center_crop(resize_shorter(load_rgb(path), resize), crop)
    except ValueError as error:
        raise ValueError(str(error) if str(error).startswith("cannot read image") else
                         f"cannot read image {path}: {error}") from None
    return normalize(to_chw_uint8(image), mean, std)
