"""Helpers the tests import: tiny synthetic image folders made with PIL, a tiny model, and the
benchmark scripts as modules."""

import importlib.util
import os

import numpy as np
from PIL import Image


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


def load_benchmark(name):
    """The script `benchmarks/NAME.py`, imported as a module (it is not a package)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location(
        f"benchmark_{name}", os.path.join(root, "benchmarks", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny_model(input_shape, num_classes):
    """A small uncompiled softmax classifier."""
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(16, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


# A model file for `autoprep tune --model model.py:build`, and the options of a one-trial search.
MODEL_FILE = '''
import keras


def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])
'''
FAST_TUNE = ["--max-trials", "1", "--epochs", "1", "--tuner", "random", "--seed", "0",
        "--final-repeats", "1"]
