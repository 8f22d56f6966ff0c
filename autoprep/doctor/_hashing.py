"""Perceptual hashes and near-duplicate search, vectorised with numpy.

The hash is the 64-bit DCT pHash (as in the `imagehash` package): the image is made gray and
resampled to 32x32, the 8x8 lowest DCT frequencies are compared with their median. Resampling
and DCT are one matrix product per side, so a batch of images is hashed with one `einsum`.

Near duplicates are found with locality-sensitive bands instead of comparing all pairs: the 64
bits are split into `max_distance + 1` bands, and two hashes within `max_distance` bits of each
other agree exactly on at least one band (pigeonhole). Only pairs sharing a band are compared.
"""

import hashlib

import numpy as np

_HASH_SIDE = 32
_LOW_FREQUENCIES = 8


def _area_matrix(size_in, size_out):
    """(size_out, size_in) matrix averaging input pixels over each output pixel's span."""
    edges = np.arange(size_out + 1) * (size_in / size_out)
    starts, ends = edges[:-1, None], edges[1:, None]
    pixels = np.arange(size_in)[None, :]
    overlap = np.clip(np.minimum(ends, pixels + 1) - np.maximum(starts, pixels), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def _dct_matrix(size, rows):
    """The first `rows` rows of the (unnormalised) DCT-II matrix of `size` points."""
    k = np.arange(rows)[:, None]
    x = np.arange(size)[None, :]
    return np.cos(np.pi * (2 * x + 1) * k / (2 * size))


def area_resize(images, height, width, *, batch_size=128) -> np.ndarray:
    """uint8 images (n, h, w, channels) resampled by area averaging to (n, height, width,
    channels), float32 in 0-255: two matrix products per batch."""
    _, h, w, _ = images.shape
    rows = _area_matrix(h, height).astype(np.float32)
    cols = _area_matrix(w, width).astype(np.float32)
    parts = [np.einsum("ah,nhwc,bw->nabc", rows, images[s:s + batch_size].astype(np.float32),
                       cols, optimize=True) for s in range(0, len(images), batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, height, width, images.shape[3]),
                                                          np.float32)


def perceptual_hashes(images, *, mirror=False, batch_size=2048):
    """64-bit DCT pHashes of uint8 images of shape (n, height, width, channels), as uint64.

    With `mirror=True`, returns (hashes, mirrored): also the hashes of the images flipped left
    to right, from the same pass over the pixels.
    """
    _, height, width, _ = images.shape
    dct = _dct_matrix(_HASH_SIDE, _LOW_FREQUENCIES)
    rows = (dct @ _area_matrix(height, _HASH_SIDE)).astype(np.float32)
    cols = (dct @ _area_matrix(width, _HASH_SIDE)).astype(np.float32)
    sides = [cols, np.ascontiguousarray(cols[:, ::-1])] if mirror else [cols]
    hashes = [[] for _ in sides]
    for start in range(0, len(images), batch_size):
        gray = images[start:start + batch_size].mean(axis=-1, dtype=np.float32)
        for found, side in zip(hashes, sides):
            coefficients = np.einsum("ah,nhw,bw->nab", rows, gray, side, optimize=True)
            coefficients = coefficients.reshape(len(gray), -1)
            bits = coefficients > np.median(coefficients, axis=1, keepdims=True)
            found.append(np.packbits(bits, axis=1).view(">u8").ravel())
    hashes = [np.concatenate(h).astype(np.uint64) if h else np.zeros(0, np.uint64)
              for h in hashes]
    return tuple(hashes) if mirror else hashes[0]


def content_digests(images) -> np.ndarray:
    """One digest per image of its decoded pixels: equal digests mean pixel-identical images."""
    return np.array([hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images])


def _band_candidates(hashes, low, high):
    """Index pairs (i < j) whose hashes agree on bits [low, high)."""
    keys = (hashes >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    sizes = np.diff(np.r_[starts, len(keys)])
    pairs = [np.empty((0, 2), dtype=np.int64)]
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        members = np.sort(order[start:start + size])
        first, second = np.triu_indices(size, 1)
        pairs.append(np.stack([members[first], members[second]], axis=1))
    return np.concatenate(pairs)


def hamming(a, b) -> np.ndarray:
    """Bitwise Hamming distances between two arrays of uint64 hashes."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def near_duplicate_pairs(hashes, *, max_distance=6) -> tuple:
    """All index pairs whose hashes differ in at most `max_distance` bits, without comparing all.

    Returns:
        (pairs, distances): an int array of shape (m, 2) with i < j, and the m distances.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    bands = zip(edges[:-1], edges[1:], strict=True)
    candidates = [_band_candidates(hashes, low, high) for low, high in bands]
    pairs = np.unique(np.concatenate(candidates), axis=0)
    if len(pairs) == 0:
        return pairs, np.zeros(0, dtype=np.int64)
    distances = hamming(hashes[pairs[:, 0]], hashes[pairs[:, 1]])
    close = distances <= max_distance
    return pairs[close], distances[close]


def mirrored_pairs(hashes, mirrored, *, max_distance=6) -> np.ndarray:
    """Index pairs (i < j) where one image is within `max_distance` bits of the other's mirror
    image (`mirrored`: the hashes of the flipped images), found with the same banded search."""
    n = len(hashes)
    both = np.concatenate([np.asarray(hashes, np.uint64), np.asarray(mirrored, np.uint64)])
    pairs, _ = near_duplicate_pairs(both, max_distance=max_distance)
    pairs = pairs[(pairs[:, 0] < n) & (pairs[:, 1] >= n)]  # an image and a mirror image
    pairs = np.sort(np.stack([pairs[:, 0], pairs[:, 1] - n], axis=1), axis=1)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]  # a symmetric image is its own mirror
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)
