"""How well `autoprep doctor` finds mislabeled images: folders with known injected label noise.

Each folder is written clean, then a share of its images (5 %, 10 %, 20 %) is moved to a
wrong class folder chosen at random. The doctor's `label_issues` check (a short stratified
cross-validated training of its probe network, then cleanlab's confident learning) ranks the
likeliest mislabeled files; this script scores that ranked list against the moved files:
precision and recall of its first k entries, for k = the number of moved images and for k =
10 % of the folder's images.

Folders: scikit-learn's handwritten digits written as PNGs as autoprep's demo writes them (all
1,797, 8x8 gray, 10 classes), and synthetic textures (64x64 RGB stripes: 6 classes of
orientation and frequency, each image with its own random colors, phase and noise). A real
photo folder can be added with `--folder NAME=PATH`.

Usage:
    python benchmarks/label_issues.py [--seeds 3] [--rates 0.05 0.1 0.2] [--folder NAME=PATH]
        [--out results/label_issues] [--smoke]

Writes `<out>.json` and `<out>.md`.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save  # noqa: E402

RATES = (0.05, 0.10, 0.20)
TARGET = "precision >= 0.6 in the top 10 % listed, at 10 % noise"
TEXTURE_CLASSES = [(angle, period) for period in (6.0, 11.0) for angle in (0, 60, 120)]


def write_digits(root, *, limit=None, seed=0) -> str:
    """The digits as the demo writes them, every class complete (`limit`: a stratified few)."""
    from autoprep.data.demo import write_digits_folder

    write_digits_folder(root, imbalance=1.0, seed=seed)
    if limit:
        for name in sorted(os.listdir(root)):
            for extra in sorted(os.listdir(os.path.join(root, name)))[limit // 10:]:
                os.remove(os.path.join(root, name, extra))
    return root


def texture(rng, angle, period, size):
    """One stripe image: orientation `angle` +-8 degrees, `period` +-10 %, random colors."""
    theta = np.deg2rad(angle + rng.uniform(-8, 8))
    period *= rng.uniform(0.9, 1.1)
    y, x = np.mgrid[0:size, 0:size]
    wave = np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period
                  + rng.uniform(0, 2 * np.pi))
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    pixels = low + (high - low) * (wave[..., None] + 1) / 2 + rng.normal(0, 20, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def write_textures(root, *, per_class=200, size=64, seed=0) -> str:
    """`per_class` stripe images in each of the `TEXTURE_CLASSES`."""
    rng = np.random.default_rng(seed)
    for c, (angle, period) in enumerate(TEXTURE_CLASSES):
        folder = os.path.join(root, f"stripes_{angle}deg_{period:g}px")
        os.makedirs(folder, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(texture(rng, angle, period, size)).save(
                os.path.join(folder, f"{c}_{i:04d}.png"))
    return root


def inject_noise(root, rate, *, seed=0) -> set:
    """Moves round(rate * n) images to another class folder, each to a random wrong one.

    Returns:
        The moved images' new paths, relative to `root` with "/" (as the doctor names them).
    """
    rng = np.random.default_rng(seed)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files = [(c, name) for c in classes for name in sorted(os.listdir(os.path.join(root, c)))]
    moved = set()
    for i in rng.choice(len(files), int(round(rate * len(files))), replace=False):
        source, name = files[i]
        target = rng.choice([c for c in classes if c != source])
        new_name = f"moved_from_{source}_{name}"
        shutil.move(os.path.join(root, source, name), os.path.join(root, target, new_name))
        moved.add(f"{target}/{new_name}")
    return moved


def top_k(listed, truth, k) -> dict:
    """Precision and recall of the first `k` listed paths (fewer when the list is shorter)."""
    shown = listed[:k]
    hits = sum(path in truth for path in shown)
    return {"k": k, "listed": len(shown), "hits": hits,
            "precision": hits / len(shown) if shown else None,
            "recall": hits / len(truth) if truth else None}


def measure(root, truth, *, seed=0) -> dict:
    """Runs the doctor's label check on `root` and scores its ranked list against `truth`."""
    from autoprep.doctor._checks import DATA_CHECKS, run_checks
    from autoprep.doctor.data_checks import DataContext

    started = time.perf_counter()
    context = DataContext(root, seed=seed)
    findings, _ = run_checks(DATA_CHECKS, context, names=["label_issues"])
    seconds = time.perf_counter() - started
    finding = next(iter(findings), None)
    data = finding.data if finding is not None else {}
    listed = [issue["path"] for issue in data.get("issues", [])]
    n = len(context.folder.paths)
    return {
        "images": n, "injected": len(truth), "finding": finding.id if finding else None,
        "flagged": len(listed), "probe_accuracy": data.get("out_of_fold_accuracy"),
        "learner": data.get("learner"), "seconds": round(seconds, 2),
        "at_injected": top_k(listed, truth, len(truth)),
        "at_10_percent": top_k(listed, truth, max(1, int(round(0.1 * n)))),
        "whole_list": top_k(listed, truth, len(listed)),
    }


FOLDERS = {
    "digits": lambda root, smoke: write_digits(root, limit=300 if smoke else None),
    "textures": lambda root, smoke: write_textures(root, per_class=30 if smoke else 200,
                                                   size=32 if smoke else 64),
}


def run(name, make, rates, seeds, work):
    rows = []
    for seed in seeds:
        for rate in rates:
            root = os.path.join(work, f"{name}-{seed}-{rate}")
            make(root)
            truth = inject_noise(root, rate, seed=seed)
            row = {"folder": name, "rate": rate, "seed": seed, **measure(root, truth)}
            row["load_average"] = list(os.getloadavg())
            print(_row_text(row), flush=True)
            rows.append(row)
            shutil.rmtree(root)
    return rows


def _copy_of(path):
    def make(root, smoke):
        shutil.copytree(path, root)
        return root
    return make


def _row_text(row) -> str:
    a, b = row["at_injected"], row["at_10_percent"]
    return (f"{row['folder']:>10} noise {row['rate']:.0%} seed {row['seed']}: flagged "
            f"{row['flagged']}, P@{a['k']} {_f(a['precision'])} R@{a['k']} {_f(a['recall'])}, "
            f"P@10% {_f(b['precision'])} R@10% {_f(b['recall'])}, probe accuracy "
            f"{_f(row['probe_accuracy'])}, {row['seconds']} s, load {row['load_average'][0]:.1f}")


def _f(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def summary(rows) -> list:
    """Mean and range over seeds, per folder and noise rate."""
    table = []
    for folder in dict.fromkeys(r["folder"] for r in rows):
        for rate in dict.fromkeys(r["rate"] for r in rows):
            group = [r for r in rows if r["folder"] == folder and r["rate"] == rate]
            if not group:
                continue

            def stat(key, part, group=group):
                values = [r[part][key] for r in group if r[part][key] is not None]
                return (float(np.mean(values)), float(min(values)), float(max(values))) \
                    if values else None

            table.append({
                "folder": folder, "rate": rate, "seeds": len(group),
                "images": group[0]["images"], "injected": group[0]["injected"],
                "flagged": float(np.mean([r["flagged"] for r in group])),
                "probe_accuracy": float(np.mean([r["probe_accuracy"] or 0 for r in group])),
                "seconds": float(np.mean([r["seconds"] for r in group])),
                **{f"{part}_{key}": stat(key, part) for part in ("at_injected", "at_10_percent")
                   for key in ("precision", "recall")},
                "load_average": [r["load_average"][0] for r in group],
            })
    return table


def markdown(result) -> str:
    def cell(value):
        return "–" if value is None else f"{value[0]:.2f} ({value[1]:.2f}-{value[2]:.2f})"

    lines = [
        "# Mislabeled images: precision and recall of the doctor's list",
        "",
        "Images moved to a wrong class folder at random; `autoprep doctor`'s `label_issues` "
        "finding (out-of-fold probabilities of its probe network, then cleanlab's "
        "`find_label_issues`, ranked by self-confidence) is scored against them. P@k and R@k: "
        "precision and recall of the first k files listed, k = the number of moved images "
        "and k = 10 % of the images. Mean over seeds (min-max in brackets).",
        "",
        f"Target: {TARGET}.",
        "",
        "| folder | images | noise | moved | listed (mean) | probe accuracy | P@moved | "
        "R@moved | P@10% | R@10% | seconds | load average (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in result["summary"]:
        lines.append(
            f"| {row['folder']} | {row['images']} | {row['rate']:.0%} | {row['injected']} | "
            f"{row['flagged']:.1f} | {row['probe_accuracy']:.2f} | "
            f"{cell(row['at_injected_precision'])} | {cell(row['at_injected_recall'])} | "
            f"{cell(row['at_10_percent_precision'])} | {cell(row['at_10_percent_recall'])} | "
            f"{row['seconds']:.1f} | {', '.join(f'{x:.1f}' for x in row['load_average'])} |")
    lines += ["", "Probe accuracy: balanced accuracy of the out-of-fold predictions against the "
              "noisy labels (a perfect model scores about 1 - noise). Seconds: the label check "
              "alone (decoding, probe training, cleanlab), per folder.", ""]
    met = [row for row in result["summary"] if abs(row["rate"] - 0.1) < 1e-9]
    for row in met:
        value = row["at_10_percent_precision"]
        verdict = "met" if value and value[0] >= 0.6 else "NOT met"
        lines.append(f"- {row['folder']}: target {verdict} (P@10% = {cell(value)}).")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES))
    parser.add_argument("--folder", action="append", default=[], metavar="NAME=PATH",
                        help="also measure a real class-per-folder image directory (copied)")
    parser.add_argument("--out", default="results/label_issues")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny folders, one seed, 10 %% noise: checks the script runs")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    seeds = [0] if args.smoke else list(range(args.seeds))
    rates = [0.1] if args.smoke else args.rates
    folders = dict(FOLDERS)
    for spec in args.folder:
        name, _, path = spec.partition("=")
        folders[name] = _copy_of(path)
    rows = []
    with tempfile.TemporaryDirectory(prefix="autoprep-label-issues-") as work:
        for name, make in folders.items():
            rows += run(name, lambda root, make=make: make(root, args.smoke), rates, seeds, work)
    result = {"rows": rows, "summary": summary(rows), "smoke": args.smoke,
              "machine": machine(), "command": command(), "target": TARGET}
    print(save(args.out, result, markdown(result)))
    return result


if __name__ == "__main__":
    main()
