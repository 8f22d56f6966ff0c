"""Shared fixtures: tiny synthetic image folders made with PIL, and a tiny model."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402


def write_folder(root, counts, *, size=(8, 8), mode="L", seed=0, fmt="png"):
    """Writes `counts[c]` images per class `class_c`; each class has its own bright quadrant."""
    rng = np.random.default_rng(seed)
    height, width = size
    for c, count in enumerate(counts):
        class_dir = os.path.join(root, f"class_{c}")
        os.makedirs(class_dir, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 60, size=(height, width), dtype=np.uint8)
            top = (c % 2) * (height // 2)
            left = (c // 2 % 2) * (width // 2)
            pixels[top:top + height // 2, left:left + width // 2] += 150
            image = Image.fromarray(pixels, mode="L")
            if mode != "L":
                image = image.convert(mode)
            image.save(os.path.join(class_dir, f"img_{i:03d}.{fmt}"))
    return str(root)


@pytest.fixture
def image_folder(tmp_path):
    """A dozen-ish 8x8 grayscale images in 3 classes; class_2 is a minority."""
    return write_folder(tmp_path / "data", [10, 10, 4])


@pytest.fixture
def make_folder(tmp_path):
    """Factory: make_folder(counts, **kwargs) -> path of a new image folder."""
    created = []

    def make(counts, **kwargs):
        path = tmp_path / f"data{len(created)}"
        created.append(path)
        return write_folder(path, counts, **kwargs)

    return make


def tiny_model(input_shape, num_classes):
    """A small uncompiled softmax classifier."""
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


@pytest.fixture
def count_fits(monkeypatch):
    """Counts trainings: every `keras.Model.fit` call, in this process, from now on."""
    import keras

    calls = []
    original = keras.Model.fit

    def fit(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    return calls
