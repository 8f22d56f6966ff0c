"""Where the decoded images live: in RAM under a memory limit, else in a memory-mapped file.

A memory-mapped array is paged in and out by the operating system, so the process' anonymous
memory stays flat however large the data; its pages count as file cache, not as RssAnon. This
module imports no TensorFlow (the CLI parses `--memory-limit` with it).
"""

import os
import re
import shutil
import tempfile

import numpy as np

from autoprep.errors import ArgumentError, DataError

MEMORY_FRACTION = 0.25  # default limit: this fraction of the machine's RAM
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text) -> int:
    """Bytes from `512M`, `2G`, `1.5g`, `300k`, `2GiB`, `2GB` or a plain number of bytes.

    Raises:
        ArgumentError: for anything else, or a size that is not positive.
    """
    if isinstance(text, (int, np.integer)) and not isinstance(text, bool):
        size = int(text)
    else:
        match = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?", str(text).strip().lower())
        size = int(float(match.group(1)) * _UNITS[match.group(2)]) if match else 0
    if size <= 0:
        raise ArgumentError(
            "`memory_limit` must be a positive size such as 512M, 2G or a number of bytes. "
            f"Received: memory_limit={text!r}"
        )
    return size


def default_memory_limit() -> int:
    """`MEMORY_FRACTION` of the machine's physical memory."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * MEMORY_FRACTION)


def format_bytes(size) -> str:
    """`117.2 MiB`, `3.4 GiB`: sizes for people."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return ""  # not reached


def allocate(shape, *, mapped, path=None) -> np.ndarray:
    """An uninitialised uint8 array: in RAM, or a memory map of `path` (a .npy file) or of an
    anonymous temporary file (deleted when the array is)."""
    if not mapped:
        return np.empty(shape, np.uint8)
    _check_free_space(os.path.dirname(path) if path else tempfile.gettempdir(), shape)
    if path is not None:
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    with tempfile.TemporaryFile(prefix="autoprep-images-") as handle:
        return np.memmap(handle, dtype=np.uint8, mode="w+", shape=shape)


def _check_free_space(folder, shape):
    needed = int(np.prod(shape))
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise DataError(
            f"The decoded images need {format_bytes(needed)} in {folder!r} (over the memory "
            f"limit, they are memory-mapped from a file there) but only {format_bytes(free)} "
            "is free. Free some space, choose a smaller --image-size (`image_size=`) or a run "
            "directory on a larger disk."
        )
