"""Data checks: what is wrong with the image folder itself, before any model sees it.

Every check reads a `DataContext`, which indexes and decodes the folder once (with the same
`autoprep.data` functions `tune` uses) and computes shared statistics lazily.
"""

import functools
import warnings

import numpy as np

from autoprep.data.decode import decode_index
from autoprep.data.index import (
    GRAY_MODES,
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    choose_image_size,
    index_directory,
)
from autoprep.data.splits import make_splits
from autoprep.data.stats import (
    DARK_MEAN,
    IMBALANCE_RATIO,
    LOW_CONTRAST_STD,
    channel_histograms,
    histogram_mean_std,
    histogram_percentiles,
)
from autoprep.doctor._checks import DATA_CHECKS, register
from autoprep.doctor._hashing import (
    content_digests,
    mirrored_pairs,
    near_duplicate_pairs,
    perceptual_hashes,
)
from autoprep.doctor.report import Finding, number
from autoprep.errors import DataError

NEAR_CONSTANT_STD = 1.0  # per-image pixel std (0-255 scale) below which an image is blank
MAX_HASH_DISTANCE = 4  # pHash bits two near-duplicate images may differ in
SMALL_SIDE = 64  # `DataContext.small`: images at most this many pixels a side
_LISTED = 5  # how many paths or pairs an evidence line names
_STD_CHUNK = 64  # images per chunk of the per-image standard deviation

_BIT_DEPTHS = {"1": 1, "I;16": 16, "I;16B": 16, "I;16L": 16, "I;16N": 16, "I": 32, "F": 32}
_SIDES = ("train", "validation", "test")


def bit_depth(mode) -> int:
    """Bits per channel of a PIL image mode (8 for the usual L, P, RGB, RGBA)."""
    return _BIT_DEPTHS.get(mode, 8)


def listing(items, limit=_LISTED) -> str:
    """The first `limit` items joined by ", ", with how many more there are."""
    items = [str(item) for item in items]
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def counted(values) -> dict:
    """Value -> count, most frequent first."""
    keys, counts = np.unique([str(value) for value in values], return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {str(keys[i]): int(counts[i]) for i in order}


class DataContext:
    """The folder as the doctor examines it: file index, decoded images, and lazy statistics.

    Args:
        data_dir: A directory with one sub-folder per class.
        seed: Seed of the train/validation/test split checked for leakage (as `tune(seed=...)`).
        max_pixels: Image files whose header declares more pixels are skipped.
        model_fn: The user's model function, for the checks that train a model (label issues).

    Raises:
        DataError: for a missing directory, fewer than 2 classes, or no decodable image.
    """

    def __init__(self, data_dir, *, seed=0, max_pixels=MAX_PIXELS, model_fn=None):
        self.seed = seed
        self.model_fn = model_fn
        self.index = index_directory(data_dir, max_pixels=max_pixels)
        self.folder = decode_index(self.index)  # skipped files become a finding, not a warning

    @property
    def class_names(self) -> list:
        return self.folder.class_names

    @functools.cached_property
    def counts(self) -> np.ndarray:
        return np.bincount(self.folder.labels, minlength=len(self.class_names))

    @property
    def class_counts(self) -> dict:
        return {n: int(c) for n, c in zip(self.class_names, self.counts, strict=True)}

    @functools.cached_property
    def imbalance_ratio(self) -> float:
        return float(self.counts.max() / max(self.counts.min(), 1))

    @functools.cached_property
    def image_std(self) -> np.ndarray:
        """Pixel standard deviation of each image, over all its pixels and channels."""
        images = self.folder.images
        return np.concatenate([
            image_std(images[start:start + _STD_CHUNK])
            for start in range(0, len(images), _STD_CHUNK)
        ])

    @functools.cached_property
    def histograms(self) -> np.ndarray:
        """Counts of each pixel value 0-255 per channel, shape (channels, 256)."""
        return channel_histograms(self.folder.images)

    @functools.cached_property
    def pixel_range(self) -> tuple:
        """The smallest and largest pixel value of the folder."""
        present = np.flatnonzero(self.histograms.sum(axis=0))
        return int(present[0]), int(present[-1])

    @functools.cached_property
    def channel_mean_std(self) -> tuple:
        """Per-channel pixel mean and standard deviation (float64 arrays)."""
        return histogram_mean_std(self.histograms)

    @functools.cached_property
    def small(self) -> np.ndarray:
        """Every image area-averaged to at most `SMALL_SIDE` pixels a side (float32, 0-255),
        for the checks that need no more detail (label issues, shortcuts)."""
        import tensorflow as tf

        images = self.folder.images
        size = (min(SMALL_SIDE, images.shape[1]), min(SMALL_SIDE, images.shape[2]))
        return np.concatenate([
            tf.image.resize(images[start:start + 256], size, method="area").numpy()
            for start in range(0, len(images), 256)])

    @functools.cached_property
    def constant(self) -> np.ndarray:
        return self.image_std < NEAR_CONSTANT_STD

    @functools.cached_property
    def split(self):
        """The `Splits` `tune` would make with this seed, or the DataError it would raise."""
        try:
            with warnings.catch_warnings():  # classes kept in training: `class_too_small` says it
                warnings.simplefilter("ignore", UserWarning)
                return make_splits(self.folder.labels, self.class_names, seed=self.seed)
        except DataError as error:
            return error

    @functools.cached_property
    def sides(self):
        """Index into `_SIDES` per image, or None when the split is impossible."""
        if isinstance(self.split, DataError):
            return None
        sides = np.zeros(len(self.folder.labels), dtype=int)
        train, validation = self.split.folds[0]
        sides[validation], sides[self.split.test] = 1, 2
        return sides

    @functools.cached_property
    def hashes(self) -> tuple:
        """(indices, hashes, mirrored): the non-blank images, their pHashes and those of their
        mirror images."""
        candidates = np.flatnonzero(~self.constant)
        return (candidates, *perceptual_hashes(self.folder.images[candidates], mirror=True))

    @functools.cached_property
    def duplicates(self) -> tuple:
        """(pairs, exact): near-duplicate pairs of non-blank images, and which are identical."""
        candidates, hashes, _ = self.hashes
        pairs, _ = near_duplicate_pairs(hashes, max_distance=MAX_HASH_DISTANCE)
        digests = content_digests(self.folder.images[candidates])
        exact = digests[pairs[:, 0]] == digests[pairs[:, 1]] if len(pairs) else np.zeros(0, bool)
        return candidates[pairs].reshape(-1, 2), exact

    @functools.cached_property
    def mirrored(self) -> np.ndarray:
        """Pairs where one image is a near-duplicate of the other flipped left to right, and
        not of the image itself (those are in `duplicates`)."""
        candidates, hashes, mirrored = self.hashes
        pairs = candidates[mirrored_pairs(hashes, mirrored, max_distance=MAX_HASH_DISTANCE)]
        known = {(int(i), int(j)) for i, j in self.duplicates[0]}
        return np.array([p for p in pairs.reshape(-1, 2) if tuple(p) not in known],
                        dtype=np.int64).reshape(-1, 2)

    def pair_names(self, pairs, exact) -> list:
        paths = self.folder.paths
        kinds = np.where(exact, "==", "~")
        return [f"{paths[i]} {kind} {paths[j]}" for (i, j), kind in zip(pairs, kinds, strict=True)]

    def summary(self) -> dict:
        return {
            "images": len(self.folder.paths),
            "files_skipped": len(self.folder.skipped),
            "classes": len(self.class_names),
            "class_names": list(self.class_names),
            "class_counts": self.class_counts,
            "image_size": list(self.folder.image_size),
            "channels": self.folder.channels,
        }


def image_std(images) -> np.ndarray:
    """Pixel standard deviation of each uint8 image, exactly, from integer sums (a float64
    `std` of photos takes ten times as long); exact up to 10 million values an image."""
    flat = images.reshape(len(images), -1)
    size = flat.shape[1]
    total = flat.sum(axis=1, dtype=np.int64)
    wide = flat.astype(np.uint16)
    squares = np.einsum("ij,ij->i", wide, wide, dtype=np.uint64).astype(np.int64)
    return np.sqrt((size * squares - total * total) / float(size) ** 2)


def _data_check(name, priority):
    return register(DATA_CHECKS, name, priority=priority)


@_data_check("corrupt_files", priority=2)
def check_corrupt_files(ctx):
    """Image files that cannot be read or decoded (autoprep would skip them)."""
    bad = [(p, why) for p, why in ctx.folder.skipped if p.lower().endswith(IMAGE_EXTENSIONS)]
    if bad:
        yield Finding(
            "corrupt_files", "error", f"{len(bad)} image file(s) cannot be read",
            listing(f"{path} ({why})" for path, why in bad),
            "Delete or re-export these files; training silently runs without them.",
            data={"files": [{"path": p, "reason": why} for p, why in bad]},
        )


@_data_check("unread_folders", priority=4)
def check_unread_folders(ctx):
    """Folders below the class folders that were not read: cannot be listed, or linked from
    outside the data folder."""
    folders = [(p, why) for p, why in ctx.folder.skipped if p.endswith("/")]
    if folders:
        yield Finding(
            "unread_folders", "warning", f"{len(folders)} folder(s) were not read",
            listing(f"{path} ({why})" for path, why in folders),
            "Make these folders readable, or copy linked images into the data folder; "
            "autoprep follows symbolic links only within it.",
            data={"folders": [{"path": p, "reason": why} for p, why in folders]},
        )


@_data_check("ignored_files", priority=40)
def check_ignored_files(ctx):
    """Files in class folders that are not images autoprep reads."""
    other = [path for path, _ in ctx.folder.skipped
             if not path.lower().endswith(IMAGE_EXTENSIONS) and not path.endswith("/")]
    if other:
        yield Finding(
            "ignored_files", "info", f"{len(other)} non-image file(s) are ignored",
            listing(other), f"Only {', '.join(IMAGE_EXTENSIONS)} files are read; move others out.",
            data={"files": other},
        )


@_data_check("already_normalized", priority=3)
def check_already_normalized(ctx):
    """Pixels stored in 0-1: images saved after normalization lose nearly all information."""
    if ctx.pixel_range[1] <= 1:
        values = np.flatnonzero(ctx.histograms.sum(axis=0)).tolist()
        yield Finding(
            "already_normalized", "error", "Every pixel is 0 or 1: the images were saved already "
            "normalized", "The decoded 8-bit pixel values only take the values "
            f"{values}; values in [0, 1] were rounded "
            "when the files were written.",
            "Re-export the original 0-255 images and normalize in the input pipeline instead.",
            dimension="normalization",
        )


@_data_check("class_too_small", priority=8)
def check_class_too_small(ctx):
    """Classes too small for the stratified train/validation/test split `tune` makes."""
    if isinstance(ctx.split, DataError):
        yield Finding(
            "class_too_small", "error", "Some classes are too small to split", str(ctx.split),
            "Add images to the named classes or remove them; `autoprep tune` cannot split "
            "the data otherwise.",
        )
    else:
        labels = ctx.folder.labels
        untested = [name for c, name in enumerate(ctx.class_names)
                    if len(ctx.split.test) and not np.any(labels[ctx.split.test] == c)]
        if ctx.split.train_only or untested:
            named = ", ".join(map(repr, dict.fromkeys([*ctx.split.train_only, *untested])))
            yield Finding(
                "class_too_small", "warning", "Some classes are too small to validate or test",
                f"Classes {named}: `autoprep tune` can keep them in training only (never "
                "validated) or has no test image of them, so neither the search nor the test "
                "score can tell how well they are learned.",
                "Add images to the named classes (a few dozen each), or remove them.",
            )


def _duplicate_groups(ctx):
    """Duplicate pairs split into (conflicting labels, leaking across the split, same side)."""
    pairs, exact = ctx.duplicates
    labels = ctx.folder.labels
    conflicting = labels[pairs[:, 0]] != labels[pairs[:, 1]]
    if ctx.sides is None:
        leaking = np.zeros(len(pairs), dtype=bool)
    else:
        leaking = ~conflicting & (ctx.sides[pairs[:, 0]] != ctx.sides[pairs[:, 1]])
    return pairs, exact, conflicting, leaking


@_data_check("conflicting_labels", priority=7)
def check_conflicting_labels(ctx):
    """The same (or nearly the same) image filed under two different classes."""
    pairs, exact, conflicting, _ = _duplicate_groups(ctx)
    if conflicting.any():
        names = ctx.pair_names(pairs[conflicting], exact[conflicting])
        yield Finding(
            "conflicting_labels", "error",
            f"{len(names)} duplicate pair(s) carry different labels",
            listing(names) + " (== identical pixels, ~ near-duplicate)",
            "Decide which class each image belongs to and delete the other copy; a model "
            "cannot learn two labels for one image.",
            data={"pairs": names},
        )


@_data_check("split_leakage", priority=13)
def check_split_leakage(ctx):
    """Duplicates (identical, near-duplicate or mirrored copies within one class) that land on
    both sides of the train/validation/test split."""
    pairs, exact, _, leaking = _duplicate_groups(ctx)
    mirrored = _leaking(ctx, ctx.mirrored)
    if leaking.any() or len(mirrored):
        names = ctx.pair_names(pairs[leaking], exact[leaking])
        names += ctx.pair_names(mirrored, np.zeros(len(mirrored), bool))
        sides = ctx.sides[np.concatenate([pairs[leaking], mirrored])]
        crossings = counted(f"{_SIDES[a]}/{_SIDES[b]}" for a, b in np.sort(sides, axis=1))
        kinds = {"identical": int(exact[leaking].sum()),
                 "near_duplicates": int((~exact[leaking]).sum()), "mirrored": len(mirrored)}
        yield Finding(
            "split_leakage", "warning",
            f"{len(names)} duplicate pair(s) leak across the train/validation/test split",
            f"With seed={ctx.seed}: {listing(f'{k} {v}' for k, v in crossings.items())}; "
            f"{kinds['identical']} identical, {kinds['near_duplicates']} near-duplicate (pHash "
            f"within {MAX_HASH_DISTANCE} of 64 bits), {kinds['mirrored']} mirrored copies. "
            f"{listing(names)}. Validation and test scores are inflated by memorised images.",
            "Remove the duplicates (keep one copy of each) before tuning.",
            data={"pairs": names, "crossings": crossings, **kinds},
        )


def _leaking(ctx, pairs) -> np.ndarray:
    """The pairs of one class whose images are on different sides of the split."""
    if ctx.sides is None or not len(pairs):
        return pairs[:0]
    labels, sides = ctx.folder.labels, ctx.sides
    same = labels[pairs[:, 0]] == labels[pairs[:, 1]]
    return pairs[same & (sides[pairs[:, 0]] != sides[pairs[:, 1]])]


@_data_check("duplicate_images", priority=19)
def check_duplicate_images(ctx):
    """Duplicates within one class on the same side of the split (they are over-weighted)."""
    pairs, exact, conflicting, leaking = _duplicate_groups(ctx)
    same = ~conflicting & ~leaking
    if same.any():
        names = ctx.pair_names(pairs[same], exact[same])
        yield Finding(
            "duplicate_images", "info", f"{len(names)} duplicate pair(s) within a class",
            f"{int(exact[same].sum())} identical, {int((~exact[same]).sum())} near-duplicate: "
            f"{listing(names)}.", "Remove the extra copies; they count twice in training.",
            data={"pairs": names},
        )


@_data_check("constant_images", priority=10)
def check_constant_images(ctx):
    """Blank images: (nearly) a single pixel value."""
    blank = np.flatnonzero(ctx.constant)
    if len(blank):
        paths = [ctx.folder.paths[i] for i in blank]
        yield Finding(
            "constant_images", "warning", f"{len(blank)} image(s) are blank (nearly constant)",
            f"Pixel std below {number(NEAR_CONSTANT_STD)} of 255: {listing(paths)}.",
            "Delete them or fix the export that produced them; they carry no information "
            "but still have a label.",
            data={"files": paths},
        )


@_data_check("mixed_channels", priority=11)
def check_mixed_channels(ctx):
    """Grayscale and color images mixed in one data set."""
    gray = np.array([mode in GRAY_MODES for mode in ctx.index.modes])
    if gray.any() and not gray.all():
        paths = [p for p, g in zip(ctx.index.paths, gray, strict=True) if g]
        yield Finding(
            "mixed_channels", "warning",
            f"Grayscale and color images are mixed ({int(gray.sum())} gray, "
            f"{int((~gray).sum())} color)",
            f"Modes {counted(ctx.index.modes)}; grayscale: {listing(paths)}.",
            "Convert all images to one mode; autoprep copies gray images into 3 channels, so "
            "a class with many gray images can be told apart by color alone.",
            data={"gray_files": paths, "modes": counted(ctx.index.modes)},
        )


@_data_check("bit_depth", priority=12)
def check_bit_depth(ctx):
    """Images that are not 8 bits per channel, or a mix of bit depths."""
    depths = np.array([bit_depth(mode) for mode in ctx.index.modes])
    deep = [p for p, d in zip(ctx.index.paths, depths, strict=True) if d > 8]
    mixed = len(set(depths.tolist())) > 1
    if deep or mixed:
        yield Finding(
            "mixed_bit_depths" if mixed else "high_bit_depth", "warning",
            f"Bits per channel: {counted(depths)}",
            f"Images with more than 8 bits: {listing(deep) or 'none'}. They are decoded to 8 "
            "bits, so their scale may differ from the 8-bit images.",
            "Export every image at 8 bits with the same value range.",
            dimension="normalization",
            data={"bit_depths": counted(depths), "deep_files": deep},
        )


@_data_check("mixed_sizes", priority=17)
def check_mixed_sizes(ctx):
    """Images of different sizes (all are resized to one size) or aspect ratios."""
    sizes = counted(f"{h}x{w}" for h, w in ctx.index.sizes)
    if len(sizes) > 1:
        aspects = [w / h for h, w in ctx.index.sizes]
        distorted = max(aspects) / min(aspects) > 1.1
        height, width = choose_image_size(ctx.index.sizes)
        yield Finding(
            "mixed_sizes", "warning" if distorted else "info",
            f"{len(sizes)} different image sizes" + (" and aspect ratios" if distorted else ""),
            f"Sizes (HxW): {listing(f'{k} ({v})' for k, v in sizes.items())}; autoprep resizes "
            f"all to {height}x{width}" + (", distorting shapes." if distorted else "."),
            "Crop or pad to one aspect ratio, or pass `image_size=`; random crops/zoom "
            "augmentation makes the model robust to the rest.",
            dimension="augmentation", data={"sizes": sizes},
        )


@_data_check("mixed_modes", priority=18)
def check_mixed_modes(ctx):
    """Several PIL modes (e.g. RGB with RGBA or palette images)."""
    modes = counted(ctx.index.modes)
    if len(modes) > 1:
        yield Finding(
            "mixed_modes", "info", f"{len(modes)} image modes: {modes}",
            "Alpha is composited on white and palette images are expanded when decoding.",
            "Convert every image to one mode (e.g. RGB) when exporting.",
            data={"modes": modes},
        )


@_data_check("class_imbalance", priority=14)
def check_class_imbalance(ctx):
    """A largest-to-smallest class ratio that biases training towards the majority."""
    if ctx.imbalance_ratio >= IMBALANCE_RATIO:
        counts = ctx.class_counts
        yield Finding(
            "class_imbalance", "warning",
            f"Classes are imbalanced {number(ctx.imbalance_ratio, 2)}:1",
            f"Images per class: {listing(f'{k} {v}' for k, v in counts.items())}.",
            "Reweight or resample the classes (autoprep searches this), or collect more "
            "images of the small classes.",
            dimension="imbalance", data={"counts": counts, "ratio": ctx.imbalance_ratio},
        )


@_data_check("dark_images", priority=15)
def check_dark_images(ctx):
    """A data set whose pixels use only the dark end of the 0-255 range."""
    counts = ctx.histograms.sum(axis=0)  # every channel's pixels together
    mean = float(histogram_mean_std(counts[None])[0][0])
    if mean < DARK_MEAN and ctx.pixel_range[1] > 1:
        top = histogram_percentiles(counts[None], [99])[0, 0]
        yield Finding(
            "dark_images", "warning", f"The images are dark (mean pixel {number(mean)} of 255)",
            f"99th percentile pixel {number(top)}; fed raw, the inputs are "
            "small and uneven across images.",
            "Standardize the inputs (per channel or per image) rather than only dividing by "
            "255; autoprep's normalization search tries this.",
            dimension="normalization",
        )


@_data_check("low_contrast", priority=16)
def check_low_contrast(ctx):
    """Images whose pixel values barely vary."""
    std = float(np.median(ctx.image_std[~ctx.constant])) if (~ctx.constant).any() else 0.0
    if 0 < std < LOW_CONTRAST_STD and ctx.pixel_range[1] > 1:
        yield Finding(
            "low_contrast", "warning",
            f"The images have low contrast (median pixel std {number(std)})",
            "Pixel values vary little within an image, so features are faint after scaling "
            "to [0, 1].",
            "Standardize per image (autoprep's `per_image` normalization) or apply contrast "
            "augmentation.",
            dimension="normalization",
        )


@_data_check("pixel_statistics", priority=45)
def check_pixel_statistics(ctx):
    """Pixel range and per-channel mean and std (always reported)."""
    (low, high), (mean, std) = ctx.pixel_range, ctx.channel_mean_std
    yield Finding(
        "pixel_statistics", "info", "Pixel statistics",
        f"Range {low}-{high}; per-channel mean [{', '.join(map(number, mean))}], "
        f"std [{', '.join(map(number, std))}].",
        "Models train best on inputs of mean ~0 and std ~1; normalize in the pipeline.",
        dimension="normalization",
        data={"min": low, "max": high, "mean": mean.tolist(), "std": std.tolist()},
    )


@_data_check("class_counts", priority=46)
def check_class_counts(ctx):
    """Images per class and the imbalance ratio (always reported)."""
    counts = ctx.class_counts
    yield Finding(
        "class_counts", "info", f"{len(counts)} classes, imbalance ratio "
        f"{number(ctx.imbalance_ratio, 2)}:1", listing((f"{k} {v}" for k, v in counts.items()), 10),
        "Nothing to do unless another finding mentions the classes.",
        data={"counts": counts, "ratio": ctx.imbalance_ratio},
    )
