"""Times `autoprep.diagnose` (data checks only) on a 10,000-image folder with planted duplicates.

Usage:
    python benchmarks/doctor_10k.py [--images 10000] [--out results/doctor_10k]

Writes `<out>.json` and `<out>.md` with the measured seconds, the machine and the command.
"""

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np
from PIL import Image

CLASSES = 10
SIZE = 32
PLANTED = 50  # near-duplicate copies, half of them in another class


def random_image(rng):
    """A 32x32 RGB image: an 8x8 random color grid, upsampled, plus pixel noise."""
    grid = rng.integers(0, 256, (8, 8, 3))
    pixels = np.kron(grid, np.ones((SIZE // 8, SIZE // 8, 1))) + rng.normal(0, 8, (SIZE, SIZE, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def make_folder(root, n_images, seed=0):
    """Writes `n_images` PNGs into `CLASSES` class folders; returns the planted copies."""
    rng = np.random.default_rng(seed)
    originals = []
    for i in range(n_images - PLANTED):
        label = i % CLASSES
        os.makedirs(os.path.join(root, f"class_{label}"), exist_ok=True)
        pixels = random_image(rng)
        path = os.path.join(root, f"class_{label}", f"{i:05d}.png")
        Image.fromarray(pixels).save(path)
        if i < PLANTED:
            originals.append((label, pixels))
    for j, (label, pixels) in enumerate(originals):
        target = (label + j % 2) % CLASSES  # odd copies land in another class
        noisy = np.clip(pixels.astype(int) + rng.integers(-3, 4, pixels.shape), 0, 255)
        path = os.path.join(root, f"class_{target}", f"copy_{j:03d}.png")
        Image.fromarray(noisy.astype(np.uint8)).save(path)
    return PLANTED


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--out", default="results/doctor_10k")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from autoprep.doctor import diagnose

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        planted = make_folder(root, args.images)
        made = time.perf_counter() - start
        start = time.perf_counter()
        report = diagnose(root)
        seconds = time.perf_counter() - start
    found = {f.id: len(f.data.get("pairs", [])) for f in report.findings if "pairs" in f.data}
    result = {
        "benchmark": "doctor_10k",
        "images": report.summary["images"],
        "image_size": report.summary["image_size"],
        "classes": report.summary["classes"],
        "diagnose_seconds": round(seconds, 2),
        "folder_creation_seconds": round(made, 2),
        "planted_near_duplicates": planted,
        "duplicate_pairs_found": found,
        "finding_ids": report.ids(),
        "nproc": os.cpu_count(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "command": "python " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as file:
        json.dump(result, file, indent=2)
    with open(args.out + ".md", "w") as file:
        file.write(_markdown(result))
    print(json.dumps(result, indent=2))


def _markdown(result):
    return (
        "# autoprep doctor on 10,000 images\n\n"
        f"`diagnose()` (data checks only) on {result['images']} PNGs of "
        f"{result['image_size'][0]}x{result['image_size'][1]} in {result['classes']} classes "
        f"took **{result['diagnose_seconds']} s** on {result['nproc']} cores "
        f"({result['machine']}, Python {result['python']}); target: under 60 s.\n\n"
        f"{result['planted_near_duplicates']} near-duplicate copies were planted (half in "
        f"another class); duplicate pairs found per finding: {result['duplicate_pairs_found']}."
        f"\n\nCommand: `{result['command']}`\n"
    )


if __name__ == "__main__":
    main()
