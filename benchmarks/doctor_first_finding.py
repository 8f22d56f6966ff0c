"""Which finding the doctor puts first for a broken and a sound CNN, on photo folders.

Usage:
    python benchmarks/doctor_first_finding.py [--folder PATH ...] [--images 1000]
        [--models tutorial_cnn,raw_cnn,adam_1_cnn] [--compare-sizes N]
        [--out results/doctor_first_finding]

Without `--folder`, writes `--images` photo-like JPEGs of 500x375 in 2 classes (blurred shapes
on smooth backgrounds) to a temporary folder. With `--folder PATH` (repeatable), reads that
class-per-folder directory of photos; a folder that does not exist is skipped with a message,
and the script writes nothing when every folder was skipped. Each folder is decoded once at the
default image size, then the model checks run for each model (`ModelContext`, as `autoprep
doctor FOLDER --model benchmarks/doctor_first_finding.py:MODEL` runs them after the data
checks): their findings as the report ranks them (the data checks' findings aside), the first
one's evidence and fix, the training runs it took and its seconds. `--compare-sizes N` also runs
the model checks on N images of the first folder with the training tests at the images' own
size as well as downscaled to a long side of 128, to compare their findings.

The models are the TensorFlow image classification tutorial's CNN: `tutorial_cnn` as
published (with `Rescaling(1/255)`), `raw_cnn` without it (the common broken case: raw 0-255
pixels, Adam at its default 1e-3) and `adam_1_cnn` with Adam at 1.0 (a learning rate too high).

Writes `<out>.json` and `<out>.md`.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from doctor_photos import subset  # noqa: E402
from synthetic import machine, photos_command, present_folders, save  # noqa: E402

MODELS = ("tutorial_cnn", "raw_cnn", "adam_1_cnn")
SIZE_MODELS = MODELS  # compared downscaled and at full size


def _cnn(input_shape, num_classes, *, rescale=True, learning_rate=1e-3):
    import keras

    layers = keras.layers
    model = keras.Sequential([
        keras.Input(input_shape),
        *([layers.Rescaling(1 / 255)] if rescale else []),
        layers.Conv2D(16, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Conv2D(64, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(),
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dense(num_classes),
    ])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def tutorial_cnn(input_shape, num_classes):
    """The tutorial's CNN: Rescaling(1/255), three conv blocks, Dense(128), logits; Adam 1e-3."""
    return _cnn(input_shape, num_classes)


def raw_cnn(input_shape, num_classes):
    """The same CNN without its Rescaling layer: it is fed raw 0-255 pixels."""
    return _cnn(input_shape, num_classes, rescale=False)


def adam_1_cnn(input_shape, num_classes):
    """The tutorial's CNN with Adam at a learning rate of 1.0."""
    return _cnn(input_shape, num_classes, learning_rate=1.0)


def make_photos(root, count, seed=0):
    """Writes `count` photo-like 500x375 JPEGs, alternating between 2 class folders."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    from doctor_images import photo

    rng = np.random.default_rng(seed)
    for i in range(count):
        folder = os.path.join(root, f"class_{i % 2}")
        os.makedirs(folder, exist_ok=True)
        photo(rng, i % 2).save(os.path.join(folder, f"{i:05d}.jpg"), quality=90)
    return root


def model_findings(data, model) -> dict:
    """The model checks' findings for `model` on the decoded folder `data`, ranked."""
    from autoprep.doctor import model_checks
    from autoprep.doctor._checks import MODEL_CHECKS, run_checks
    from autoprep.doctor.report import Report

    started = time.perf_counter()
    context = model_checks.ModelContext(data, globals()[model])
    findings, _ = run_checks(MODEL_CHECKS, context)
    report = Report(data_dir="", summary={}, findings=findings, checks=[])
    top = report.findings[0] if report.findings else None
    return {
        "model": model,
        "findings": [f"{f.id} ({f.severity})" for f in report.findings if f.severity != "info"],
        "first": None if top is None else {"id": top.id, "severity": top.severity,
                                           "title": top.title, "evidence": top.evidence,
                                           "fix": top.fix},
        "training_shape": list(context.training_shape),
        "training_runs": len(context.runs_),
        "seconds": round(time.perf_counter() - started, 1),
    }


def compare_sizes(folder, count, models):
    """First model findings at the downscaled training size and at the images' own size."""
    from autoprep.doctor import model_checks
    from autoprep.doctor._checks import MODEL_CHECKS, run_checks
    from autoprep.doctor.data_checks import DataContext
    from autoprep.doctor.report import Report

    rows = []
    with tempfile.TemporaryDirectory() as root:
        data = DataContext(subset(folder, count, root))
        for model in models:
            row = {"model": model}
            for label, side in (("downscaled", model_checks.TRAINING_SIDE), ("full", 10_000)):
                model_checks.TRAINING_SIDE, saved = side, model_checks.TRAINING_SIDE
                start = time.perf_counter()
                context = model_checks.ModelContext(data, globals()[model])
                findings, _ = run_checks(MODEL_CHECKS, context)
                model_checks.TRAINING_SIDE = saved
                report = Report(data_dir="", summary={}, findings=findings, checks=[])
                row[label] = {
                    "training_shape": list(context.training_shape),
                    "findings": [f"{f.id} ({f.severity})" for f in report.findings
                                 if f.severity != "info"],
                    "seconds": round(time.perf_counter() - start, 1),
                }
            rows.append(row)
    return {"images": count, "rows": rows}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", action="append", default=[],
                        help="a class-per-folder directory of photos (repeatable)")
    parser.add_argument("--images", type=int, default=1000,
                        help="images generated, or the most taken from each folder")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--compare-sizes", type=int, default=0, metavar="N")
    parser.add_argument("--out", default="results/doctor_first_finding")
    args = parser.parse_args(argv)
    folders = present_folders(args.folder)
    if args.folder and not folders:
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from autoprep.doctor.data_checks import DataContext

    models = args.models.split(",")
    result = {"folders": []}
    with tempfile.TemporaryDirectory(prefix="autoprep-first-finding-") as scratch:
        if not folders:
            folders = [make_photos(os.path.join(scratch, "photo_like"), args.images)]
        for folder in folders:
            name = os.path.basename(os.path.normpath(folder))
            data = DataContext(subset(folder, args.images, os.path.join(scratch, "cut", name)))
            entry = {"folder": name, "images": len(data.folder.paths),
                     "image_size": list(data.folder.image_size),
                     "runs": [model_findings(data, model) for model in models]}
            if args.compare_sizes and not result["folders"]:  # the first folder only
                entry["sizes"] = compare_sizes(folder, args.compare_sizes, SIZE_MODELS)
            result["folders"].append(entry)
            print(entry["runs"], flush=True)
    result.update(machine=machine(), command=photos_command(args.folder))
    print(save(args.out, result, markdown(result)))
    return result


def markdown(result) -> str:
    """The results page: per folder, each model's findings and the first one's evidence."""
    lines = ["# The doctor's first finding on photo folders", "",
             "The model checks' findings (warnings and errors, as the report ranks them; the "
             "data checks' findings aside) for each model, then the first finding in full.", ""]
    for entry in result["folders"]:
        lines += _folder_markdown(entry)
    return "\n".join(lines)


def _folder_markdown(entry):
    lines = [f"## {entry['folder']}: {entry['images']} images, decoded at "
             f"{entry['image_size'][0]}x{entry['image_size'][1]}", "",
             "| model | findings | training runs | seconds |", "|---|---|---:|---:|"]
    for run in entry["runs"]:
        lines.append(f"| `{run['model']}` | {', '.join(run['findings']) or 'none'} | "
                     f"{run['training_runs']} at {'x'.join(map(str, run['training_shape'][:2]))}"
                     f" | {run['seconds']} |")
    for run in entry["runs"]:
        first = run["first"]
        if first and first["severity"] != "info":
            lines += ["", f"`{run['model']}`: **[{first['id']}] {first['title']}**", "",
                      f"> {first['evidence']}", ">", f"> fix: {first['fix']}"]
    if "sizes" in entry:
        lines += ["", f"Model findings on {entry['sizes']['images']} images, training tests "
                  "downscaled vs at the images' own size:", "",
                  "| model | downscaled | full size |", "|---|---|---|"]
        for row in entry["sizes"]["rows"]:
            cells = [f"{', '.join(row[k]['findings']) or 'none'} "
                     f"({'x'.join(map(str, row[k]['training_shape'][:2]))}, "
                     f"{row[k]['seconds']} s)" for k in ("downscaled", "full")]
            lines.append(f"| {row['model']} | {cells[0]} | {cells[1]} |")
    return lines + [""]


if __name__ == "__main__":
    main()
