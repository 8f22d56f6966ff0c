"""The exported module's own functions: list and split the files, decode them, build datasets.

`render_module` copies every function of `RUNTIME_FUNCTIONS` verbatim (with `function_source`)
after the pipeline-specific parts, so these functions may use only the standard library,
TensorFlow and the names the exported module defines. Those names are declared below with
neutral values, so the functions run (and are tested) here as they will run there; the
exported module sets the real ones (class names, image size, the chosen normalization and
sampler, ...). The library lists files with the same `walk_class_files`.
"""

import os
import random
import struct
import warnings

import tensorflow as tf

from autoprep.choices.imbalance import natural_sampler as sample
from autoprep.choices.pipeline import build_eval_dataset, build_train_dataset
from autoprep.data.image import load_image
from autoprep.data.index import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    _exif_orientation,
    _file_problem,
    _jpeg_header,
    _link_problem,
    _walk_folder,
    _webp_size,
    header_problem,
    image_header,
    pixels_problem,
    walk_class_files,
)

# -- Names the exported module defines; neutral stand-ins here ----------------------------
CLASS_NAMES = []
IMAGE_SIZE = (8, 8)
CHANNELS = 1
SKIPPED_FILES = frozenset()
ONE_HOT_LABELS = False
DATASET_CLASS_WEIGHTS = None
CLASS_WEIGHT_GATE = None


def preprocess(images):
    """Stand-in for the exported normalization: pixels as floats."""
    return tf.cast(images, tf.float32)


def make_augmentation_layers():
    """Stand-in for the exported augmentation layers: none."""
    return []


def make_mix_layer():
    """Stand-in for the exported MixUp/CutMix layer: none."""


# -- The functions copied into the exported module ----------------------------------------
def list_files(data_dir, *, max_pixels=MAX_PIXELS):
    """Lists (paths, labels) of a class-per-folder directory, as autoprep indexed it.

    Files autoprep skipped are left out; so is, with a warning naming it and the reason, any
    other file that cannot be used: not a regular file, a symbolic link leaving `data_dir`, a
    folder that cannot be listed, or a header that cannot be read or declares more than
    `max_pixels` pixels.
    """
    paths, labels, skipped = [], [], []
    for relative, label, reason in walk_class_files(data_dir, CLASS_NAMES):
        image = relative.endswith("/") or relative.lower().endswith(IMAGE_EXTENSIONS)
        if not image or relative in SKIPPED_FILES:
            continue
        path = os.path.join(data_dir, relative)
        reason = reason or header_problem(path, max_pixels)
        if reason is None:
            paths.append(path)
            labels.append(label)
        else:
            skipped.append(f"  {relative!r}: {reason}")  # repr: no control codes
    if skipped:
        warnings.warn(f"skipped {len(skipped)} file(s):\n" + "\n".join(skipped), stacklevel=2)
    return paths, labels


def split_files(paths, labels, *, validation_split, seed):
    """Stratified, deterministic split of (paths, labels) into training and validation."""
    rng = random.Random(seed)
    train, validation = [], []
    for label in range(len(CLASS_NAMES)):
        members = [p for p, y in zip(paths, labels) if y == label]
        rng.shuffle(members)
        n_val = round(validation_split * len(members))
        if validation_split > 0 and len(members) > 1:
            n_val = min(max(n_val, 1), len(members) - 1)
        validation += [(p, label) for p in members[:n_val]]
        train += [(p, label) for p in members[n_val:]]
    return train, validation


def image_decoding(path):
    """How `load_image` decodes a file, from its header (its type, a JPEG's EXIF orientation:
    see `image_header`); 0 (`tf.io.decode_image`) when the header cannot be read, and decoding
    then fails with TensorFlow's error naming the file."""
    try:
        return image_header(path)[2]
    except (OSError, ValueError, struct.error):
        return 0


def _decode(path, decoding, label):
    return load_image(path, IMAGE_SIZE, CHANNELS, decoding), label


def _files(paths):
    """(paths as bytes, how each is decoded): names that are not valid UTF-8 reach TensorFlow
    as they are on disk; each file's header is read here, in Python, once per dataset."""
    return [os.fsencode(path) for path in paths], [image_decoding(path) for path in paths]


def _cache(dataset, cache, suffix):
    """Keeps decoded images in memory (True), in files starting with `cache` (a str), or not."""
    if cache is False or cache is None:
        return dataset
    return dataset.cache("" if cache is True else f"{cache}{suffix}")


def _decoded(paths):
    """Every image of `paths`, decoded once with one parallel map, as one uint8 tensor."""
    dataset = tf.data.Dataset.from_tensor_slices(_files(paths)).map(
        lambda path, decoding: load_image(path, IMAGE_SIZE, CHANNELS, decoding),
        num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(max(len(paths), 1)).get_single_element()


def make_train_dataset(paths, labels, *, batch_size=32, seed=None, cache=True):
    """Training batches: decoded once and cached, resampled, augmented and normalized.

    A listed file that cannot be read any more (deleted, changed) raises TensorFlow's error
    naming it (here with `cache=True`, else when the dataset reaches it): list the files again.

    `cache=True` decodes every image once, with one parallel map, into a tensor in memory, and
    each batch is gathered from it by position (as in the search's trials); pass a file prefix
    when the images do not fit in memory (decoded and cached per class in files), or False to
    decode them every epoch.
    """
    images = _decoded(paths) if cache is True else None
    class_datasets = []
    for label in sorted(set(labels)):
        if images is None:
            members = [p for p, y in zip(paths, labels) if y == label]
            dataset = tf.data.Dataset.from_tensor_slices(
                (*_files(members), [label] * len(members)))
            dataset = dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
            class_datasets.append(_cache(dataset, cache, f"_train_{label}"))
        else:
            positions = [i for i, y in enumerate(labels) if y == label]
            class_datasets.append(
                tf.data.Dataset.from_tensor_slices((positions, [label] * len(positions))))
    return build_train_dataset(
        class_datasets,
        sampler=sample,
        batch_size=batch_size,
        seed=seed,
        normalize=preprocess,
        layers=make_augmentation_layers(),
        mix=make_mix_layer(),
        num_classes=len(CLASS_NAMES),
        class_weights=DATASET_CLASS_WEIGHTS,
        gate=CLASS_WEIGHT_GATE,
        load=None if images is None else (lambda indices: tf.gather(images, indices)),
    )


def make_eval_dataset(paths, labels=None, *, batch_size=32, cache=True):
    """Evaluation batches: decoded, cached and normalized; no augmentation, no resampling."""
    if labels is None:
        dataset = tf.data.Dataset.from_tensor_slices(_files(paths))
        dataset = dataset.map(
            lambda path, decoding: load_image(path, IMAGE_SIZE, CHANNELS, decoding),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        if ONE_HOT_LABELS:
            labels = tf.one_hot(list(labels), len(CLASS_NAMES))
        dataset = tf.data.Dataset.from_tensor_slices((*_files(paths), labels))
        dataset = dataset.map(_decode, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = _cache(dataset, cache, "_eval")
    return build_eval_dataset(dataset, batch_size=batch_size, normalize=preprocess)


def make_datasets(data_dir, *, validation_split=0.2, batch_size=32, seed=0, cache=True):
    """(train_ds, val_ds) for `model.fit(train_ds, validation_data=val_ds, **FIT_KWARGS)`."""
    paths, labels = list_files(data_dir)
    train, validation = split_files(
        paths, labels, validation_split=validation_split, seed=seed
    )
    train_ds = make_train_dataset(
        [p for p, _ in train], [y for _, y in train], batch_size=batch_size, seed=seed,
        cache=cache,
    )
    val_ds = make_eval_dataset(
        [p for p, _ in validation], [y for _, y in validation], batch_size=batch_size,
        cache=f"{cache}_val" if isinstance(cache, str) else cache,
    )
    return train_ds, val_ds


# In the order they are written into the exported module.
RUNTIME_FUNCTIONS = (
    walk_class_files, _walk_folder, _link_problem, _file_problem, image_header, _webp_size,
    _jpeg_header, _exif_orientation, header_problem, pixels_problem, list_files, split_files,
    image_decoding, _decode, _files, _cache, _decoded, make_train_dataset, make_eval_dataset,
    make_datasets,
)
