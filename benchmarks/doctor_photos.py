"""Times `autoprep doctor` (data checks, the default) on 1,000 photo-like JPEGs, check by check.

The photos are crops of the two photographs scikit-learn ships (`load_sample_images`: a
temple in China and a flower), one class each, saved as JPEG at sizes from 320 to 640 pixels
wide in both orientations, as a camera folder would hold them. A real folder can be timed
instead with `--folder PATH`.

Usage:
    python benchmarks/doctor_photos.py [--images 1000] [--folder PATH] [--out results/doctor_photos]

Writes `<out>.json` and `<out>.md`: the wall time of the whole `diagnose()` call and of each
part (reading and decoding the folder, then every check), with the machine's load.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402


def write_photos(root, n_images, *, seed=0) -> str:
    """`n_images` JPEG crops of scikit-learn's two sample photographs, one class each."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = load_sample_images()
    for i in range(n_images):
        c = i % 2
        source = Image.fromarray(photos.images[c])
        width = int(rng.integers(320, 641))
        height = width * 3 // 4
        if rng.random() < 0.3:
            width, height = height, width
        scale = rng.uniform(0.35, 0.9)
        box_w, box_h = int(427 * scale * width / max(width, height)), int(
            427 * scale * height / max(width, height))
        left, top = rng.integers(0, 640 - box_w), rng.integers(0, 427 - box_h)
        crop = source.crop((left, top, left + box_w, top + box_h)).resize((width, height))
        folder = os.path.join(root, photos.filenames[c].rsplit("/", 1)[-1][:-4])
        os.makedirs(folder, exist_ok=True)
        crop.save(os.path.join(folder, f"{i:05d}.jpg"), quality=int(rng.integers(80, 96)))
    return root


def time_checks(folder) -> dict:
    """Seconds of reading the folder and of each registered data check, as `diagnose` runs."""
    from autoprep.doctor._checks import DATA_CHECKS
    from autoprep.doctor.data_checks import DataContext

    started, cpu_started = time.perf_counter(), time.process_time()
    context = DataContext(folder)
    parts = {"index and decode": time.perf_counter() - started}
    cpu = {"index and decode": time.process_time() - cpu_started}
    findings = []
    for name in DATA_CHECKS.names():
        check_started, check_cpu = time.perf_counter(), time.process_time()
        findings += list(DATA_CHECKS.get(name)(context) or ())
        parts[name] = time.perf_counter() - check_started
        cpu[name] = time.process_time() - check_cpu
    return {"images": len(context.folder.paths), "image_size": list(context.folder.image_size),
            "parts": parts, "cpu": cpu, "total": time.perf_counter() - started,
            "total_cpu": time.process_time() - cpu_started,
            "findings": [f.id for f in findings]}


def markdown(result) -> str:
    run = result["run"]
    parts = sorted(run["parts"].items(), key=lambda item: -item[1])
    lines = [
        f"# autoprep doctor on {run['images']} photos",
        "",
        f"`diagnose()` with its default settings (data checks) on {result['what']}, decoded at "
        f"{run['image_size'][0]}x{run['image_size'][1]}: **{run['total']:.1f} s** in all; "
        f"target: well under 60 s. The end-to-end `autoprep doctor` command (a fresh process, "
        f"TensorFlow start-up included) took {result['cli_seconds']:.1f} s.",
        "",
        "| part | seconds | share | CPU seconds (all threads) |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {seconds:.2f} | {seconds / run['total']:.0%} | "
              f"{run['cpu'][name]:.2f} |" for name, seconds in parts if seconds >= 0.05]
    lines += [f"| all | {run['total']:.2f} | 100% | {run['total_cpu']:.2f} |"]
    small = [name for name, seconds in parts if seconds < 0.05]
    lines += ["", f"Under 0.05 s each: {', '.join(small)}.", "",
              f"Findings: {', '.join(run['findings'])}.", "",
              "How it scales: `label_issues` trains its probe 5 times 300 steps of 32 images "
              "at 32x32 whatever the folder's size (on a stratified sample of 2,000 above "
              "that), then predicts every image (linear, cheap); `conflicting_labels` is the first "
              "check to read the duplicate search (pHash of every image and of its mirror "
              "image, one pass over the decoded pixels: linear in pixels); decoding is linear "
              "in the files' pixels. CPU seconds count every thread, so they do not grow with "
              "the machine's load the way wall seconds do.", ""]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--folder", help="time this class-per-folder directory instead")
    parser.add_argument("--out", default="results/doctor_photos")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import subprocess

    with tempfile.TemporaryDirectory(prefix="autoprep-doctor-photos-") as work:
        folder = args.folder or write_photos(os.path.join(work, "photos"), args.images)
        what = (f"the folder {args.folder}" if args.folder else
                f"{args.images} JPEG crops of scikit-learn's two sample photographs (320-640 "
                "pixels wide, two classes)")
        run = time_checks(folder)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "autoprep", "doctor", folder], check=False,
                       capture_output=True)
        cli_seconds = time.perf_counter() - started
    result = {"what": what, "run": run, "cli_seconds": cli_seconds, "machine": machine(),
              "command": command()}
    print(save(args.out, result, markdown(result)))
    return result


if __name__ == "__main__":
    main()
