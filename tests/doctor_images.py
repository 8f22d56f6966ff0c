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


def square_image(rng, quadrant, size=(16, 16)):
    """A noisy gray-on-RGB image with a bright square at a random place in one quadrant: the
    class is where the square is, not its brightness or color."""
    height, width = size
    pixels = rng.integers(0, 60, (height, width, 3)).astype(float)
    side = max(2, min(height, width) // 2 - 2)
    top = (quadrant % 2) * (height // 2) + rng.integers(0, height // 2 - side + 1)
    left = (quadrant // 2 % 2) * (width // 2) + rng.integers(0, width // 2 - side + 1)
    pixels[top:top + side, left:left + side] += 150
    return pixels


def planted_folder(root, counts=(24, 24), *, size=None, fmt=None, scale=None, border=None,
                   camera=None, watermark=None, seed=0):
    """Writes `counts[c]` square images into `root/c{c}/`. Each option is a list with one value
    per class (None: the same for all): `size` (height, width), `fmt` ("png" or "jpg"),
    `scale` (pixel factor), `border` (black frame width), `camera` (EXIF model, JPEG only),
    `watermark` (True: a fixed 8x8 logo near the bottom-right corner). Returns `root`."""
    rng = np.random.default_rng(seed)
    logo = np.random.default_rng(99).integers(0, 2, (8, 8, 1)) * 255.0

    def per_class(option, c, default):
        return default if option is None else option[c]

    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            pixels = square_image(rng, c, per_class(size, c, (16, 16)))
            pixels *= per_class(scale, c, 1.0)
            frame = per_class(border, c, 0)
            if frame:
                pixels[:frame], pixels[-frame:] = 0, 0
                pixels[:, :frame], pixels[:, -frame:] = 0, 0
            if per_class(watermark, c, False):
                pixels[-9:-1, -9:-1] = logo
            image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
            extension = per_class(fmt, c, "png")
            options = {"quality": 95} if extension == "jpg" else {}
            model = per_class(camera, c, None)
            if model:
                exif = Image.Exif()
                exif[0x010F], exif[0x0110] = "Maker", model
                options["exif"] = exif
            image.save(os.path.join(root, f"c{c}", f"{i:03d}.{extension}"), **options)
    return str(root)


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


def photo_crops(root, counts=(40, 40), *, size=(48, 64), zoom=(1.5, 4.0), letterbox=None,
                seed=0):
    """Crops of scikit-learn's two sample photographs, class c from photograph c % 2, saved as
    JPEG: `zoom` x `size` pixels of the photograph (large crops overlap), resized to `size`;
    `letterbox[c]`: black bars of that many pixels above and below. Returns `root`."""
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    rng = np.random.default_rng(seed)
    height, width = size
    for c, count in enumerate(counts):
        os.makedirs(os.path.join(root, f"c{c}"), exist_ok=True)
        for i in range(count):
            scale = rng.uniform(*zoom)
            box_h, box_w = int(height * scale), int(width * scale)
            top, left = rng.integers(0, 427 - box_h), rng.integers(0, 640 - box_w)
            crop = Image.fromarray(photos[c % 2][top:top + box_h, left:left + box_w])
            pixels = np.asarray(crop.resize((width, height))).copy()
            bars = 0 if letterbox is None else letterbox[c]
            if bars:
                pixels[:bars], pixels[-bars:] = 0, 0
            Image.fromarray(pixels).save(os.path.join(root, f"c{c}", f"{i:03d}.jpg"),
                                         quality=90)
    return str(root)


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
