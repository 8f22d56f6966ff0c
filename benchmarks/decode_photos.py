"""Decoding photos: peak memory and wall time of autoprep's decoding of large JPEGs.

Usage:
    python benchmarks/decode_photos.py [--images 2000] [--folder DIR] [--out results/decode_photos]
    python benchmarks/decode_photos.py --smoke --out /tmp/smoke   # a few small images

Without `--folder`, writes `--images` JPEGs of 2000x1500 into a temporary folder (about 1 GB for
2,000): byte copies of a few synthetic base photos (gradients, shapes and noise; every fourth is
a phone photo, stored landscape with EXIF orientation 6, shown portrait). With `--folder`,
reads a class-per-folder directory of your photos instead. Decoding runs in a fresh process at
the default settings of `autoprep.tune` (size from the headers, up to 256 on the long side; the
memory limit, a quarter of the RAM); the process reports its resident memory before decoding
and its peak during decoding (`VmHWM`, reset before decoding). Writes `<out>.json` and
`<out>.md`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402

PHOTO_SIZE = (1500, 2000)  # (height, width) as stored
BASE_PHOTOS = 8
PORTRAIT_EVERY = 4  # every fourth photo is tagged EXIF orientation 6 (shown portrait)


def base_photo(rng, size) -> Image.Image:
    """A photo-like RGB image: smooth color gradients, a few bright discs, sensor noise."""
    height, width = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    colors = rng.uniform(0, 255, (3, 3))
    pixels = (colors[0] * (x / width)[..., None] + colors[1] * (y / height)[..., None]
              + colors[2] * 0.5) / 1.5
    for _ in range(6):
        cy, cx, radius = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.05, 0.2)
        disc = (y - cy) ** 2 + (x - cx) ** 2 < (radius * width) ** 2
        pixels[disc] = pixels[disc] * 0.4 + rng.uniform(0, 255, 3) * 0.6
    pixels += rng.normal(0, 6, pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def write_photos(root, n_images, *, size=PHOTO_SIZE, classes=4, seed=0) -> str:
    """Writes `n_images` JPEGs (quality 90) into `classes` class folders: byte copies of a few
    base photos, every `PORTRAIT_EVERY`-th tagged EXIF orientation 6."""
    rng = np.random.default_rng(seed)
    bases = []
    for index in range(min(BASE_PHOTOS, n_images)):
        photo, buffer = base_photo(rng, size), tempfile.SpooledTemporaryFile()
        exif = Image.Exif()
        if index % PORTRAIT_EVERY == PORTRAIT_EVERY - 1:
            exif[0x0112] = 6
        photo.save(buffer, "JPEG", quality=90, exif=exif.tobytes())
        buffer.seek(0)
        bases.append(buffer.read())
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class_{c}"), exist_ok=True)
    for i in range(n_images):
        with open(os.path.join(root, f"class_{i % classes}", f"{i:05d}.jpg"), "wb") as handle:
            handle.write(bases[i % len(bases)])
    return root


def _memory(field) -> int:
    """A `VmRSS`/`VmHWM` figure of this process, in bytes."""
    with open("/proc/self/status", encoding="ascii") as handle:
        line = next(line for line in handle if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def measure(folder) -> dict:
    """Indexes and decodes `folder` as `autoprep.tune` does by default (in this process)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf  # noqa: F401  (imported before the baseline is taken)

    from autoprep.data.decode import decode_index, plan_decoding
    from autoprep.data.index import index_directory

    start = time.perf_counter()
    index = index_directory(folder)
    index_seconds = time.perf_counter() - start
    plan = plan_decoding(index)
    before = _memory("VmRSS")
    with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
        handle.write("5")  # resets VmHWM, the peak resident memory, to the current VmRSS
    start, cpu = time.perf_counter(), time.process_time()
    images = decode_index(index).images
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
    full_size = sum(height * width * 3 for height, width in index.sizes)
    return {
        "images": len(images), "image_size": list(plan.image_size), "channels": plan.channels,
        "plan": plan.describe(), "array_bytes": int(images.nbytes),
        "full_size_bytes": int(full_size), "rss_before_bytes": before,
        "peak_rss_bytes": _memory("VmHWM"), "index_seconds": round(index_seconds, 2),
        "decode_seconds": round(seconds, 2), "decode_cpu_seconds": round(cpu_seconds, 2),
        "orientations": {str(k): index.decodings.count(k) for k in range(1, 9)
                         if k in index.decodings},  # JPEGs: decoding = EXIF orientation
        "sizes_shown": sorted({f"{h}x{w}" for h, w in index.sizes}),
    }


def _measure_in_a_fresh_process(folder) -> dict:
    script = os.path.abspath(__file__)
    completed = subprocess.run([sys.executable, script, "--measure", folder], check=True,
                               capture_output=True, text=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _mib(size) -> str:
    return f"{size / 2**20:,.0f} MiB"


def markdown(result) -> str:
    m = result["measured"]
    rate = m["images"] / m["decode_seconds"]
    increase = m["peak_rss_bytes"] - m["rss_before_bytes"]
    held = increase - m["array_bytes"]
    return f"""# Decoding {m["images"]:,} photos ({result["source"]})

{m["plan"]}.

| figure | value |
|---|---|
| decoding wall time | {m["decode_seconds"]:.1f} s ({rate:.1f} images/s) |
| decoding CPU time (all threads) | {m["decode_cpu_seconds"]:.1f} s \
({1000 * m["decode_cpu_seconds"] / m["images"]:.0f} ms per image) |
| indexing (listing, headers, EXIF orientation) | {m["index_seconds"]:.1f} s |
| resident memory before decoding (Python, TensorFlow, the index) | {_mib(m["rss_before_bytes"])} |
| peak resident memory while decoding | {_mib(m["peak_rss_bytes"])} |
| peak increase | {_mib(increase)}: the array {_mib(m["array_bytes"])} + {_mib(held)} in flight |
| every image at full size, for comparison | {_mib(m["full_size_bytes"])} |

EXIF orientations: {m["orientations"]}; sizes as shown (after the orientation): \
{", ".join(m["sizes_shown"])}.

The peak increase is the decoded array plus the images the parallel tf.data map is decoding,
turning and resizing at that moment (a few full-size images and their float copies for the
resize, TensorFlow's buffers), never the {_mib(m["full_size_bytes"])} that every image at full
size would take. Wall time depends on the other jobs of the machine (see its load below); CPU
time, summed over TensorFlow's threads, is the steadier figure.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--folder", help="a class-per-folder directory of photos to read instead")
    parser.add_argument("--out", default="results/decode_photos")
    parser.add_argument("--smoke", action="store_true", help="8 images of 200x150 (a test)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # the fresh process's side
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return None
    with tempfile.TemporaryDirectory() as temporary:
        if args.folder:
            folder, source = args.folder, f"the folder given, {args.folder}"
        else:
            count, size = (8, (150, 200)) if args.smoke else (args.images, PHOTO_SIZE)
            folder = write_photos(os.path.join(temporary, "photos"), count, size=size)
            source = (f"synthetic JPEGs of {size[1]}x{size[0]}, quality 90, every "
                      f"{PORTRAIT_EVERY}th tagged EXIF orientation 6")
        result = {"benchmark": "decode_photos", "source": source,
                  "measured": _measure_in_a_fresh_process(folder)}
    result.update(machine=machine(), command=command())
    text = save(args.out, result, markdown(result))
    print(text)
    return result


if __name__ == "__main__":
    main()
