"""Find: list the image files of a class-per-folder directory and read their headers (no decoding).

The layout is the one `keras.utils.image_dataset_from_directory` reads: one sub-folder per
class, images anywhere below it. Hidden files and folders are ignored; files that are not
images, or whose header cannot be read, are listed in `FileIndex.skipped` with the reason.

`walk_class_files` is copied verbatim into the exported module (see `autoprep/export/`), so the
library and the exported module list the same files: it may use only the standard library.
"""

import dataclasses
import os

import numpy as np
from PIL import Image

from autoprep.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
# The default long side at most, as keras.utils.image_dataset_from_directory (256x256).
MAX_DEFAULT_SIDE = 256


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


def walk_class_files(data_dir, class_names):
    """Yields (path relative to `data_dir` with "/" separators, label) of every visible file."""
    for label, class_name in enumerate(class_names):
        for dirpath, dirnames, filenames in os.walk(os.path.join(data_dir, class_name)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for filename in sorted(filenames):
                if not filename.startswith("."):
                    path = os.path.join(dirpath, filename)
                    yield os.path.relpath(path, data_dir).replace(os.sep, "/"), label


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
        if entry.is_dir() and not entry.name.startswith(".")
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
    for relative, label in walk_class_files(root, class_names):
        try:
            size, mode = _read_header(os.path.join(root, relative))
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


def median_size(sizes) -> tuple:
    """The median (height, width): the common size when all images share one."""
    heights, widths = zip(*sizes)
    return int(np.median(heights)), int(np.median(widths))


def choose_image_size(sizes, *, max_side=MAX_DEFAULT_SIDE) -> tuple:
    """The images' common or median (height, width), scaled down, keeping its aspect ratio,
    so that the long side is at most `max_side` (phone photos would otherwise need GiBs)."""
    height, width = median_size(sizes)
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def choose_channels(modes) -> int:
    """1 when every image is grayscale, else 3 (grayscale images are then converted to RGB)."""
    return 1 if all(mode in GRAY_MODES for mode in modes) else 3
