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
    _plain_file,
    _walk_folder,
    _webp_header,
    checked_header,
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
    paths, labels, _ = _list_files(data_dir, max_pixels)
    return paths, labels


def _list_files(data_dir, max_pixels):
    """`list_files`, and the header of each file (`image_header`), read once."""
    paths, labels, headers, skipped = [], [], [], []
    for relative, label, reason in walk_class_files(data_dir, CLASS_NAMES):
        image = relative.endswith("/") or relative.lower().endswith(IMAGE_EXTENSIONS)
        if not image or relative in SKIPPED_FILES:
            continue
        path = os.path.join(data_dir, relative)
        header = None
        if reason is None:
            header, reason = checked_header(path, max_pixels)
        if reason is None:
            paths.append(path)
            labels.append(label)
            headers.append(header)
        else:
            skipped.append(f"  {relative!r}: {reason}")  # repr: no control codes
    if skipped:
        warnings.warn(f"skipped {len(skipped)} file(s):\n" + "\n".join(skipped), stacklevel=3)
    return paths, labels, headers


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


def read_headers(paths):
    """`image_header` of each file: how `load_image` decodes it; (0, 0, 0, 0) when it cannot be
    read (decoded then by `tf.io.decode_image`, whose error names the file)."""
    headers = []
    for path in paths:
        try:
            headers.append(image_header(path))
        except (OSError, ValueError, struct.error):
            headers.append((0, 0, 0, 0))
    return headers


def _loader(headers, *, ready=False, position=False):
    """The map function that decodes (path, decoding, then a label or none) with `load_image`.

    One decoding for every file is passed as an int (`load_image` then builds no switch).
    With `ready`, files are not checked and converted (their headers said they need not be);
    with `position`, elements start with the file's position, and keep it. The function is
    traced as written (plain TensorFlow: AutoGraph has nothing to convert).
    """
    kinds = {header[2] for header in headers}
    kind = kinds.pop() if len(kinds) == 1 else None

    def load(*element):
        where, (path, decoding, *label) = (element[:1], element[1:]) if position else ((), element)
        image = load_image(path, IMAGE_SIZE, CHANNELS, decoding if kind is None else kind,
                           ready)
        return (*where, image, *label) if where or label else image

    return tf.autograph.experimental.do_not_convert(load)


def _files(paths, headers):
    """(paths as bytes, how each is decoded): names that are not valid UTF-8 reach TensorFlow
    as they are on disk."""
    return [os.fsencode(path) for path in paths], [header[2] for header in headers]


def _cache(dataset, cache, suffix):
    """Keeps decoded images in memory (True), in files starting with `cache` (a str), or not."""
    if cache is False or cache is None:
        return dataset
    return dataset.cache("" if cache is True else f"{cache}{suffix}")


def _decoded(paths, headers):
    """Every image of `paths` decoded once, as one uint8 tensor, and the row of each in it.

    The files whose headers say they have IMAGE_SIZE and CHANNELS are decoded first, as they
    are (`ready`); then the others, with any of those that had not after all (a file that
    cannot be decoded raises TensorFlow's error naming it). A parallel map, unordered: each
    image comes with its position.
    """
    ready = [(height, width) == tuple(IMAGE_SIZE) and channels == CHANNELS
             for height, width, channels in map(_shown, headers)]
    files, decodings = _files(paths, headers)
    parts, done = [], set()
    for as_is in (True, False):
        chosen = [i for i, yes in enumerate(ready) if i not in done and (yes or not as_is)]
        if not chosen:
            continue
        dataset = tf.data.Dataset.from_tensor_slices((  # tensors first: lists are slow here
            tf.constant(chosen, tf.int32), tf.constant([files[i] for i in chosen], tf.string),
            tf.constant([decodings[i] for i in chosen], tf.int32)))
        dataset = dataset.map(_loader([headers[i] for i in chosen], ready=as_is, position=True),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        for batch in (dataset.ignore_errors() if as_is else dataset).batch(len(chosen)):
            parts.append(batch)
            done.update(batch[0].numpy().tolist())
    if not parts:
        return tf.zeros([0, *IMAGE_SIZE, CHANNELS], tf.uint8), []
    images = parts[0][1] if len(parts) == 1 else tf.concat([image for _, image in parts], 0)
    rows = tf.concat([where for where, _ in parts], 0).numpy().tolist()
    row = {position: i for i, position in enumerate(rows)}
    return images, [row[i] for i in range(len(paths))]


def _shown(header):
    """(height, width, channels) of an image as `load_image` decodes it, from its header."""
    height, width, decoding, channels = header
    return (width, height, channels) if 5 <= decoding <= 8 else (height, width, channels)


def _file_dataset(paths, headers, labels=None):
    """(image, label) pairs, or images, decoded from the files as the dataset reaches them."""
    elements = _files(paths, headers)
    if labels is not None:
        elements = (*elements, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    return dataset.map(_loader(headers), num_parallel_calls=tf.data.AUTOTUNE)


def _by_class(rows, labels):
    """One dataset of (row, label) pairs per class, in label order."""
    datasets = []
    for label in sorted(set(labels)):
        members = tf.constant([row for row, y in zip(rows, labels) if y == label], tf.int32)
        datasets.append(tf.data.Dataset.from_tensor_slices(
            (members, tf.fill(tf.shape(members), label))))
    return datasets


def _training(class_datasets, *, batch_size, seed, images=None):
    """Training batches of the class datasets: of (image, label) pairs, or of (row, label)
    pairs of `images` (each batch gathered from it)."""
    layers, mix = make_augmentation_layers(), make_mix_layer()
    load, normalize = None, preprocess
    if images is not None:
        load = tf.autograph.experimental.do_not_convert(lambda rows: tf.gather(images, rows))
        if not layers and mix is None:  # nothing between reading and normalizing: one map
            load = tf.autograph.experimental.do_not_convert(
                lambda rows: preprocess(tf.cast(tf.gather(images, rows), tf.float32)))
            normalize = None
    return build_train_dataset(
        class_datasets,
        sampler=sample,
        batch_size=batch_size,
        seed=seed,
        normalize=normalize,
        layers=layers,
        mix=mix,
        num_classes=len(CLASS_NAMES),
        class_weights=DATASET_CLASS_WEIGHTS,
        gate=CLASS_WEIGHT_GATE,
        load=load,
    )


def _eval_labels(labels):
    """The labels of evaluation batches: one-hot with MixUp or CutMix (`ONE_HOT_LABELS`)."""
    return tf.one_hot(labels, len(CLASS_NAMES)) if ONE_HOT_LABELS else labels


def make_train_dataset(paths, labels, *, batch_size=32, seed=None, cache=True):
    """Training batches: decoded once and cached, resampled, augmented and normalized.

    A listed file that cannot be read any more (deleted, changed) raises TensorFlow's error
    naming it (here with `cache=True`, else when the dataset reaches it): list the files again.

    `cache=True` decodes every image once, with one parallel map, into a tensor in memory, and
    each batch is gathered from it by position (as in the search's trials); pass a file prefix
    when the images do not fit in memory (decoded and cached per class in files), or False to
    decode them every epoch.
    """
    headers = read_headers(paths)
    if cache is True:
        images, rows = _decoded(paths, headers)
        return _training(_by_class(rows, labels), batch_size=batch_size, seed=seed,
                         images=images)
    class_datasets = []
    for label in sorted(set(labels)):
        members = [i for i, y in enumerate(labels) if y == label]
        dataset = _file_dataset([paths[i] for i in members], [headers[i] for i in members],
                                [label] * len(members))
        class_datasets.append(_cache(dataset, cache, f"_train_{label}"))
    return _training(class_datasets, batch_size=batch_size, seed=seed)


def make_eval_dataset(paths, labels=None, *, batch_size=32, cache=True):
    """Evaluation batches: decoded, cached and normalized; no augmentation, no resampling."""
    labels = None if labels is None else _eval_labels(list(labels))
    dataset = _cache(_file_dataset(paths, read_headers(paths), labels), cache, "_eval")
    return build_eval_dataset(dataset, batch_size=batch_size, normalize=preprocess)


def make_datasets(data_dir, *, validation_split=0.2, batch_size=32, seed=0, cache=True):
    """(train_ds, val_ds) for `model.fit(train_ds, validation_data=val_ds, **FIT_KWARGS)`.

    `cache=True` decodes every image (training and validation) once, with one parallel map,
    into a tensor in memory; see `make_train_dataset` for the other values.
    """
    paths, labels, headers = _list_files(data_dir, MAX_PIXELS)
    train, validation = split_files(
        paths, labels, validation_split=validation_split, seed=seed
    )
    if cache is not True:
        train_ds = make_train_dataset([p for p, _ in train], [y for _, y in train],
                                      batch_size=batch_size, seed=seed, cache=cache)
        val_ds = make_eval_dataset(
            [p for p, _ in validation], [y for _, y in validation], batch_size=batch_size,
            cache=f"{cache}_val" if isinstance(cache, str) else cache,
        )
        return train_ds, val_ds
    images, rows = _decoded(paths, headers)
    row = dict(zip(paths, rows))
    train_ds = _training(_by_class([row[p] for p, _ in train], [y for _, y in train]),
                         batch_size=batch_size, seed=seed, images=images)
    val_rows = tf.data.Dataset.from_tensor_slices((
        tf.constant([row[p] for p, _ in validation], tf.int32),
        _eval_labels(tf.constant([y for _, y in validation], tf.int32))))
    val_ds = build_eval_dataset(
        val_rows, batch_size=batch_size, normalize=preprocess,
        load=tf.autograph.experimental.do_not_convert(lambda rows: tf.gather(images, rows)))
    return train_ds, val_ds


# In the order they are written into the exported module.
RUNTIME_FUNCTIONS = (
    walk_class_files, _walk_folder, _plain_file, _link_problem, _file_problem, image_header,
    _webp_header, _jpeg_header, _exif_orientation, checked_header, pixels_problem, list_files,
    _list_files, split_files, read_headers, _loader, _files, _cache, _decoded, _shown,
    _file_dataset, _by_class, _training, _eval_labels, make_train_dataset, make_eval_dataset,
    make_datasets,
)
