"""Tiny synthetic image folders for the doctor tests: healthy ones, and ways to break them."""

import os
import shutil

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

COLORS = [(200, 60, 60), (60, 200, 60), (60, 60, 200), (200, 200, 60)]


def class_image(rng, color, size=8, noise=30.0, scale=1.0):
    """An RGB uint8 image: a class color with pixel noise, multiplied by `scale`."""
    pixels = np.asarray(color, float)[None, None] + rng.normal(0, noise, (size, size, 3))
    return np.clip(pixels * scale, 0, 255).astype(np.uint8)


def write_images(root, counts, *, size=8, noise=30.0, scale=1.0, colors=COLORS, seed=0):
    """Writes `counts[c]` PNGs into `root/c{c}/`; returns `root` as a str."""
    rng = np.random.default_rng(seed)
    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            pixels = class_image(rng, colors[c], size, noise, scale)
            Image.fromarray(pixels).save(os.path.join(root, f"c{c}", f"{i:03d}.png"))
    return str(root)


def copy_image(root, source, target, *, noise=0, seed=0):
    """Copies one image (relative paths), optionally adding +-`noise` to every pixel."""
    source, target = os.path.join(root, source), os.path.join(root, target)
    if not noise:
        shutil.copy(source, target)
        return
    pixels = np.asarray(Image.open(source)).astype(int)
    pixels += np.random.default_rng(seed).integers(-noise, noise + 1, pixels.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(target)


def save(root, relative, pixels):
    """Saves a uint8 (or uint16, as 16-bit) array as an image file under `root`."""
    Image.fromarray(pixels).save(os.path.join(root, relative))


def write_blocks(root, counts, *, size=32, low=0, seed=0):
    """Writes `counts[c]` PNGs into `root/c{c}/`: a 4x4 grid of random colors with values in
    [low, 255], scaled up to size x size. Nothing tells the classes apart: a model can only
    learn them by memorising, as in the one-batch test. Returns `root` as a str."""
    rng = np.random.default_rng(seed)
    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            grid = rng.integers(low, 256, (4, 4, 3)).astype(np.uint8)
            pixels = np.kron(grid, np.ones((size // 4, size // 4, 1), np.uint8))
            Image.fromarray(pixels).save(os.path.join(root, f"c{c}", f"{i:03d}.png"))
    return str(root)


def photo(rng, label, *, width=500, height=375):
    """A photo-like RGB image: a smooth random background, a few ellipses (class 0) or
    rectangles (class 1) of random colors, a slight blur and sensor noise."""
    grid = rng.integers(40, 220, (4, 5, 3)).astype(np.uint8)
    image = Image.fromarray(grid).resize((width, height), Image.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(3, 7)):
        x, y, r = rng.integers(0, width), rng.integers(0, height), rng.integers(20, 90)
        box = (x - r, y - r // (1 + label), x + r, y + r // (1 + label))
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if label == 0 else draw.rectangle)(box, fill=color)
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(1.5)), float)
    pixels += rng.normal(0, 10, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_photos(root, counts, *, seed=0, **size):
    """Writes `counts[c]` photo-like JPEGs (500x375 unless `width`/`height`) into
    `root/c{c}/`; returns `root` as a str."""
    rng = np.random.default_rng(seed)
    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            path = os.path.join(root, f"c{c}", f"{i:04d}.jpg")
            photo(rng, c % 2, **size).save(path, quality=90)
    return str(root)
