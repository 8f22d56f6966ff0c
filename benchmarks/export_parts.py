"""Where the exported module's training dataset spends its time (issue 17, section 3).

Usage:
    python benchmarks/export_parts.py FOLDER [--config results/search_cost.json] [--epochs 4]
                                      [--repeats 3]

For the module exported for search_cost.py's winner with augmentation off (as in
export_speed.py), times each step of `make_datasets(FOLDER)[0]`'s first epoch: listing the
files and reading their headers, splitting, decoding every image into one tensor, building the
tf.data pipeline, the epoch itself; then the steady epoch of the whole dataset and of its
prefixes (the sampler batched, + gather and normalize, + sample weights), against cached
tensors batched. Best of `--repeats`; prints one JSON line.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tensorflow as tf  # noqa: E402
from export_speed import winner  # noqa: E402
from search_cost import BATCH, decode_only, write_module  # noqa: E402

from autoprep.data.decode import read_image_folder  # noqa: E402


def epoch(dataset):
    start = time.perf_counter()
    for _ in dataset:
        pass
    return time.perf_counter() - start


def steady(dataset, epochs):
    return statistics.median(epoch(dataset) for _ in range(epochs))


def first_epoch_parts(module, root):
    parts, clock = {}, time.perf_counter()

    def mark(name):
        nonlocal clock
        now = time.perf_counter()
        parts[name] = now - clock
        clock = now

    paths, labels, headers = module._list_files(root, module.MAX_PIXELS)
    mark("list files + read headers")
    train, _ = module.split_files(paths, labels, validation_split=0.2, seed=0)
    mark("split")
    images, rows = module._decoded(paths, headers)
    mark("decode into one tensor")
    row = dict(zip(paths, rows))
    dataset = module._training(module._by_class([row[p] for p, _ in train],
                                                [y for _, y in train]),
                               batch_size=BATCH, seed=0, images=images)
    mark("build the pipeline")
    for _ in dataset:
        pass
    mark("first epoch's batches")
    return parts, images, [row[p] for p, _ in train], [y for _, y in train]


def prefixes(module, images, rows, labels):
    """The training pipeline stage by stage (the stages of `build_train_dataset`), and the
    cached tensors with and without the cast and normalization."""
    sampled = module.sample(module._by_class(rows, labels), 0)
    batched = sampled.batch(BATCH)
    loaded = batched.map(lambda r, y: (module.preprocess(tf.cast(tf.gather(images, r),
                                                                 tf.float32)), y),
                         num_parallel_calls=tf.data.AUTOTUNE)
    return {
        "cached tensors, batched": tf.data.Dataset.from_tensor_slices(
            (tf.gather(images, rows), labels)).batch(BATCH).prefetch(tf.data.AUTOTUNE),
        "cached tensors, batched, cast + normalize (the floor of float output)":
            tf.data.Dataset.from_tensor_slices((tf.gather(images, rows), labels)).batch(BATCH)
            .map(lambda x, y: (module.preprocess(tf.cast(x, tf.float32)), y),
                 num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE),
        "+ batch": batched,
        "+ gather, cast, normalize": loaded,
        "whole dataset (+ sample weights, prefetch)": module._training(
            module._by_class(rows, labels), batch_size=BATCH, seed=0, images=images),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--config", default="results/search_cost.json")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    config, search_epochs = winner(args.config)
    folder = read_image_folder(args.folder)
    with tempfile.TemporaryDirectory() as workdir:
        module = write_module(os.path.join(workdir, "plain.py"), config, folder,
                              augmentation=False, epochs=search_epochs)
        firsts = [first_epoch_parts(module, args.folder) for _ in range(args.repeats)]
        parts = {key: min(p[key] for p, *_ in firsts) for key in firsts[0][0]}
        parts["tf.data decode-only of the folder (same run)"] = min(
            epoch(decode_only(args.folder)) for _ in range(args.repeats))
        _, images, rows, labels = firsts[-1]
        stages = prefixes(module, images, rows, labels)
        steady_seconds = {name: min(steady(d, args.epochs) for _ in range(args.repeats))
                          for name, d in stages.items()}
    print(json.dumps({"folder": args.folder, "images": len(folder.paths),
                      "train_images": len(rows), "first_epoch_seconds": parts,
                      "steady_epoch_seconds": steady_seconds,
                      "load_average": list(os.getloadavg())}))


if __name__ == "__main__":
    main()
