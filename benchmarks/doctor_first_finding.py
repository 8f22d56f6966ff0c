"""Times `autoprep doctor FOLDER --model ...` on photos: what dominates, and how it scales.

Usage:
    python benchmarks/doctor_first_finding.py [--folder PATH ...] [--generate] [--images 1000]
        [--out results/doctor_first_finding] [--compare-sizes N]

Without `--folder` (or with `--generate`), writes `--images` photo-like JPEGs of 500x375 in 2
classes to a temporary folder (decoded at the default 192x256). Results name a folder by its
last path component. For each folder and each model below, the command
`autoprep doctor FOLDER --model benchmarks/doctor_first_finding.py:MODEL --json` runs in a fresh
process (TensorFlow import included): its wall and CPU seconds, the load average and the first
findings are recorded. Then, in this process, `diagnose` is taken apart: the seconds of decoding
and of each check (a check is charged with the shared statistics it is the first to need), at
several folder sizes (the first N images of each class, hard-linked), to show how each part
scales. `--compare-sizes N` also runs the model checks (of `SIZE_MODELS`) on N images at the
images' own size as well as downscaled to a long side of 128, to compare their findings.

The models are the TensorFlow image classification tutorial's CNN: `tutorial_cnn` as
published (with `Rescaling(1/255)`), `raw_cnn` without it (the seed article's case: raw 0-255
pixels, Adam at its default 1e-3) and `adam_1_cnn` with Adam at 1.0 (a learning rate too high).

Writes `<out>.json` and `<out>.md`.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

MODELS = ("tutorial_cnn", "raw_cnn")
SIZE_MODELS = ("tutorial_cnn", "raw_cnn", "adam_1_cnn")  # compared downscaled and full size
SCALING_SIZES = (250, 500, 1000)


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


def time_cli(folder, model):
    """Runs the doctor command in a fresh process: wall and CPU seconds, load, first findings."""
    spec = f"{os.path.abspath(__file__)}:{model}"
    command = [sys.executable, "-m", "autoprep", "doctor", folder, "--model", spec, "--json"]
    before, load = resource.getrusage(resource.RUSAGE_CHILDREN), os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_quiet_env())
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    return {
        "model": model,
        "command": "autoprep doctor FOLDER --model benchmarks/doctor_first_finding.py:" + model,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
                             1),
        "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
        "first_findings": [f"{f['id']} ({f['severity']})" for f in report["findings"][:3]],
        "first_evidence": report["findings"][0]["evidence"] if report["findings"] else "",
    }


def _quiet_env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def breakdown(folder, model_fn):
    """Wall and CPU seconds of decoding and of each check of `diagnose`, in this process."""
    from autoprep.doctor._checks import DATA_CHECKS, MODEL_CHECKS
    from autoprep.doctor.data_checks import DataContext
    from autoprep.doctor.model_checks import ModelContext

    phases = {}
    with _timer(phases, "index + decode"):
        data = DataContext(folder)
    for name in DATA_CHECKS.names():
        with _timer(phases, f"data: {name}"):
            list(DATA_CHECKS.get(name)(data) or ())
    entry = {"phases": phases, "images": len(data.folder.paths),
             "image_size": list(data.folder.image_size)}
    if model_fn is not None:
        model = ModelContext(data, model_fn)
        with _timer(phases, "model: build and probe (full size)"):
            model.probe  # noqa: B018 (computes the cached probe)
        with _timer(phases, "model: training tests and their counterfactual re-runs"):
            model.verdicts  # noqa: B018 (computes the cached verdicts)
        for name in MODEL_CHECKS.names():
            with _timer(phases, f"model: {name}"):
                list(MODEL_CHECKS.get(name)(model) or ())
        entry["training_runs"] = [f"{test} {change.text}" for test, change in model.runs_]
        entry["training_shape"] = list(model.training_shape)
    return entry


class _timer:
    def __init__(self, phases, name):
        self.phases, self.name = phases, name

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc):
        self.phases[self.name] = [round(time.perf_counter() - self.wall, 2),
                                  round(time.process_time() - self.cpu, 2)]


def subset(folder, per_class, root):
    """A folder of the first `per_class` images of each class, hard-linked (or copied)."""
    for name in sorted(os.listdir(folder)):
        source = os.path.join(folder, name)
        if not os.path.isdir(source):
            continue
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for file in sorted(os.listdir(source))[:per_class]:
            try:
                os.link(os.path.join(source, file), os.path.join(root, name, file))
            except OSError:
                import shutil

                shutil.copy(os.path.join(source, file), os.path.join(root, name, file))
    return root


def compare_sizes(folder, count, models):
    """First model findings at the downscaled training size and at the images' own size."""
    from autoprep.doctor import model_checks
    from autoprep.doctor._checks import MODEL_CHECKS, run_checks
    from autoprep.doctor.data_checks import DataContext
    from autoprep.doctor.report import Report

    folder = os.path.abspath(folder)
    classes = [d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))]
    rows = []
    with tempfile.TemporaryDirectory() as root:
        data = DataContext(subset(folder, count // len(classes), root))
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
                        help="an image folder to time (repeatable); default: a generated one")
    parser.add_argument("--generate", action="store_true",
                        help="also time a generated folder when --folder is given")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--compare-sizes", type=int, default=0, metavar="N")
    parser.add_argument("--out", default="results/doctor_first_finding")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    models = args.models.split(",")
    command = [a if not os.path.isdir(a) else os.path.join("PHOTOS", os.path.basename(
        os.path.normpath(a))) for a in sys.argv]
    result = {"benchmark": "doctor_first_finding", "folders": [],
              "command": "python " + " ".join(shlex.quote(a) for a in command),
              "nproc": os.cpu_count(), "python": platform.python_version(),
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip()}
    with tempfile.TemporaryDirectory() as scratch:
        folders = list(args.folder)
        if args.generate or not folders:
            start = time.perf_counter()
            generated = os.path.join(scratch, f"generated_{args.images}_photos")
            folders.insert(0, make_photos(generated, args.images))
            result["generation_seconds"] = round(time.perf_counter() - start, 1)
        for folder in folders:
            result["folders"].append(_measure(folder, models, scratch, args.compare_sizes))
            print(json.dumps(result["folders"][-1], indent=2), flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".json", "w") as file:
        json.dump(result, file, indent=2)
    with open(args.out + ".md", "w") as file:
        file.write(markdown(result))


def _measure(folder, models, scratch, compare):
    entry = {"folder": os.path.basename(os.path.normpath(folder)),
             "runs": [time_cli(folder, model) for model in models]}
    entry["breakdown"] = breakdown(folder, globals()[models[-1]])
    classes = [d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d))]
    total = entry["breakdown"]["images"]
    entry["scaling"] = {}
    for size in [n for n in SCALING_SIZES if n < total]:
        name = f"{os.path.basename(os.path.normpath(folder))}_first_{size}"
        root = subset(folder, size // len(classes), os.path.join(scratch, name))
        part = breakdown(root, None)
        entry["scaling"][part["images"]] = part["phases"]
    entry["scaling"][total] = {k: v for k, v in entry["breakdown"]["phases"].items()
                               if not k.startswith("model")}
    if compare:
        entry["sizes"] = compare_sizes(folder, compare, SIZE_MODELS)
    return entry


def markdown(result) -> str:
    """The results page: per folder, the command timings, the breakdown and the scaling."""
    lines = ["# autoprep doctor on photos", "",
             f"Machine: {result['nproc']} cores ({result['machine']}, Python "
             f"{result['python']}). Command: `{result['command']}`.", ""]
    for entry in result["folders"]:
        lines += _folder_markdown(entry)
    return "\n".join(lines) + "\n"


def _folder_markdown(entry):
    whole = entry["breakdown"]
    phases = whole["phases"]
    lines = [f"## {entry['folder']}: {whole['images']} images, decoded at "
             f"{whole['image_size'][0]}x{whole['image_size'][1]}", "",
             "| command | wall s | CPU s | load before / after | first findings |",
             "|---|---|---|---|---|"]
    for run in entry["runs"]:
        lines.append(f"| `{run['command']}` | {run['wall_seconds']} | {run['cpu_seconds']} | "
                     f"{run['load_before']} / {run['load_after']} | "
                     f"{', '.join(run['first_findings'])} |")
    lines += ["", f"In-process breakdown for `{entry['runs'][-1]['model']}` (a check is charged "
              "with the shared statistics it is the first to need), largest first:", "",
              "| phase | wall s | CPU s |", "|---|---|---|"]
    for name, (wall, cpu) in sorted(phases.items(), key=lambda kv: -kv[1][1])[:12]:
        lines.append(f"| {name} | {wall} | {cpu} |")
    shape = "x".join(map(str, whole["training_shape"][:2]))
    lines += ["", f"Training runs at {shape}: {', '.join(whole['training_runs'])}.", "",
              "Scaling with the number of images (CPU s of the data side: decode and checks):",
              "", "| images | index + decode | all data checks |", "|---|---|---|"]
    for count, part in sorted(entry["scaling"].items(), key=lambda kv: int(kv[0])):
        data = sum(v[1] for k, v in part.items() if k.startswith("data:"))
        lines.append(f"| {count} | {part['index + decode'][1]} | {round(data, 2)} |")
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
