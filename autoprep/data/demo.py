"""The embedded demo: scikit-learn's handwritten digits written out as a long-tailed image folder.

`load_digits` ships with scikit-learn (1,797 real 8x8 digits, 17 grey levels), so the demo
needs no download. Classes are cut to a long tail (digit 0 keeps every image, digit 9 about a
tenth), the imbalance autoprep is built to fix.
"""

import os
import shutil

import numpy as np
from PIL import Image

from autoprep.errors import DataError

# In the folder the demo images are being written to (`DATA_DIR.part`): autoprep made it, so
# autoprep may delete it when a crash left it half written.
PARTIAL_MARK = ".autoprep-partial"


def write_demo_folder(data_dir) -> str:
    """Writes the digits folder `data_dir` through the temporary folder `data_dir.part`, so
    that a crash leaves no half folder. A `.part` folder that a crash left is deleted only when
    autoprep made it (it holds `PARTIAL_MARK`).

    Raises:
        DataError: `data_dir.part` exists and autoprep did not make it.
    """
    partial = os.fspath(data_dir) + ".part"
    if os.path.lexists(partial):
        if not os.path.isfile(os.path.join(partial, PARTIAL_MARK)):
            raise DataError(
                f"{partial!r} exists and autoprep did not make it, so it is not deleted: the "
                f"demo writes its images there first. Move it away, or choose another --out."
            )
        shutil.rmtree(partial)
    os.makedirs(partial)
    open(os.path.join(partial, PARTIAL_MARK), "w").close()
    write_digits_folder(partial)
    os.remove(os.path.join(partial, PARTIAL_MARK))
    os.replace(partial, data_dir)
    return os.fspath(data_dir)


def write_digits_folder(path, *, imbalance: float = 10.0, seed: int = 0) -> str:
    """Writes the digits as PNG files in one folder per class, with a long-tailed class count.

    Args:
        path: Directory to create (class folders `0` ... `9` inside).
        imbalance: Ratio of the largest to the smallest class.
        seed: Which images are kept.

    Returns:
        `path`.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(seed)
    images = np.clip(digits.images * 16, 0, 255).astype(np.uint8)
    for digit in range(10):
        members = np.flatnonzero(digits.target == digit)
        keep = max(2, int(round(len(members) * imbalance ** (-digit / 9))))
        chosen = np.sort(rng.choice(members, size=keep, replace=False))
        class_dir = os.path.join(path, str(digit))
        os.makedirs(class_dir, exist_ok=True)
        for index in chosen:
            Image.fromarray(images[index], mode="L").save(
                os.path.join(class_dir, f"digit_{index:04d}.png")
            )
    return os.fspath(path)


def demo_model(input_shape, num_classes):
    """A small convolutional network for the 8x8 digits, left uncompiled (autoprep compiles it)."""
    import keras

    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
