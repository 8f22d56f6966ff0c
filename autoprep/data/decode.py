"""Decode: read the images of a `FileIndex` once into one uint8 array (an `ImageFolder`).

Each file is decoded by `load_image` (`autoprep/data/image.py`, copied verbatim into the
exported module) as its header said when it was indexed (its type, a JPEG's EXIF orientation),
resized and stored into the array a batch at a time: full-size images are held only
while the parallel map works on them, never all at once.
"""

import dataclasses
import hashlib
import json
import os
import re
import warnings

import numpy as np
import tensorflow as tf

from autoprep._text import printable
from autoprep.data.image import load_image
from autoprep.data.index import (
    MAX_DEFAULT_SIDE,
    MAX_PIXELS,
    FileIndex,
    choose_channels,
    choose_image_size,
    index_directory,
    median_size,
)
from autoprep.data.memory import allocate, default_memory_limit, format_bytes, parse_size
from autoprep.data.sizes import half_size, size_option
from autoprep.errors import ArgumentError, DataError

DECODE_BATCH = 256  # decoded images copied into the array at a time, at most
DECODE_BYTES = 8 << 20  # and at most about these bytes (at least one image)
DECODE_CHUNK = 8192  # files given to one parallel map: their paths alone are alive at a time
# PIL modes of the files that decode to 1 or 3 channels as they are (`ready_files`).
READY_MODES = {1: frozenset({"1", "L", "I;16"}), 3: frozenset({"RGB"})}
CACHE_VERSION = 2  # bump when decoding changes, so that older caches are not reused


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
        max_pixels: Files whose header declared more pixels were skipped.
    """

    root: str
    class_names: list
    paths: list
    labels: np.ndarray
    images: np.ndarray
    skipped: list = dataclasses.field(default_factory=list)
    max_pixels: int = MAX_PIXELS

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
        listing = "\n".join(f"  {printable(path)}: {printable(reason)}"
                            for path, reason in skipped)
        warnings.warn(f"autoprep skipped {len(skipped)} file(s):\n{listing}", stacklevel=3)


@dataclasses.dataclass
class DecodePlan:
    """What decoding an index will produce, known from the headers alone (before decoding).

    Attributes:
        count: Images to decode.
        image_size: (height, width) they are resized to.
        channels: 1 or 3.
        size_reason: Why this size (given, common, median, capped median).
        memory_limit: Bytes; a larger array is memory-mapped from a file.
        cache_path: The .npy file of a memory-mapped array (None: an anonymous temporary file).
        reused: True when `cache_path` already holds these images, decoded by an earlier run.
    """

    count: int
    image_size: tuple
    channels: int
    size_reason: str
    memory_limit: int
    cache_path: str = None
    reused: bool = False

    @property
    def nbytes(self) -> int:
        return self.count * self.image_size[0] * self.image_size[1] * self.channels

    @property
    def mapped(self) -> bool:
        return self.nbytes > self.memory_limit

    def describe(self) -> str:
        """The first progress line: images, size, estimated bytes and where they go; for large
        images, the size that makes trials about 4 times as fast."""
        height, width = self.image_size
        line = (f"data: {self.count:,} images at {height}x{width}x{self.channels} "
                f"({self.size_reason}), {format_bytes(self.nbytes)} decoded")
        if not self.mapped:
            line = f"{line}, in memory (limit {format_bytes(self.memory_limit)})"
        elif self.reused:
            line = (f"{line}, memory-mapped from {self.cache_path} "
                    "(decoded by an earlier run)")
        else:
            line = (f"{line}, over the memory limit {format_bytes(self.memory_limit)}: "
                    f"memory-mapped in {self.cache_path or 'a temporary file'}")
        half = half_size(self.image_size)
        if half is None:
            return line
        return (f"{line}\ntrials train at this size; {size_option(half)} would make them "
                "about 4 times as fast")


def plan_decoding(index: FileIndex, *, image_size=None, channels=None, memory_limit=None,
                  cache_dir=None) -> DecodePlan:
    """Chooses size, channels and the array's place for decoding `index` (see `decode_index`)."""
    if channels not in (None, 1, 3):
        raise ArgumentError(f"`channels` must be None, 1 or 3. Received: channels={channels!r}")
    if image_size is None:
        image_size, reason = choose_image_size(index.sizes), _size_reason(index.sizes)
    else:
        image_size, reason = _check_image_size(image_size), "as given"
    plan = DecodePlan(
        count=len(index.paths), image_size=image_size,
        channels=channels or choose_channels(index.modes), size_reason=reason,
        memory_limit=default_memory_limit() if memory_limit is None else parse_size(memory_limit),
    )
    if plan.mapped and cache_dir is not None:
        key = _cache_key(index, plan)
        plan.cache_path = os.path.join(os.fspath(cache_dir), f"images-{key}.npy")
        plan.reused = os.path.exists(_manifest_path(plan.cache_path))
    return plan


def _size_reason(sizes) -> str:
    median = median_size(sizes)
    what = "their common size" if len(set(sizes)) == 1 else "the median size"
    if median == choose_image_size(sizes):
        return what
    return f"{what} {median[0]}x{median[1]} scaled to {MAX_DEFAULT_SIDE} on the long side"


def read_image_folder(data_dir, *, image_size=None, channels=None, memory_limit=None,
                      cache_dir=None, on_plan=None, max_pixels=MAX_PIXELS,
                      index=None) -> ImageFolder:
    """Indexes `data_dir` and decodes every image once into one uint8 array.

    Args:
        data_dir: A directory with one sub-folder per class.
        image_size: (height, width) to resize to. Default: the common size of the images,
            or their median size, scaled down to at most 256 pixels on the long side.
        channels: 1 or 3. Default: 1 when every image is grayscale, else 3.
        memory_limit: Bytes, or a size such as "512M" or "2G". Larger decoded images are
            kept in a memory-mapped file instead of RAM. Default: a quarter of the RAM.
        cache_dir: Where the memory-mapped file goes, reused by the next call on the same
            files and settings. Default: an anonymous temporary file.
        on_plan: Called with the `DecodePlan` (size, estimated bytes) before decoding starts.
        max_pixels: Files whose header declares more pixels (height x width) are skipped
            before decoding. Default 40 million.
        index: The `FileIndex` of `data_dir` when the caller made it already (it is not
            made again; `max_pixels` is then the index's).

    Returns:
        An `ImageFolder`.

    Raises:
        DataError: for a missing or empty directory, or fewer than 2 classes.
        ArgumentError: for a bad `image_size`, `channels`, `memory_limit` or `max_pixels`.

    Example:
        >>> folder = read_image_folder("flowers/", image_size=(64, 64))
        >>> folder.images.shape, folder.class_names
    """
    if channels not in (None, 1, 3):
        raise ArgumentError(f"`channels` must be None, 1 or 3. Received: channels={channels!r}")
    if index is None:
        index = index_directory(data_dir, max_pixels=max_pixels)
    folder = decode_index(index, image_size=image_size, channels=channels,
                          memory_limit=memory_limit, cache_dir=cache_dir, on_plan=on_plan)
    _warn_skipped(folder.skipped)
    return folder


def decode_index(index: FileIndex, *, image_size=None, channels=None, memory_limit=None,
                 cache_dir=None, on_plan=None) -> ImageFolder:
    """Decodes the files of an index in parallel (see `read_image_folder`); skipped files are
    listed in the result, not warned about."""
    plan = plan_decoding(index, image_size=image_size, channels=channels,
                         memory_limit=memory_limit, cache_dir=cache_dir)
    if on_plan is not None:
        on_plan(plan)
    if plan.reused:
        images, kept, failed = _load_cache(plan)
    else:
        images, kept, failed = _decode_all(index, plan)
    if not len(kept):
        raise DataError(f"`data_dir` {index.root!r} holds no image that can be decoded.")
    return ImageFolder(
        root=index.root,
        class_names=index.class_names,
        paths=[index.paths[i] for i in kept],
        labels=index.labels[kept],
        images=images,
        skipped=list(index.skipped) + failed,
        max_pixels=index.max_pixels,
    )


def _decode_all(index, plan):
    """Decodes into one preallocated array; returns (images, kept indices, (path, reason)s)."""
    shape = (plan.count, *plan.image_size, plan.channels)
    if plan.cache_path is not None:
        _remove_caches(os.path.dirname(plan.cache_path))
        os.makedirs(os.path.dirname(plan.cache_path), exist_ok=True)
        partial = plan.cache_path[: -len(".npy")] + ".part.npy"
        images = allocate(shape, mapped=True, path=partial)
    else:
        images = allocate(shape, mapped=plan.mapped)
    files = _FilePaths(index.root, index.paths)
    decodings = index.decodings
    decoded = decode_files(files, decodings, images, plan.image_size, plan.channels,
                           ready_files(index, plan.image_size, plan.channels))
    failed = []
    for i in np.flatnonzero(~decoded):  # again one by one, for the reason of each failure
        try:
            images[i] = load_image(tf.constant(files[i]), plan.image_size, plan.channels,
                                   decodings[i]).numpy()
            decoded[i] = True
        except tf.errors.OpError as error:
            failed.append((index.paths[i], f"cannot decode ({_error_reason(error)})"))
    kept = np.flatnonzero(decoded)
    images = _compact(images, kept)
    if plan.cache_path is not None:
        images.flush()
        os.replace(partial, plan.cache_path)
        _write_manifest(plan, kept, failed)
    return images, kept, failed


def decode_files(files, decodings, images, image_size, channels, ready=None) -> np.ndarray:
    """Decodes `files` (as their headers said: `decodings`, see `image_header`) with a parallel
    tf.data map into `images[i]`; returns which succeeded.

    A file that fails is left out of the stream (`ignore_errors`), never stopping the others.
    Each image is decoded, resized and copied into `images` a batch at a time: the full-size
    images in memory at once are only those the map is working on. The files whose headers
    say that they have the size and channels already (`ready`, see `ready_files`) are decoded
    first, without the check and conversion of each file; the others then, with those among
    them that had not after all. The files go to the map `DECODE_CHUNK` at a time.
    """
    decodings = np.asarray(decodings, np.int32)
    ready = np.zeros(len(files), bool) if ready is None else np.asarray(ready, bool)
    decoded = np.zeros(len(files), bool)
    for positions, as_is in ((np.flatnonzero(ready), True), (None, False)):
        positions = np.flatnonzero(~decoded) if positions is None else positions
        for start in range(0, len(positions), DECODE_CHUNK):
            chunk = positions[start:start + DECODE_CHUNK]
            _decode_into(images, decoded, chunk, [files[i] for i in chunk], decodings[chunk],
                         image_size, channels, as_is)
    return decoded


class _FilePaths:
    """The paths of an index's files as bytes (names that are not valid UTF-8 reach TensorFlow
    as they are on disk), each made when read: decoding reads them a chunk at a time, so that
    the paths of all the files are never held twice more (the allocators kept their pages
    after they were freed: 230 bytes a file after decoding, 67 in chunks; results/memory.md)."""

    def __init__(self, root, paths):
        self.root, self.paths = root, paths

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return os.fsencode(os.path.join(self.root, self.paths[i]))


def _decode_into(images, decoded, positions, files, decodings, image_size, channels, ready):
    """One parallel pass of `decode_files` over some of the files (`positions`)."""
    kinds = set(decodings.tolist())
    kind = kinds.pop() if len(kinds) == 1 else None  # one kind: decoded without a switch

    @tf.autograph.experimental.do_not_convert  # plain TensorFlow: nothing to convert
    def load(position, path, decoding):
        decoding = decoding if kind is None else kind
        return position, load_image(path, image_size, channels, decoding, ready)

    files = tf.constant(files, tf.string)  # a list of bytes takes a type check per item
    dataset = tf.data.Dataset.from_tensor_slices((positions, files, decodings)).map(
        load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    size = int(np.clip(DECODE_BYTES // (np.prod(image_size) * channels), 1, DECODE_BATCH))
    for done, batch in dataset.ignore_errors().batch(size).prefetch(2):
        done = done.numpy()
        if (np.diff(done) == 1).all():  # in order, none skipped: one slice
            images[done[0]:done[-1] + 1] = batch.numpy()
        else:
            images[done] = batch.numpy()
        decoded[done] = True


def ready_files(index: FileIndex, image_size, channels) -> np.ndarray:
    """Which files of `index` have `image_size` and `channels` as decoded, from their headers:
    the size as shown and the PIL mode (a guess for a few kinds, e.g. a gray GIF decodes to
    RGB: `load_image` checks it)."""
    modes = READY_MODES[channels]
    return np.array([tuple(size) == tuple(image_size) and mode in modes
                     for size, mode in zip(index.sizes, index.modes)], bool)


def _error_reason(error) -> str:
    """The first line of a TensorFlow error without its op and function names."""
    line = error.message.splitlines()[0] if error.message else type(error).__name__
    return re.sub(r"\s*\[Op:\w+\].*$", "", re.sub(r"^\{\{.*?\}\}\s*", "", line))


def _compact(images, kept):
    """Moves the decoded images to the front (skipped files leave holes); returns that part."""
    for target, source in enumerate(kept):
        if target != source:
            images[target] = images[source]
    return images[: len(kept)]


# -- the memory-mapped cache of a run directory --------------------------------------------
def _cache_key(index, plan) -> str:
    """Changes with any file (path, label, size, modification time) or decoding setting."""
    digest = hashlib.sha256(f"{CACHE_VERSION} {plan.image_size} {plan.channels}\n".encode())
    for path, label in zip(index.paths, index.labels):
        try:
            stat = os.stat(os.path.join(index.root, path))
            facts = f"{stat.st_size} {stat.st_mtime_ns}"
        except OSError:  # gone since it was listed: decoding will skip it
            facts = "missing"
        digest.update(os.fsencode(f"{label} {facts} {path}\n"))
    return digest.hexdigest()[:16]


def _manifest_path(cache_path) -> str:
    return cache_path[: -len(".npy")] + ".json"


def _write_manifest(plan, kept, failed):
    """Written last: a cache without its manifest is incomplete and never reused."""
    manifest = {"kept": kept.tolist(), "failed": failed}
    partial = _manifest_path(plan.cache_path) + ".part"
    with open(partial, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle)
    os.replace(partial, _manifest_path(plan.cache_path))


def _load_cache(plan):
    with open(_manifest_path(plan.cache_path), encoding="utf-8") as handle:
        manifest = json.load(handle)
    kept = np.asarray(manifest["kept"], np.int64)
    images = np.load(plan.cache_path, mmap_mode="r")[: len(kept)]
    return images, kept, [tuple(item) for item in manifest["failed"]]


def _remove_caches(cache_dir):
    """Deletes earlier caches (other files or settings): a run directory keeps one."""
    if os.path.isdir(cache_dir):
        for name in os.listdir(cache_dir):
            if name.startswith("images-"):
                os.remove(os.path.join(cache_dir, name))
