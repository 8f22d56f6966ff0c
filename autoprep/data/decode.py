"""Decode: read the images of a `FileIndex` once into one uint8 array (an `ImageFolder`).

`load_image` is copied verbatim into the exported module, so a trial and the exported
pipeline decode and resize every file the same way.
"""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf

from autoprep.data.index import FileIndex, choose_channels, choose_image_size, index_directory
from autoprep.errors import ArgumentError, DataError


def load_image(path, image_size, channels):
    """Reads one image file as uint8 of shape `image_size + (channels,)`."""
    image = tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
    has_color = tf.shape(image)[-1] >= 3
    if channels == 1:
        image = tf.cond(
            has_color,
            lambda: tf.image.rgb_to_grayscale(image[..., :3]),
            lambda: image[..., :1],
        )
    else:
        image = tf.cond(
            has_color,
            lambda: image[..., :3],
            lambda: tf.image.grayscale_to_rgb(image[..., :1]),
        )
    image = tf.ensure_shape(image, [None, None, channels])
    image = tf.image.resize(image, image_size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


@dataclasses.dataclass
class ImageFolder:
    """A decoded image directory: every image in memory as uint8, with its label and path.

    Attributes:
        root: The directory that was read.
        class_names: Sorted class folder names; a label is an index into this list.
        paths: Path of each image, relative to `root`, with "/" separators.
        labels: int array of shape (n,).
        images: uint8 array of shape (n, height, width, channels).
        skipped: (path, reason) of every file that was not used.
    """

    root: str
    class_names: list
    paths: list
    labels: np.ndarray
    images: np.ndarray
    skipped: list = dataclasses.field(default_factory=list)

    @property
    def image_size(self) -> tuple:
        return tuple(int(d) for d in self.images.shape[1:3])

    @property
    def channels(self) -> int:
        return int(self.images.shape[3])

    @property
    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.class_names))


def _check_image_size(image_size):
    valid = (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(isinstance(d, (int, np.integer)) and d > 0 for d in image_size)
    )
    if not valid:
        raise ArgumentError(
            "`image_size` must be None or a (height, width) pair of positive integers. "
            f"Received: image_size={image_size!r}"
        )
    return tuple(int(d) for d in image_size)


def _warn_skipped(skipped):
    if skipped:
        listing = "\n".join(f"  {path}: {reason}" for path, reason in skipped)
        warnings.warn(f"autoprep skipped {len(skipped)} file(s):\n{listing}", stacklevel=3)


def read_image_folder(data_dir, *, image_size=None, channels=None) -> ImageFolder:
    """Indexes `data_dir` and decodes every image once into one uint8 array.

    Args:
        data_dir: A directory with one sub-folder per class.
        image_size: (height, width) to resize to. Default: the common size of the images,
            or the median size when they differ.
        channels: 1 or 3. Default: 1 when every image is grayscale, else 3.

    Returns:
        An `ImageFolder`.

    Raises:
        DataError: for a missing or empty directory, or fewer than 2 classes.
        ArgumentError: for a bad `image_size` or `channels`.

    Example:
        >>> folder = read_image_folder("flowers/", image_size=(64, 64))
        >>> folder.images.shape, folder.class_names
    """
    if channels not in (None, 1, 3):
        raise ArgumentError(f"`channels` must be None, 1 or 3. Received: channels={channels!r}")
    folder = decode_index(index_directory(data_dir), image_size=image_size, channels=channels)
    _warn_skipped(folder.skipped)
    return folder


def decode_index(index: FileIndex, *, image_size=None, channels=None) -> ImageFolder:
    """Decodes the files of an index (see `read_image_folder`); skipped files are listed in the
    result, not warned about."""
    image_size = _check_image_size(image_size or choose_image_size(index.sizes))
    channels = channels or choose_channels(index.modes)
    decode = tf.function(lambda path: load_image(path, image_size, channels))
    images, kept = [], []
    skipped = list(index.skipped)
    for i, path in enumerate(index.paths):
        try:
            images.append(decode(tf.constant(os.path.join(index.root, path))).numpy())
            kept.append(i)
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as error:
            skipped.append((path, f"cannot decode ({error.message.splitlines()[0]})"))
    if not kept:
        raise DataError(f"`data_dir` {index.root!r} holds no image that can be decoded.")
    return ImageFolder(
        root=index.root,
        class_names=index.class_names,
        paths=[index.paths[i] for i in kept],
        labels=index.labels[kept],
        images=np.stack(images),
        skipped=skipped,
    )
