"""Cost of the mislabeled-image review after a search: cleanlab on a trial's saved predictions.

Usage:
    python benchmarks/label_review.py [--images 1000 10000 100000] [--classes 10]
                                      [--out results/label_review]

No training: for each size, the pooled out-of-fold predictions a cross-validated trial would
keep (a model right on 90 % of the images, with 10 % of the labels moved to another class) are
written as a trial's `predictions.npz` through `label_review.save`, then `label_review.review`
reads the file and runs cleanlab, as `autoprep.tune` does once the winner is chosen. Reported:
the file's size, cleanlab's import (once, in a fresh process) and the review's wall and CPU
seconds. How right the list is depends on the trained model: see results/label_issues.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save, timed  # noqa: E402


def predictions(images, classes, seed=0):
    """(true labels, folder labels, probabilities) of a 90 %-right model on 10 % noisy labels."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(classes, size=images)
    guess = np.where(rng.random(images) < 0.9, truth, rng.integers(classes, size=images))
    probabilities = rng.dirichlet(np.ones(classes), images) * 0.3
    probabilities[np.arange(images), guess] += 0.7
    moved = rng.random(images) < 0.1
    labels = np.where(moved, (truth + 1 + rng.integers(classes - 1, size=images)) % classes,
                      truth)
    return labels, moved, probabilities


def measure(images, classes) -> dict:
    from autoprep.search import label_review

    labels, moved, probabilities = predictions(images, classes)
    folder = types.SimpleNamespace(labels=labels, class_names=[f"c{k}" for k in range(classes)],
                                   paths=[f"c{k}/{i}.png" for i, k in enumerate(labels)])
    with tempfile.TemporaryDirectory() as trial_dir:
        evaluation = types.SimpleNamespace(indices=np.arange(images), probabilities=probabilities)
        label_review.save(trial_dir, evaluation)
        size = os.path.getsize(os.path.join(trial_dir, "predictions.npz"))
        label_review.review(trial_dir, trial=1, folder=folder, validation={"method": "cv"},
                            development=images)  # warm-up: cleanlab imported here
        found = []
        wall, cpu = timed(lambda: found.append(label_review.review(
            trial_dir, trial=1, folder=folder, validation={"method": "cv"},
            development=images)))
        found = found[0]
    return {"images": images, "classes": classes, "file_kb": round(size / 1024, 1),
            "seconds": round(wall, 3), "cpu_seconds": round(cpu, 3), "listed": len(found["issues"]),
            "moved": int(moved.sum()),
            "load_average": list(os.getloadavg())}


def import_seconds() -> float:
    """cleanlab's import in a fresh process (numpy, scikit-learn and pandas with it)."""
    code = ("import time, numpy; t = time.perf_counter(); import cleanlab.filter, cleanlab.rank;"
            " print(time.perf_counter() - t)")
    return round(float(subprocess.check_output([sys.executable, "-c", code], text=True)), 2)


def render(result) -> str:
    lines = ["# Mislabeled images after a search: the review's cost", "",
             "cleanlab on a trial's saved pooled out-of-fold predictions (no training), as "
             "`autoprep.tune` runs it once the winner is chosen. Synthetic predictions: a model "
             "right on 90 % of the images, 10 % of the labels moved to another class.", "",
             "| images | classes | predictions.npz KB | review s | review CPU s | listed | "
             "moved | load average (1 min) |",
             "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['images']:,} | {row['classes']} | {row['file_kb']:,} | "
                     f"{row['seconds']} | {row['cpu_seconds']} | {row['listed']:,} | "
                     f"{row['moved']:,} | {row['load_average'][0]:.1f} |")
    lines += ["", "Listed: every image cleanlab flags (the moved ones and the model's own "
              "confident mistakes of this synthetic model); how right the list is on real "
              "trainings: results/label_issues.md.", "",
              "Importing cleanlab (in a fresh process, once per search): "
              f"{result['import_seconds']} s.", ""]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--out", default="results/label_review")
    args = parser.parse_args()
    started = time.time()
    result = {"import_seconds": import_seconds(),
              "rows": [measure(n, args.classes) for n in args.images]}
    result.update(machine=machine(), command=command(), seconds=round(time.time() - started, 1))
    print(save(args.out, result, render(result)))


if __name__ == "__main__":
    main()
