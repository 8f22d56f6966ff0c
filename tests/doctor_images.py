"""Tiny synthetic image folders for the doctor tests: healthy ones, and ways to break them."""

import os
import shutil

import numpy as np
from PIL import Image

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


def stripes_image(rng, orientation, size=12):
    """Stripes in one of 3 orientations (horizontal, vertical, diagonal), random phase, colors
    and noise: the class is the orientation, which a small CNN learns in a few epochs."""
    y, x = np.mgrid[0:size, 0:size]
    along = [y, x, x + y][orientation]
    wave = np.sin(2 * np.pi * along / 4.0 + rng.uniform(0, 2 * np.pi))[..., None]
    low, high = rng.uniform(0, 120, 3), rng.uniform(135, 255, 3)
    pixels = low + (high - low) * (wave + 1) / 2 + rng.normal(0, 10, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def label_folder(root, counts=(30, 30, 30), *, planted=(), size=12, seed=0):
    """Stripe images, `counts[c]` of orientation c in `root/c{c}/`, plus one image of class
    `a` filed in folder `b` for each (a, b) in `planted`. Returns the planted paths."""
    rng = np.random.default_rng(seed)
    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            save(root, f"c{c}/{i:03d}.png", stripes_image(rng, c, size))
    paths = []
    for k, (looks_like, folder) in enumerate(planted):
        paths.append(f"c{folder}/planted_{k}.png")
        save(root, paths[-1], stripes_image(rng, looks_like, size))
    return paths


def random_grid_image(rng, size=32):
    """A random 8x8 color grid, upsampled, plus noise: unlike any other such image."""
    grid = rng.integers(0, 256, (8, 8, 3))
    pixels = np.kron(grid, np.ones((size // 8, size // 8, 1))) + rng.normal(0, 6, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)
