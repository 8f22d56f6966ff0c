"""Per-channel pixel statistics of uint8 images without a float copy of the data.

A uint8 channel takes only 256 values, so its histogram holds everything the normalizations
learn: mean and standard deviation (weighted sums over the 256 values, in float64) and any
percentile, exactly. The histograms are counted in chunks of images, so the memory used on
top of the images stays a few megabytes whatever their number, and a memory-mapped array is
read once, in order.

What counts as dark, low-contrast or imbalanced data is also defined here, once: the doctor
warns about such data and the search space's first configurations answer it. Facts about the
whole data set read at most `STATS_IMAGES` images, drawn by `subsample`.
"""

import numpy as np

CHUNK_VALUES = 1 << 22  # pixel values per chunk: 4 MiB of uint8, 32 MiB once bincount widens it
_VALUES = np.arange(256, dtype=np.float64)

DARK_MEAN = 40.0  # mean pixel value (0-255) below which the data set is dark
LOW_CONTRAST_STD = 12.0  # median per-image std below which the data set is low-contrast
IMBALANCE_RATIO = 4.0  # largest / smallest class count that deserves a warning
STATS_IMAGES = 2000  # images read at most for facts about the data (the search's first points)


def subsample(indices, seed, *, limit: int = STATS_IMAGES) -> np.ndarray:
    """`indices`, or `limit` of them drawn without replacement with `seed`, sorted."""
    indices = np.asarray(indices)
    if len(indices) <= limit:
        return indices
    return np.sort(np.random.default_rng(seed).choice(indices, limit, replace=False))


def channel_histograms(images) -> np.ndarray:
    """Counts of each value 0-255 per channel, shape (channels, 256), of uint8 images (n, ..., c).

    `images` may be any array-like with `shape`, `dtype` and slicing along the first axis (a
    numpy array, a memory map, or a lazy subset of one); chunks of images are read one at a time.
    """
    if np.dtype(images.dtype) != np.uint8:
        raise TypeError(f"Expected uint8 images. Received dtype {images.dtype}")
    channels = images.shape[-1]
    per_image = max(1, int(np.prod(images.shape[1:])))
    step = max(1, CHUNK_VALUES // per_image)
    counts = np.zeros((channels, 256), np.int64)
    for start in range(0, images.shape[0], step):
        pixels = np.asarray(images[start:start + step]).reshape(-1, channels)
        for channel in range(channels):
            counts[channel] += np.bincount(pixels[:, channel], minlength=256)
    return counts


def histogram_mean_std(counts) -> tuple:
    """Per-channel mean and (population) standard deviation from `channel_histograms`."""
    counts = np.asarray(counts, np.float64)
    total = counts.sum(axis=1)
    mean = counts @ _VALUES / total
    variance = (counts * (_VALUES[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
    return mean, np.sqrt(variance)


def histogram_percentiles(counts, percentiles) -> np.ndarray:
    """Per-channel percentiles, shape (len(percentiles), channels), as `np.percentile` computes
    them (linear interpolation between the two nearest ranks) on the pixels themselves."""
    counts = np.asarray(counts, np.int64)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    result = np.empty((len(percentiles), counts.shape[0]))
    for row, percentile in enumerate(percentiles):
        for channel, n in enumerate(total):
            position = percentile / 100 * (n - 1)
            below = int(np.floor(position))
            low, high = np.searchsorted(cumulative[channel], [below + 1, min(below + 2, n)])
            result[row, channel] = _lerp(float(low), float(high), position - below)
    return result


def _lerp(a, b, t):
    """Linear interpolation written as numpy's percentile writes it (same float rounding)."""
    return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t
