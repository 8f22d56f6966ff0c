"""Subsets of the decoded images by index arrays, without copying them.

A trial trains on `images[train]` and validates on `images[val]`, for every fold: as numpy
copies that is most of the data again per trial, and a memory-mapped array would be read into
RAM. A `Subset` keeps only the indices. Indexing it gives another `Subset`; `np.asarray` reads
the images it names (the statistics read chunks of it, see `autoprep.data.stats`); and
`load_batch` reads one batch of them inside a tf.data pipeline, so a trial's datasets hold
indices and gather each batch from the one array.
"""

import numpy as np
import tensorflow as tf


class Subset:
    """The images `images[indices]` of a uint8 array (or memory map), read only when needed.

    Args:
        images: The full array, shape (n, height, width, channels).
        indices: Positions in `images` (default: all of them, in order).

    Example:
        >>> train_images = Subset(folder.images)[train]  # nothing is copied
        >>> first = np.asarray(train_images[:8])  # reads 8 images
    """

    def __init__(self, images, indices=None):
        self.images = images
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices)

    @classmethod
    def of(cls, images) -> "Subset":
        """`images` itself when a `Subset`, else all of `images` (an array or array-like)."""
        if isinstance(images, Subset):
            return images
        return cls(images if hasattr(images, "shape") else np.asarray(images))

    @property
    def shape(self) -> tuple:
        return (len(self.indices), *self.images.shape[1:])

    @property
    def dtype(self):
        return self.images.dtype

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, key):
        indices = self.indices[key]
        if np.ndim(indices) == 0:
            return np.asarray(self.images[int(indices)])
        return Subset(self.images, indices)

    def __array__(self, dtype=None, copy=None):
        array = np.asarray(self.images[self.indices])
        return array if dtype is None else array.astype(dtype)

    def load_batch(self, indices):
        """The images at a batch of positions in the full array: a tf.data map function."""
        batch = tf.numpy_function(self._gather, [indices], tf.uint8, stateful=False)
        return tf.ensure_shape(batch, [None, *self.images.shape[1:]])

    def _gather(self, indices):
        return np.asarray(self.images[indices])
