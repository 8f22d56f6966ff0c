"""Trial datasets from index arrays against the former copies, on the demo data and model.

Usage:
    python benchmarks/trial_input.py [--epochs 4] [--repeats 3] [--out results/trial_input]

A trial used to copy `images[train]`, split it per class and hand each part to
`tf.data.Dataset.from_tensor_slices` (another copy); it now samples indices and gathers each
batch from the one array (`autoprep.data.subset.Subset`). Both are timed here, alternating,
on the demo's digits with the demo model: the dataset alone (one epoch, no model) and
`model.fit` (the demo trial's training). Figures are the best of `--repeats` runs.
"""

import argparse
import functools
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save, timed  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from autoprep.choices.pipeline import Pipeline, build_train_dataset  # noqa: E402
from autoprep.data.decode import read_image_folder  # noqa: E402
from autoprep.data.demo import demo_model, write_digits_folder  # noqa: E402
from autoprep.data.splits import make_splits  # noqa: E402
from autoprep.data.subset import Subset  # noqa: E402

CONFIG = {"normalization": "per_channel", "augmentation": [{"name": "flip", "mode": "horizontal"}],
          "imbalance": "oversample"}
BATCH = 32


def copied_datasets(pipeline, images, labels, train, num_classes):
    """The former trial dataset: copies of the training images, per class, as tensors."""
    train_images, train_labels = images[train], labels[train]
    class_datasets = [tf.data.Dataset.from_tensor_slices(
        (train_images[train_labels == c], train_labels[train_labels == c]))
        for c in range(num_classes)]
    return build_train_dataset(
        [d for d in class_datasets if int(d.cardinality()) > 0],
        sampler=pipeline.imbalance.sampler, batch_size=BATCH, seed=0,
        normalize=pipeline.normalization,
        layers=[layer for op in pipeline.plain_ops for layer in op.build_layers()],
        mix=None, num_classes=num_classes,
    )


def indexed_datasets(pipeline, images, labels, train, num_classes):
    dataset, _ = pipeline.train_dataset(Subset(images)[train], labels[train],
                                        num_classes=num_classes, batch_size=BATCH, epochs=1,
                                        seed=0)
    return dataset


def fit(dataset, input_shape, num_classes, epochs):
    keras.utils.set_random_seed(0)
    model = demo_model(input_shape, num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(dataset(), epochs=epochs, verbose=0)


def one_epoch(dataset):
    for _ in dataset():
        pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/trial_input")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as root:
        folder = read_image_folder(write_digits_folder(os.path.join(root, "digits")))
    images, labels, k = folder.images, folder.labels, len(folder.class_names)
    splits = make_splits(labels, folder.class_names, validation_split=0.2, test_split=0.2,
                         seed=0)
    train = splits.folds[0][0]
    pipeline = Pipeline(**CONFIG).fit(Subset(images)[train], labels[train], k)
    builders = {"copies (former)": copied_datasets, "index arrays (now)": indexed_datasets}
    figures = {name: {"dataset": [], "fit": []} for name in builders}
    for _ in range(args.repeats):
        for name, build in builders.items():
            datasets = functools.partial(build, pipeline, images, labels, train, k)
            figures[name]["dataset"].append(timed(one_epoch, datasets))
            figures[name]["fit"].append(timed(fit, datasets, images.shape[1:], k, args.epochs))
    best = {name: {part: min(wall for wall, _ in values) for part, values in parts.items()}
            for name, parts in figures.items()}
    cpu = {name: {part: min(c for _, c in values) for part, values in parts.items()}
           for name, parts in figures.items()}
    n = len(train)
    rows = "\n".join(
        f"| {name} | {best[name]['dataset']:.3f} | {n / best[name]['dataset']:,.0f} | "
        f"{cpu[name]['dataset']:.3f} | {best[name]['fit']:.2f} | {cpu[name]['fit']:.2f} |"
        for name in builders)
    old, new = (best[name]["fit"] for name in builders)
    result = {"benchmark": "trial_input", "train_images": n, "image_shape": list(images.shape[1:]),
              "config": CONFIG, "epochs": args.epochs, "figures": figures, "best": best,
              "best_cpu": cpu, "machine": machine(), "command": command()}
    markdown = f"""# Trial datasets: index arrays against copies (demo data and model)

{n:,} training images of {images.shape[1]}x{images.shape[2]}x{images.shape[3]} (the demo's \
digits), batch {BATCH}, pipeline {CONFIG}.

| trial dataset | one epoch, s | images/s | CPU s | demo model fit ({args.epochs} epochs), s \
| fit CPU s |
|---|---|---|---|---|---|
{rows}

The demo trial's training with index arrays takes **{new / old:.2f}x** the time with copies \
(best of {args.repeats} runs each, alternating).
"""
    print(save(args.out, result, markdown))


if __name__ == "__main__":
    main()
