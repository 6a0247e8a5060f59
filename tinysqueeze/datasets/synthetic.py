"""`synthetic`: ten classes of shapes and textures, generated from a seed in seconds.

So that the main job runs on a fresh machine with nothing downloaded. Every image gets a random
background (two colours blended along a random direction, plus noise), a random foreground colour
that contrasts with it, a random size, position and rotation, and a few faint clutter strokes.
Six classes are outlines (circle, square, triangle, cross, ring, star); three are textures filling
a random ellipse (stripes, checkerboard, dots), so outline alone does not decide them; one is a
crescent, a disc with a bite taken out, which a network must tell from a circle.
"""
from __future__ import annotations

import math

import numpy as np

SIZES = (8000, 2000)   # training and validation images of `--data synthetic`, unless told otherwise
CLASSES = ["circle", "square", "triangle", "cross", "ring", "star", "stripes", "checkerboard", "dots",
           "crescent"]


def _grid(size: int):
    """Pixel-centre coordinates in [-1, 1]: (y, x), each (size, size)."""
    c = (np.arange(size) + 0.5) / size * 2 - 1
    return np.meshgrid(c, c, indexing="ij")


def _inside_polygon(y, x, vertices) -> np.ndarray:
    """Even-odd rule: is each pixel inside the polygon? vertices: (V, 2) as (x, y)."""
    inside = np.zeros(x.shape, dtype=bool)
    v = len(vertices)
    for k in range(v):
        x0, y0 = vertices[k]
        x1, y1 = vertices[(k + 1) % v]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        inside ^= crosses & (x < x_at)
    return inside


def _polygon(radii, angles, cx, cy, scale, rotation):
    a = np.asarray(angles) + rotation
    r = np.asarray(radii) * scale
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=1)


def _shape_mask(label: int, y, x, rng) -> np.ndarray:
    scale = rng.uniform(0.35, 0.7)
    cx, cy = rng.uniform(-0.9 + scale, 0.9 - scale, size=2) if scale < 0.9 else (0.0, 0.0)
    rot = rng.uniform(0, 2 * math.pi)
    u, v = x - cx, y - cy
    r = np.hypot(u, v)
    name = CLASSES[label]
    if name == "circle":
        return r < scale
    if name == "square":
        return _inside_polygon(y, x, _polygon([scale * 1.1] * 4, np.arange(4) * math.pi / 2 + math.pi / 4, cx, cy, 1, rot))
    if name == "triangle":
        return _inside_polygon(y, x, _polygon([scale * 1.2] * 3, np.arange(3) * 2 * math.pi / 3, cx, cy, 1, rot))
    if name == "cross":
        ur = u * math.cos(rot) + v * math.sin(rot)
        vr = -u * math.sin(rot) + v * math.cos(rot)
        arm = scale * 0.33
        return ((np.abs(ur) < arm) & (np.abs(vr) < scale)) | ((np.abs(vr) < arm) & (np.abs(ur) < scale))
    if name == "ring":
        return (r < scale) & (r > scale * rng.uniform(0.45, 0.65))
    if name == "star":
        radii = np.where(np.arange(10) % 2 == 0, scale * 1.15, scale * 0.45)
        return _inside_polygon(y, x, _polygon(radii, np.arange(10) * math.pi / 5, cx, cy, 1, rot))
    if name == "crescent":
        shift = scale * rng.uniform(0.45, 0.7)
        bite = np.hypot(u - shift * math.cos(rot), v - shift * math.sin(rot)) < scale * 0.85
        return (r < scale) & ~bite
    # textures inside a random ellipse
    ur = u * math.cos(rot) + v * math.sin(rot)
    vr = -u * math.sin(rot) + v * math.cos(rot)
    region = (ur / (scale * 1.2)) ** 2 + (vr / scale) ** 2 < 1
    period = rng.uniform(0.18, 0.3)
    if name == "stripes":
        pattern = np.sin(ur * 2 * math.pi / period) > 0
    elif name == "checkerboard":
        pattern = (np.floor(ur / period) + np.floor(vr / period)) % 2 == 0
    else:  # dots
        du, dv = np.mod(ur, period) - period / 2, np.mod(vr, period) - period / 2
        pattern = np.hypot(du, dv) < period * 0.3
    return region & pattern


def _colour_pair(rng):
    """A background colour and a foreground colour at least 0.35 apart in brightness."""
    while True:
        bg, fg = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        if abs(bg.mean() - fg.mean()) > 0.3:
            return bg, fg


def make_image(label: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """One image of class `label`: (3, size, size) uint8."""
    y, x = _grid(size)
    bg, fg = _colour_pair(rng)
    bg2 = np.clip(bg + rng.normal(0, 0.15, 3), 0, 1)
    angle = rng.uniform(0, 2 * math.pi)
    t = ((x * math.cos(angle) + y * math.sin(angle)) + 1) / 2                   # (size, size) in [0, 1]
    image = bg[:, None, None] * (1 - t) + bg2[:, None, None] * t                # (3, size, size)
    for _ in range(rng.integers(0, 3)):                                         # faint clutter strokes
        a, off = rng.uniform(0, math.pi), rng.uniform(-1, 1)
        line = np.abs(x * math.cos(a) + y * math.sin(a) - off) < 0.02
        image = np.where(line, image * 0.7 + rng.uniform(0, 1, 3)[:, None, None] * 0.3, image)
    mask = _shape_mask(label, y, x, rng)
    image = np.where(mask, fg[:, None, None], image)
    image = image + rng.normal(0, rng.uniform(0.02, 0.08), image.shape)
    return (np.clip(image, 0, 1) * 255).round().astype(np.uint8)


def make_synthetic(n: int, size: int, seed: int = 0):
    """n images, classes balanced (n // 10 each, the rest spread), in a seeded random order.

    returns: images (n, 3, size, size) uint8, labels (n,) int64
    """
    if n < len(CLASSES):
        raise ValueError(f"synthetic needs at least {len(CLASSES)} images (one per class), got {n}")
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(CLASSES)).astype(np.int64)
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    for i, label in enumerate(labels):
        images[i] = make_image(int(label), size, rng)
    return images, labels
