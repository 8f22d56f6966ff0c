"""What grows with the number of images over the memory limit (issue 17, section 3).

Usage:
    python benchmarks/memory_parts.py FOLDER [FOLDER ...] [--limit 64M]

For each folder, in a fresh process: anonymous resident memory (RssAnon) after each step of
what `autoprep.tune` does before and in a trial, with the images memory-mapped (`--limit`):
indexing, decoding, the splits, one trial's training dataset with its first batch read (the
sampler's shuffle buffer full) and its evaluation dataset. Python's own allocations are traced
with tracemalloc (the 5 largest source lines at the end); TensorFlow's are not (RssAnon holds
them). Prints one JSON line per folder; the growth per image is the difference between two
folders divided by the difference of their counts.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from memory import rss_anon  # noqa: E402


def child(folder, limit) -> dict:
    tracemalloc.start()
    steps = {}

    def mark(name):
        steps[name] = {"rss_anon": rss_anon(), "python": tracemalloc.get_traced_memory()[0]}

    import numpy as np
    import tensorflow as tf

    from autoprep.choices.pipeline import Pipeline
    from autoprep.data.decode import read_image_folder
    from autoprep.data.index import index_directory
    from autoprep.data.splits import make_splits
    from autoprep.data.subset import Subset

    mark("imports")
    index = index_directory(folder)
    mark("index")
    with tempfile.TemporaryDirectory() as cache:
        decoded = read_image_folder(folder, index=index, memory_limit=limit, cache_dir=cache)
        mark("decode (memory-mapped)")
        splits = make_splits(decoded.labels, decoded.class_names, test_split=0.1, cv=None,
                             seed=0, validation_split=0.2, small_validation=0)
        mark("splits")
        train, evaluate = splits.folds[0]
        images, labels = Subset(decoded.images), decoded.labels
        pipeline = Pipeline(normalization="rescale_01", imbalance="none")
        pipeline.fit(images[train], labels[train], len(decoded.class_names))
        train_ds, _ = pipeline.train_dataset(images[train], labels[train],
                                             num_classes=len(decoded.class_names),
                                             batch_size=32, epochs=1, seed=0)
        iterator = iter(train_ds)
        next(iterator)
        mark("training dataset, first batch (shuffle buffer full)")
        eval_ds = pipeline.eval_dataset(images[evaluate], batch_size=32)
        next(iter(eval_ds))
        mark("evaluation dataset, first batch")
        top = [(str(stat.traceback), stat.size, stat.count) for stat in
               tracemalloc.take_snapshot().statistics("lineno")[:5]]
        del iterator
    return {"folder": folder, "images": len(decoded.paths), "train_images": int(len(train)),
            "steps": steps, "python_top_lines": top, "tensorflow": tf.__version__,
            "numpy": np.__version__, "load_average": list(os.getloadavg())}


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        print(json.dumps(child(argv[1], argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--limit", default="64M")
    args = parser.parse_args(argv)
    for folder in args.folders:
        output = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", folder,
                                 args.limit], check=True, capture_output=True, text=True).stdout
        print(output.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
