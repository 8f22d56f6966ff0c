"""Decoding throughput: autoprep's decoding of a folder against tf.data decode-only, same run.

Usage:
    python benchmarks/decode.py [--images 10000] [--size 64] [--repeats 3] [--dir DIR]
                                [--out results/decode_10k]

Writes `<out>.json` and `<out>.md`. Every figure is the best of `--repeats` runs after one
warm-up pass (files in the page cache), alternating the methods, so that load from other
processes on a shared machine hits each of them alike. Target (issue 10): autoprep's decoding
within 1.5x of the time of tf.data decode-only (read + decode, no resize, no copy).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save, timed, write_folder  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402

from autoprep.data.decode import decode_index, load_image  # noqa: E402
from autoprep.data.index import index_directory  # noqa: E402

PER_FILE_SAMPLE = 1000  # the former one-call-per-image loop is timed on this many files


def tf_decode_only(files):
    """Reads and decodes every file with a parallel tf.data map: the limit to compare with."""
    dataset = tf.data.Dataset.from_tensor_slices(files).map(
        lambda path: tf.io.decode_image(tf.io.read_file(path), channels=3,
                                        expand_animations=False),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=False,
    )
    return sum(int(batch.shape[0]) for batch in dataset.batch(64).prefetch(2))


def per_file(files, image_size):
    """The former decoding: one tf.function call per image from Python, then np.stack."""
    import numpy as np

    decode = tf.function(lambda path: load_image(path, image_size, 3, 0))  # 8-bit PNGs
    return len(np.stack([decode(tf.constant(path)).numpy() for path in files]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", help="folder for the images (kept); default a temporary one")
    parser.add_argument("--out", default="results/decode_10k")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as temporary:
        root = write_folder(args.dir or temporary, args.images, size=args.size)
        start = time.perf_counter()
        index = index_directory(root)
        index_seconds = time.perf_counter() - start
        files = [os.path.join(root, path) for path in index.paths]
        size = (args.size, args.size)
        methods = {
            "tf.data decode-only": lambda: tf_decode_only(files),
            "autoprep decode_index, in RAM": lambda: decode_index(index),
            "autoprep decode_index, memory-mapped": lambda: decode_index(index, memory_limit=1),
        }
        tf_decode_only(files)  # warm-up: files in the page cache, tf.data started once
        seconds = {name: [] for name in methods}
        for _ in range(args.repeats):
            for name, method in methods.items():
                seconds[name].append(timed(method))
        sample = files[:PER_FILE_SAMPLE]
        per_file_seconds, per_file_cpu = timed(per_file, sample, size)
    n = len(files)
    best = {name: min(wall for wall, _ in values) for name, values in seconds.items()}
    cpu = {name: min(c for _, c in values) for name, values in seconds.items()}
    limit, cpu_limit = best["tf.data decode-only"], cpu["tf.data decode-only"]
    rows = [(name, best[name], statistics.median(wall for wall, _ in values), n / best[name],
             best[name] / limit, cpu[name], cpu[name] / cpu_limit)
            for name, values in seconds.items()]
    result = {
        "benchmark": "decode", "images": n, "image_size": list(size), "format": "png",
        "index_seconds": round(index_seconds, 2), "seconds": seconds,
        "best_seconds": best, "ratio_to_decode_only": {k: v / limit for k, v in best.items()},
        "best_cpu_seconds": cpu, "cpu_ratio_to_decode_only": {k: v / cpu_limit
                                                              for k, v in cpu.items()},
        "per_file_loop": {"images": len(sample), "seconds": per_file_seconds,
                          "cpu_seconds": per_file_cpu},
        "machine": machine(), "command": command(),
    }
    table = "\n".join(f"| {name} | {b:.2f} | {m:.2f} | {rate:,.0f} | {ratio:.2f}x | {c:.2f} | "
                      f"{c_ratio:.2f}x |" for name, b, m, rate, ratio, c, c_ratio in rows)
    ratio = best["autoprep decode_index, in RAM"] / limit
    cpu_ratio = cpu["autoprep decode_index, in RAM"] / cpu_limit
    markdown = f"""# Decoding {n:,} PNGs of {args.size}x{args.size} (RGB)

| method | best wall s | median wall s | images/s (best wall) | wall / decode-only | \
best CPU s | CPU / decode-only |
|---|---|---|---|---|---|---|
{table}

Target (issue 10): autoprep within 1.5x of tf.data decode-only: **{ratio:.2f}x** in wall \
time ({"met" if ratio <= 1.5 else "missed"}), {cpu_ratio:.2f}x in CPU time (all threads of \
the process; less sensitive than wall time to the load of other processes). autoprep's \
figure includes the channel conversion, the size check (the images already have the target \
size, so no resize), skipping files that fail, and the copy into one uint8 array.

The former decoding (one `tf.function` call per image from Python, then `np.stack`) took \
{per_file_seconds:.2f} s ({per_file_cpu:.2f} s CPU) for the first {len(sample):,} images \
({len(sample) / per_file_seconds:,.0f} images/s).
Indexing (listing + reading headers) took {index_seconds:.2f} s, before and outside these figures.

Best of {args.repeats} runs each, alternating the methods, after one warm-up pass (files in the \
page cache).
"""
    print(save(args.out, result, markdown))


if __name__ == "__main__":
    main()
