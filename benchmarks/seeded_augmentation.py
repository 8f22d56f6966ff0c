"""The cost of a reproducible search: training datasets augmented in order (seeded) or in parallel.

With a seed, autoprep augments the batches of a trial's training dataset one after the other, so
that Keras' random layers (whose shared seed state advances at every call) draw the same values
in every run; without a seed the batches are augmented by a parallel map (AUTOTUNE), which
advances that state in thread order. This script times both, in the same process:

- `dataset`: one pass over the training dataset alone (decode-free: images in memory),
- `training`: one epoch of a small CNN fed by it (what a trial pays).

Usage:
    python benchmarks/seeded_augmentation.py [--images 2000] [--size 32] [--repeats 3]
                                             [--out results/seeded_augmentation]

Each figure is the best of `--repeats` runs after a warm-up, the two modes alternating, so that
load from other processes on a shared machine hits both alike.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import numpy as np  # noqa: E402

from autoprep.choices.pipeline import Pipeline  # noqa: E402

OPS = [{"name": "flip", "mode": "horizontal"}, {"name": "rotation", "intensity": 0.1},
       {"name": "zoom", "intensity": 0.1}, {"name": "contrast", "intensity": 0.2}]


def _model(shape, classes):
    return keras.Sequential([
        keras.Input(shape), keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(classes, activation="softmax"),
    ])


def _dataset(images, labels, seed):
    pipeline = Pipeline(augmentation=OPS).fit(images, labels, 10)
    dataset, _ = pipeline.train_dataset(images, labels, num_classes=10, batch_size=32, epochs=1,
                                        seed=seed)
    return dataset


def _time_dataset(images, labels, seed) -> float:
    dataset = _dataset(images, labels, seed)
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


def _time_training(images, labels, seed) -> float:
    model = _model(images.shape[1:], 10)
    model.compile("adam", "sparse_categorical_crossentropy")
    dataset = _dataset(images, labels, seed)
    model.fit(dataset.take(2), epochs=1, verbose=0)  # traces the step outside the timing
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="results/seeded_augmentation")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.images, args.size, args.size, 3), dtype=np.uint8)
    labels = np.arange(args.images) % 10
    modes = {"parallel (no seed)": None, "in order (seed=0)": 0}
    figures = {}
    for what, timer in (("dataset", _time_dataset), ("training", _time_training)):
        times = {mode: [] for mode in modes}
        for repeat in range(args.repeats + 1):  # the first round warms up
            for mode, seed in modes.items():
                seconds = timer(images, labels, seed)
                if repeat:
                    times[mode].append(seconds)
        figures[what] = {mode: {"seconds": min(t), "images_per_second": args.images / min(t)}
                         for mode, t in times.items()}
        seeded, parallel = (figures[what][m]["seconds"] for m in
                            ("in order (seed=0)", "parallel (no seed)"))
        figures[what]["seeded_over_parallel_time"] = seeded / parallel
    result = {"images": args.images, "size": args.size, "ops": OPS, "repeats": args.repeats,
              "figures": figures, "machine": machine(), "command": command()}
    rows = [f"| {what} | {mode} | {f['seconds']:.2f} | {f['images_per_second']:.0f} |"
            for what, modes_ in figures.items() for mode, f in modes_.items()
            if isinstance(f, dict)]
    markdown = "\n".join([
        "# The cost of a reproducible search (seeded augmentation in order)",
        "",
        f"{args.images} images of {args.size}x{args.size}x3, batches of 32, ops: flip, rotation "
        "0.1, zoom 0.1, contrast 0.2; best of "
        f"{args.repeats} runs after a warm-up, the modes alternating.",
        "",
        "| what | mode | seconds | images/s |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Seeded over parallel time: dataset alone "
        f"{figures['dataset']['seeded_over_parallel_time']:.2f}x, one training epoch of a small "
        f"CNN {figures['training']['seeded_over_parallel_time']:.2f}x.",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {result['machine']}",
        "",
    ])
    save(args.out, result, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
