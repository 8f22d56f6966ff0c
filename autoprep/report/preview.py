"""What the winning pipeline does, shown through the exported module's own code.

The best config is rendered with `autoprep.export` and imported like a user's `pipeline.py`;
its `list_files` and `load_image` read real training images, its augmentation layers and
`augment` make the draws, and its `sample` function and `FIT_KWARGS` give the class counts
after the imbalance strategy. What users copy is what the report shows.
"""

import importlib.util
import os
import tempfile

import numpy as np

PREVIEW_DRAWS = 5
PREVIEW_ROWS = 8


def exported_module(result) -> tuple:
    """(module, source): the result's exported module, rendered from `best_config` and
    imported from a temporary file as users import theirs."""
    with tempfile.TemporaryDirectory(prefix="autoprep-report-") as directory:
        path = result.export(os.path.join(directory, "report_pipeline.py"))
        with open(path, encoding="utf-8") as handle:
            source = handle.read()
        spec = importlib.util.spec_from_file_location("autoprep_report_pipeline", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module, source


def preview_images(module, data_dir, *, rows=PREVIEW_ROWS, draws=PREVIEW_DRAWS, seed=0):
    """Originals and augmented draws of a few training images, one class after the other.

    Returns:
        (images, labels): `images[i]` is a list of uint8 arrays, the original then `draws`
        augmented versions; `labels[i]` its class index.
    """
    import tensorflow as tf

    paths, labels = module.list_files(data_dir)
    if not paths:
        return [], []
    chosen = _one_per_class(np.asarray(labels), rows, seed)
    headers = module.read_headers([paths[i] for i in chosen])  # how each file is decoded
    originals = tf.stack([
        module.load_image(paths[i], module.IMAGE_SIZE, module.CHANNELS, header[2])
        for i, header in zip(chosen, headers)
    ])
    chosen_labels = [int(labels[i]) for i in chosen]
    batch_labels = tf.constant(chosen_labels)
    if module.ONE_HOT_LABELS:
        batch_labels = tf.one_hot(batch_labels, len(module.CLASS_NAMES))
    layers, mix = module.make_augmentation_layers(), module.make_mix_layer()
    versions = [originals.numpy()]
    for _ in range(draws):
        augmented, _ = module.augment(tf.cast(originals, tf.float32), batch_labels, layers, mix)
        versions.append(augmented.numpy())
    versions = [np.clip(np.round(v), 0, 255).astype(np.uint8) for v in versions]
    return [[v[i] for v in versions] for i in range(len(chosen))], chosen_labels


def _one_per_class(labels, rows, seed) -> list:
    """Indices of up to `rows` images, taking classes in turn (a random image of each)."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    chosen = []
    while len(chosen) < rows and any(pools):
        for pool in pools:
            if pool and len(chosen) < rows:
                chosen.append(int(pool.pop()))
    return chosen


def counts_after(module, counts, *, seed=0) -> tuple:
    """Per-class counts after the imbalance strategy, and what they mean.

    Sampling strategies are run for one epoch through the module's own `sample` function on
    the class labels; weighting strategies multiply each class count by its class weight.

    Returns:
        (counts, label, note) where `counts` is None when the strategy changes nothing.
    """
    import tensorflow as tf

    counts = np.asarray(counts, int)
    weights = module.FIT_KWARGS.get("class_weight")
    if weights is not None:
        after = counts * np.array([weights[c] for c in range(len(counts))])
        return after, "weighted count (count × class weight)", "class weights in fit()"
    if module.DATASET_CLASS_WEIGHTS is not None:  # deferred re-weighting
        start = module.FIT_KWARGS["callbacks"][0].start_epoch
        after = counts * np.asarray(module.DATASET_CLASS_WEIGHTS)
        return (after, f"weighted count from epoch {start + 1} on",
                f"class weights switched on at epoch {start + 1}")
    datasets = [tf.data.Dataset.from_tensor_slices(np.full(n, c, np.int64))
                for c, n in enumerate(counts) if n > 0]
    drawn = np.zeros(len(counts), int)
    for batch in module.sample(datasets, seed).batch(4096):
        drawn += np.bincount(batch.numpy(), minlength=len(counts))
    if np.array_equal(drawn, counts):
        return None, "", "every image once per epoch, unweighted"
    return drawn, "images drawn in one epoch", "resampled batches"
