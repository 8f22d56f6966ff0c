"""Find and decode: index a class-per-folder image directory and decode every image once.

The layout is the one `keras.utils.image_dataset_from_directory` reads: one sub-folder per
class, images anywhere below it. Hidden files and folders are ignored; unreadable or
unsupported files are skipped with one warning that names each of them.
"""

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf
from PIL import Image

from autoprep.errors import ArgumentError, DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


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


@dataclasses.dataclass
class FileIndex:
    """The files of an image directory before decoding: what `index_directory` returns."""

    root: str
    class_names: list
    paths: list
    labels: np.ndarray
    sizes: list  # (height, width) per file
    modes: list  # PIL mode per file
    skipped: list


def _is_hidden(name):
    return name.startswith(".")


def _walk_files(class_dir):
    for dirpath, dirnames, filenames in os.walk(class_dir):
        dirnames[:] = sorted(d for d in dirnames if not _is_hidden(d))
        for filename in sorted(filenames):
            if not _is_hidden(filename):
                yield os.path.join(dirpath, filename)


def list_classes(data_dir) -> list:
    """Returns the sorted class folder names of `data_dir`, with clear errors for bad layouts."""
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is a file" if os.path.exists(data_dir) else "does not exist"
        raise DataError(
            f"`data_dir` must be a directory with one sub-folder per class. "
            f"Received: data_dir={data_dir!r}, which {what}."
        )
    class_names = sorted(
        entry.name
        for entry in os.scandir(data_dir)
        if entry.is_dir() and not _is_hidden(entry.name)
    )
    if len(class_names) < 2:
        raise DataError(
            f"`data_dir` must hold at least 2 class sub-folders (one folder per class, images "
            f"inside). Received: {data_dir!r} with {len(class_names)} "
            f"({', '.join(class_names) or 'none'})."
        )
    return class_names


def _read_header(path):
    """Returns ((height, width), mode) of an image file, or raises ValueError."""
    if not path.lower().endswith(IMAGE_EXTENSIONS):
        raise ValueError(f"unsupported file type (expected {', '.join(IMAGE_EXTENSIONS)})")
    try:
        with Image.open(path) as image:
            width, height = image.size
            return (height, width), image.mode
    except Exception as error:  # PIL raises many types for broken files.
        raise ValueError(f"cannot read image header ({type(error).__name__}: {error})") from None


def index_directory(data_dir) -> FileIndex:
    """Lists the images of a class-per-folder directory and reads their headers (no decoding).

    Raises:
        DataError: if the directory is missing, has fewer than 2 classes, or holds no images.
    """
    root = os.fspath(data_dir)
    class_names = list_classes(root)
    paths, labels, sizes, modes, skipped = [], [], [], [], []
    for label, class_name in enumerate(class_names):
        for path in _walk_files(os.path.join(root, class_name)):
            relative = os.path.relpath(path, root).replace(os.sep, "/")
            try:
                size, mode = _read_header(path)
            except ValueError as error:
                skipped.append((relative, str(error)))
                continue
            paths.append(relative)
            labels.append(label)
            sizes.append(size)
            modes.append(mode)
    if not paths:
        raise DataError(
            f"`data_dir` {root!r} holds no readable images ({', '.join(IMAGE_EXTENSIONS)}) in "
            f"its class folders; {len(skipped)} file(s) were skipped."
        )
    return FileIndex(root, class_names, paths, np.asarray(labels), sizes, modes, skipped)


def choose_image_size(sizes) -> tuple:
    """The common (height, width) of all images, or their median when sizes differ."""
    heights, widths = zip(*sizes)
    return int(np.median(heights)), int(np.median(widths))


def choose_channels(modes) -> int:
    """1 when every image is grayscale, else 3 (grayscale images are then converted to RGB)."""
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3


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
