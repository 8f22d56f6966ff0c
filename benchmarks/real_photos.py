"""Real photos (issue 15): autoprep against hand configurations on photo folders from public
repositories, at autoprep's default image size and at 64x64.

The photos are not in this repository: each folder is a class-per-folder copy of a public
repository's images (table `SOURCES`: repository, commit, paths). Put them at
`PHOTOS/<folder>/<class>/<files>` and pass `--photos PHOTOS` (or set `AUTOPREP_PHOTOS`);
without them the script says where to put them and exits 0.

The protocol is that of `benchmarks/quality.py`: per folder, byte-identical files are dropped
(one copy kept; a file found in two classes is dropped from both), at most `max_images` are
kept (stratified), an outer stratified 75/25 split is made, and autoprep only ever sees the
training part. Every row trains the same small CNN (quality.py's `cnn`) for the same epochs on
the whole training part and is scored on the test part (balanced accuracy and macro-F1, mean
and std over 5 training seeds; seed S starts every row from the same initial weights):

- autoprep: `autoprep.tune` on the training folder at its defaults (`image_size=None`) or at
  64x64, then its exported module used as a user would (`list_files`, `make_train_dataset`,
  `FIT_KWARGS`, `make_loss`/`adjust` if exported; the test images through the module's own
  `make_eval_dataset`, so they are decoded as a user's would be);
- hand rows (quality.py's): raw pixels, [0,1], z-score, [0,1] + class weights, z-score + class
  weights + light augmentation, on the images autoprep's decoder gives at the same size;
- the model-aware path: a Keras Applications MobileNetV2 (alpha 0.35, `weights=None`, 96x96)
  through autoprep (its normalization fixed to the backbone's x / 127.5 - 1) and by hand with
  that convention.

`--trial-cost` times one trial of the demo model (`autoprep.data.demo.demo_model`) at the
default size and at half the size per side.

    python benchmarks/real_photos.py --photos PHOTOS --out results/real_photos.json
    python benchmarks/real_photos.py --smoke --out /tmp/smoke.json    # generated, seconds
    python benchmarks/real_photos.py --render results/real_photos.json  # the page
"""

import argparse
import collections
import dataclasses
import hashlib
import json
import os
import platform
import shlex
import shutil
import sys
import tempfile
import time

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quality  # noqa: E402

ENVIRONMENT = "AUTOPREP_PHOTOS"
SMALL_SIZE = (64, 64)
BACKBONE_SIZE = (96, 96)
HAND_ROWS = quality.HAND_ROWS
BACKBONE_ROWS = ("autoprep, MobileNetV2 0.35 (96x96)", "hand: MobileNetV2 0.35 + its x/127.5-1")


class Source(collections.namedtuple("Source", "repo commit what paths")):
    """Where a folder's photos come from: a public repository at a commit, and its paths."""


SOURCES = {
    "ants_bees": Source("sayheyhey/hymenoptera_data", "4a8ac7063913c374c0312cf91a5ae96d11472d2b",
                        "ants and bees (PyTorch's transfer-learning tutorial data)",
                        "train/{ants,bees}, val/{ants,bees}, merged per class"),
    "weather": Source("Potassium-chromate/CNN-for-recognizer-weather",
                      "9bbc18025a4e6c27cd4bd559b6de1d1ae1743e34",
                      "outdoor scenes: cloudy, rain, shine, sunrise (Multi-class Weather Dataset)",
                      "weather_image(dataset)/{train,test}/<class>, merged per class"),
    "brain_mri": Source("MohamedAliHabib/Brain-Tumor-Detection",
                        "30470ae8eb2e4a523df7dc45dd5323903cb98365",
                        "brain MRI slices, tumor yes/no", "yes, no"),
    "food4": Source("Shyam-daniel/testing12", "4926a00e69bd7bd9828b4df02b3efa8d7b40f2c3",
                    "food photos: donut, pizza, popcorn, pumpkin cake (the repository names "
                    "the folders after brain tumors; renamed after what they show)",
                    "{Training,Testing}/{no_tumor->donut, pituitary_tumor->pizza, "
                    "meningioma_tumor->popcorn, glioma_tumor->pumpkin_cake}"),
    "trashnet": Source("congduytran12/Trash-Classification-",
                       "00212f2c18dcdb9045c74481eaae5baaf72537df",
                       "waste on a white board, phone photos (TrashNet), imbalanced 4.3:1",
                       "dataset-resized/<class>"),
    "cats_dogs": Source("BachNgoH/test-deep-learning", "0040c9de1de7f51b2035178999246d1bc37473f6",
                        "cats and dogs (Kaggle Dogs vs. Cats)", "pets/{cats,dogs}"),
}
DEFAULT_FOLDERS = ("ants_bees", "weather", "trashnet", "food4", "brain_mri")


@dataclasses.dataclass
class Settings:
    """What every row shares."""

    trials: int = 10
    epochs: int = 8
    train_seeds: tuple = (0, 1, 2, 3, 4)
    max_images: int = 600


SMOKE = Settings(trials=2, epochs=1, train_seeds=(0, 1), max_images=40)
SMOKE_SIZE = (16, 16)
SMOKE_BACKBONE_SIZE = (32, 32)


# ---------------------------------------------------------------------------- the folders


def list_photos(folder):
    """(paths relative to `folder`, labels, class names, dropped) of a class-per-folder folder.

    Byte-identical files are kept once (the first in sorted order); a file whose copy is in
    another class is dropped from both, its label being in conflict. `dropped` counts both.
    """
    from autoprep.data.index import IMAGE_EXTENSIONS

    class_names = sorted(d for d in os.listdir(folder)
                         if os.path.isdir(os.path.join(folder, d)) and not d.startswith("."))
    found = []
    for label, name in enumerate(class_names):
        for file in sorted(os.listdir(os.path.join(folder, name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                found.append((f"{name}/{file}", label))
    digests = collections.defaultdict(list)
    for path, label in found:
        with open(os.path.join(folder, path), "rb") as handle:
            digests[hashlib.sha256(handle.read()).hexdigest()].append((path, label))
    keep, dropped = set(), {"duplicates": 0, "conflicting_labels": 0}
    for copies in digests.values():
        if len({label for _, label in copies}) > 1:
            dropped["conflicting_labels"] += len(copies)
        else:
            keep.add(copies[0][0])
            dropped["duplicates"] += len(copies) - 1
    kept = [(path, label) for path, label in found if path in keep]
    return [p for p, _ in kept], np.array([y for _, y in kept]), class_names, dropped


def cap(labels, max_images, *, seed=0) -> np.ndarray:
    """Indices of at most `max_images` of `labels`, stratified (each class keeps its share)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    if len(labels) <= max_images:
        return indices
    kept, _ = train_test_split(indices, train_size=max_images, stratify=labels, random_state=seed)
    return np.sort(kept)


def link_files(source, paths, target) -> str:
    """Hard links (copies across file systems) of `source/path` under `target/path`."""
    for path in paths:
        destination = os.path.join(target, path)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        try:
            os.link(os.path.join(source, path), destination)
        except OSError:
            shutil.copyfile(os.path.join(source, path), destination)
    return target


@dataclasses.dataclass
class Prepared:
    """A folder split for the benchmark: training and test folders and what they hold."""

    train_dir: str
    test_dir: str
    facts: dict


def prepare(name, root, workdir, settings) -> Prepared:
    """Lists, de-duplicates, caps and splits `root/name`; links the parts under `workdir`."""
    folder = os.path.join(root, name)
    paths, labels, class_names, dropped = list_photos(folder)
    kept = cap(labels, settings.max_images)
    paths, labels = [paths[i] for i in kept], labels[kept]
    train, test = quality.outer_split(labels)
    train_dir = link_files(folder, [paths[i] for i in train], os.path.join(workdir, name, "train"))
    test_dir = link_files(folder, [paths[i] for i in test], os.path.join(workdir, name, "test"))
    digest = hashlib.sha256("\n".join(f"{labels[i]} {paths[i]}" for i in train).encode())
    facts = {
        "class_names": class_names, "dropped": dropped, "images": len(labels),
        "train_counts": np.bincount(labels[train], minlength=len(class_names)).tolist(),
        "test_counts": np.bincount(labels[test], minlength=len(class_names)).tolist(),
        "fingerprint": digest.hexdigest()[:16],
    }
    return Prepared(train_dir, test_dir, facts)


def decoded(prepared, image_size):
    """(x_train, y_train, x_test, y_test, classes) as autoprep decodes them, uint8; the
    training folder's default size when `image_size` is None, the test part at the same."""
    from autoprep.data.decode import read_image_folder

    train = read_image_folder(prepared.train_dir, image_size=image_size)
    test = read_image_folder(prepared.test_dir, image_size=train.image_size,
                             channels=train.channels)
    return (np.asarray(train.images), train.labels, np.asarray(test.images), test.labels,
            len(train.class_names))


def as_float(data):
    x_train, y_train, x_test, y_test, classes = data
    return x_train.astype(np.float32), y_train, x_test.astype(np.float32), y_test, classes


# ------------------------------------------------------------------------------ the models


def mobilenet(input_shape, num_classes, seed=None):
    """MobileNetV2 (alpha 0.35, no weights: nothing downloads) nested as users write it, with
    a pooled softmax head; compiled as every row (quality.compile_model)."""
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    base = keras.applications.MobileNetV2(input_shape=input_shape, alpha=0.35,
                                          include_top=False, weights=None)
    inputs = keras.Input(input_shape)
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return quality.compile_model(keras.Model(inputs, outputs))


def cnn_fn(input_shape, num_classes):
    """What autoprep receives for the CNN rows: quality.py's CNN, compiled the same way."""
    return quality.compile_model(quality.cnn(input_shape, num_classes))


def mobilenet_fn(input_shape, num_classes):
    return mobilenet(input_shape, num_classes)


BUILDERS = {  # name -> (model_fn for autoprep, seeded builder for training)
    "cnn": (cnn_fn, lambda shape, classes, seed: quality.compile_model(
        quality.cnn(shape, classes, seed))),
    "mobilenet": (mobilenet_fn, mobilenet),
}


# ------------------------------------------------------------------------------------ rows


def hand_row(row, data, settings) -> dict:
    """A hand row of quality.py on these images (arrays in float32)."""
    return quality.hand_row(row, as_float(data), settings)


def backbone_hand_row(data, settings) -> dict:
    """MobileNetV2 trained on x / 127.5 - 1 (keras.applications.mobilenet_v2.preprocess_input)."""
    import keras

    x_train, y_train, x_test, y_test, classes = as_float(data)
    runs = []
    for seed in settings.train_seeds:
        keras.utils.set_random_seed(seed)
        model = mobilenet(x_train.shape[1:], classes, seed)
        model.fit(x_train / 127.5 - 1, y_train, batch_size=quality.BATCH_SIZE,
                  epochs=settings.epochs, verbose=0)
        runs.append(quality.scores(y_test, quality.predict(model, x_test / 127.5 - 1)))
    return quality.summary(runs)


def autoprep_row(prepared, image_size, settings, workdir, search_seed, *, builder="cnn",
                 candidates=False) -> dict:
    """autoprep.tune on the training folder, then its exported module trained as a user would.

    With `candidates`, every configuration the selection re-evaluated is also trained (live
    pipeline, `pipeline_row`) and scored on the test part, for studies of the selection rule.
    """
    import keras

    import autoprep

    model_fn, build = BUILDERS[builder]
    started = time.monotonic()
    result = autoprep.tune(model_fn, prepared.train_dir, max_trials=settings.trials,
                           epochs=settings.epochs, batch_size=quality.BATCH_SIZE, test_split=0,
                           baseline=False, seed=search_seed, verbose=0, directory=workdir,
                           image_size=image_size, project_name=f"search_seed_{search_seed}",
                           overwrite=True)
    search_seconds = time.monotonic() - started
    path = result.export(os.path.join(workdir, f"pipeline_seed_{search_seed}.py"))
    runs = []
    for seed in settings.train_seeds:
        # A fresh module per training: its callbacks and gates hold state.
        pipeline = quality.load_module(path, f"photos_pipeline_{search_seed}_{seed}")
        keras.utils.set_random_seed(seed)
        paths, labels = pipeline.list_files(prepared.train_dir)
        train_ds = pipeline.make_train_dataset(paths, labels, batch_size=quality.BATCH_SIZE,
                                               seed=seed)
        make_loss = getattr(pipeline, "make_loss", None)  # a logit-adjusted loss, if chosen
        model = build((*pipeline.IMAGE_SIZE, pipeline.CHANNELS), len(pipeline.CLASS_NAMES), seed)
        if make_loss or pipeline.ONE_HOT_LABELS:
            quality.compile_model(model, one_hot=bool(pipeline.ONE_HOT_LABELS),
                                  loss=make_loss(from_logits=False) if make_loss else None)
        model.fit(train_ds, epochs=settings.epochs, verbose=0, **pipeline.FIT_KWARGS)
        test_paths, test_labels = pipeline.list_files(prepared.test_dir)
        probabilities = model.predict(pipeline.make_eval_dataset(test_paths), verbose=0)
        adjust = getattr(pipeline, "adjust", None)  # post-hoc logit adjustment, when exported
        if adjust is not None:
            probabilities = np.asarray(adjust(probabilities))
        runs.append(quality.scores(np.asarray(test_labels), probabilities))
        del sys.modules[pipeline.__name__]
    out = quality.summary(runs)
    out.update(best=result.best_config, validation_score=result.best_score,
               search_seconds=round(search_seconds, 1), trials=len(result.trials),
               image_size=list(result.data["image_size"]),
               input_convention=result.data.get("input_convention"),
               selection=_selection(result.selection),
               first_trials=[t.config for t in result.trials[:5]])
    if candidates and result.selection:
        data = decoded(prepared, tuple(result.data["image_size"]))
        for candidate in out["selection"]["candidates"]:
            candidate["test"] = pipeline_row(candidate["config"], data, settings,
                                             builder=builder)
    return out


def _selection(selection):
    """The selection's record without per-image predictions (JSON-sized)."""
    if not selection:
        return None
    keep = ("trial_id", "number", "default", "config", "search_score", "scores", "mean", "std",
            "complexity", "noise")
    return {**{k: v for k, v in selection.items() if k != "candidates"},
            "candidates": [{k: c.get(k) for k in keep} for c in selection["candidates"]]}


def pipeline_row(config, data, settings, *, builder="cnn") -> dict:
    """A pipeline config trained as a trial trains it (autoprep's live pipeline on the decoded
    uint8 arrays, fitted on the training part), scored on the test part."""
    import keras

    from autoprep.choices.pipeline import Pipeline

    _, build = BUILDERS[builder]
    x_train, y_train, x_test, y_test, classes = data
    runs = []
    for seed in settings.train_seeds:
        keras.utils.set_random_seed(seed)
        pipeline = Pipeline.from_config(config).clone().fit(x_train, y_train, classes)
        model = build(x_train.shape[1:], classes, seed)
        if pipeline.mix_op is not None:
            quality.compile_model(model, one_hot=True)
        pipeline.imbalance.prepare_model(model, from_logits=False)
        train_ds, fit_kwargs = pipeline.train_dataset(
            x_train, y_train, num_classes=classes, batch_size=quality.BATCH_SIZE,
            epochs=settings.epochs, seed=seed)
        model.fit(train_ds, epochs=settings.epochs, verbose=0, **fit_kwargs)
        probabilities = model.predict(pipeline.eval_dataset(x_test), verbose=0)
        tau = config.get("imbalance", {}).get("tau_")
        if tau is not None:  # post-hoc adjustment, with the tau the search chose
            pipeline.imbalance.tau_ = tau
            probabilities = pipeline.imbalance.adjust(probabilities)
        runs.append(quality.scores(y_test, probabilities))
    return quality.summary(runs)


def size_label(image_size) -> str:
    return "default" if image_size is None else f"{image_size[0]}x{image_size[1]}"


def run_size(name, prepared, image_size, rows, settings, workdir, done, *, candidates=False):
    """Measures `rows` of one folder at one size; `done(unit)` after each row."""
    label = size_label(image_size)
    data = None
    for row in rows:
        started = time.monotonic()
        if row.startswith("autoprep"):
            seed = int(row.rsplit(" ", 1)[1].rstrip(")"))
            result = autoprep_row(prepared, image_size, settings,
                                  os.path.join(workdir, name, label), seed,
                                  candidates=candidates)
        else:
            if data is None:
                data = decoded(prepared, image_size)
            result = hand_row(row, data, settings)
            result["image_size"] = list(data[0].shape[1:3])
        seconds = round(time.monotonic() - started, 1)
        _say(f"{name:10s} {label:8s} {row:38s} {quality._cell(result, 'balanced_accuracy')}  "
             f"({seconds:.0f} s)")
        done(name, {"sizes": {label: {"rows": {row: result}, "seconds": {row: seconds}}}})


def run_backbone(name, prepared, settings, workdir, done, *, image_size=BACKBONE_SIZE):
    """The model-aware rows: MobileNetV2 through autoprep, and by hand with its convention."""
    for row in BACKBONE_ROWS:
        started = time.monotonic()
        if row.startswith("autoprep"):
            result = autoprep_row(prepared, image_size, settings,
                                  os.path.join(workdir, name, "backbone"), 0,
                                  builder="mobilenet")
        else:
            result = backbone_hand_row(decoded(prepared, image_size), settings)
        seconds = round(time.monotonic() - started, 1)
        _say(f"{name:10s} backbone {row:38s} {quality._cell(result, 'balanced_accuracy')}  "
             f"({seconds:.0f} s)")
        done(name, {"backbone": {"rows": {row: result}, "seconds": {row: seconds}}})


# ----------------------------------------------------------------------------- trial cost


class TrialTimer:
    """Times each trial from its model's build (`model_fn` is called as a trial starts) to
    its end (`on_trial_end`)."""

    def __init__(self, model_fn):
        self.model_fn, self.built, self.seconds = model_fn, None, []

    def build(self, input_shape, num_classes):
        self.built = time.monotonic()
        return self.model_fn(input_shape, num_classes)

    def trial_ended(self, result, trial):
        self.seconds.append(round(time.monotonic() - self.built, 1))


def trial_cost(name, prepared, settings, workdir, done, *, trials=2):
    """Times the first `trials` trials of the demo model at the default size and at half of it
    per side (no re-evaluation, no test split): the seconds a user waits per trial."""
    import autoprep
    from autoprep.data.decode import plan_decoding
    from autoprep.data.demo import demo_model
    from autoprep.data.index import index_directory

    default = plan_decoding(index_directory(prepared.train_dir)).image_size
    half = (max(1, default[0] // 2), max(1, default[1] // 2))
    for image_size in (default, half):
        timer = TrialTimer(demo_model)
        started = time.monotonic()
        result = autoprep.tune(
            timer.build, prepared.train_dir, max_trials=trials, epochs=settings.epochs,
            test_split=0, reevaluate=0, baseline=False, seed=0, image_size=image_size,
            directory=os.path.join(workdir, name, "cost"), overwrite=True, verbose=0,
            on_trial_end=timer.trial_ended)
        unit = {"image_size": list(image_size), "trial_seconds": timer.seconds,
                "epochs": settings.epochs, "trials": len(result.trials),
                "folds": result.data["folds"],
                "search_seconds": round(time.monotonic() - started, 1),
                "load_average": list(os.getloadavg())}
        _say(f"{name:10s} cost     {size_label(image_size):8s} trials {timer.seconds} s")
        done(name, {"trial_cost": {size_label(image_size): unit}})


# ------------------------------------------------------------------------------- targets


def targets(rows, metric="balanced_accuracy") -> dict:
    """autoprep against the best hand row (>= best - 0.02), with the noise it rests on."""
    if not set(HAND_ROWS) <= set(rows):
        return {}
    best_hand = max(HAND_ROWS, key=lambda r: rows[r][metric]["mean"])
    out = {"best_hand_row": best_hand}
    for row in rows:
        if row.startswith("autoprep"):
            diff = rows[row][metric]["mean"] - rows[best_hand][metric]["mean"]
            out[row] = quality._check(diff, diff >= -0.02, quality._noise(rows[row],
                                                                          rows[best_hand]))
    return out


# ------------------------------------------------------------------------------- the page


def _short_config(config) -> str:
    """A configuration in a few words: normalization, ops with intensities, imbalance."""
    if not config:
        return "-"
    ops = [f"{op['name']} {op.get('mode', op.get('intensity'))}"
           for op in config.get("augmentation", [])]
    return (f"{config['normalization']['name']}, {' + '.join(ops) or 'no augmentation'}, "
            f"{config['imbalance']['name']}")


def render(report) -> str:
    """Markdown: one table per size (configurations x folders), targets, choices, costs."""
    folders = report["folders"]
    names = list(folders)
    lines = []
    sizes = [s for s in ("default", size_label(SMALL_SIZE), size_label(SMOKE_SIZE))
             if any(s in folders[f].get("sizes", {}) for f in names)]
    for size in sizes:
        lines += [f"**{'autoprep default size' if size == 'default' else size}**: test balanced "
                  "accuracy (mean ± std over training seeds; image size under the folder)", "",
                  "| configuration | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        shown = [folders[f]["sizes"].get(size, {}) for f in names]
        sizes_row = [_image_size(s) for s in shown]
        lines.append("| image size | " + " | ".join(sizes_row) + " |")
        rows = list(dict.fromkeys(r for s in shown for r in s.get("rows", {})))
        for row in rows:
            cells = [quality._cell(s["rows"][row], "balanced_accuracy") if row in s.get(
                "rows", {}) else "not measured" for s in shown]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    if any("backbone" in folders[f] for f in names):
        lines += ["**The model-aware path** (MobileNetV2, alpha 0.35, `weights=None`, trained "
                  "from scratch): test balanced accuracy", "",
                  "| configuration | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
        for row in BACKBONE_ROWS:
            cells = [quality._cell(folders[f]["backbone"]["rows"][row], "balanced_accuracy")
                     if row in folders[f].get("backbone", {}).get("rows", {}) else "not measured"
                     for f in names]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Targets (balanced accuracy; autoprep >= the best hand row - 0.02; 'within noise': "
              "the difference is at most the larger std of the two rows):", "",
              "| folder | size | autoprep row | best hand row | difference | met | within noise |",
              "|---|---|---|---|---|---|---|"]
    for name in names:
        for size, part in folders[name].get("sizes", {}).items():
            found = targets(part["rows"])
            for row, check in found.items():
                if row != "best_hand_row":
                    lines.append(f"| {name} | {size} | {row} | {found['best_hand_row']} | "
                                 f"{check['diff']:+.3f} | {'yes' if check['met'] else 'NO'} | "
                                 f"{'yes' if check['within_noise'] else 'no'} |")
    lines += ["", "Configurations chosen by autoprep (search validation score, search time) "
              "and why:", ""]
    for name in names:
        parts = list(folders[name].get("sizes", {}).items())
        parts += [("backbone", folders[name]["backbone"])] if "backbone" in folders[name] else []
        for size, part in parts:
            for row, value in part["rows"].items():
                if row.startswith("autoprep"):
                    reason = (value.get("selection") or {}).get("reason", "no re-evaluation")
                    lines.append(f"- {name}, {size}, {row}: {_short_config(value['best'])} "
                                 f"({value['validation_score']:.3f}, "
                                 f"{value['search_seconds']:.0f} s). {reason}")
    costs = [(f, s, u) for f in names for s, u in folders[f].get("trial_cost", {}).items()]
    if costs:
        lines += ["", "What a trial of the demo model costs (`autoprep.data.demo.demo_model`, "
                  f"{costs[0][2]['epochs']} epochs, no re-evaluation):", "",
                  "| folder | image size | training images per fold x folds | seconds per trial "
                  "(trial 1, 2, ...) | load average |", "|---|---|---|---|---|"]
        for name, _, unit in costs:
            height, width = unit["image_size"]
            lines.append(f"| {name} | {height}x{width} | {unit['folds']} fold(s) | "
                         f"{', '.join(f'{s:.0f}' for s in unit['trial_seconds'])} | "
                         f"{unit['load_average'][0]:.1f} |")
    return "\n".join(lines) + "\n"


def _image_size(part) -> str:
    for row in part.get("rows", {}).values():
        if row.get("image_size"):
            return "x".join(map(str, row["image_size"]))
    return "-"


def sources_table(names) -> str:
    lines = ["| folder | what | repository | commit | paths |", "|---|---|---|---|---|"]
    for name in names:
        source = SOURCES[name]
        lines.append(f"| {name} | {source.what} | {source.repo} | {source.commit[:12]} | "
                     f"{source.paths} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- smoke


def write_smoke_photos(root, *, per_class=(20, 16), size=(40, 56)) -> str:
    """A tiny folder of generated photos (JPEG, one PNG named .jpg, one byte copy), 2 classes."""
    rng = np.random.default_rng(0)
    height, width = size
    for label, count in enumerate(per_class):
        folder = os.path.join(root, "smoke", f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            pixels = rng.integers(0, 80, (height, width, 3)).astype(np.uint8)
            pixels[:, : width // 2, label] += 150  # each class has its own bright color left
            fmt = "PNG" if i == 0 else "JPEG"
            Image.fromarray(pixels).save(os.path.join(folder, f"{i:03d}.jpg"), format=fmt)
        shutil.copyfile(os.path.join(folder, "001.jpg"), os.path.join(folder, "copy.jpg"))
    return root


# ----------------------------------------------------------------------------------- main


def photos_root(args):
    return args.photos or os.environ.get(ENVIRONMENT)


def missing_message(root, names) -> str:
    where = root or f"a folder named by --photos DIR or ${ENVIRONMENT}"
    return (f"real_photos: no photos at {where}: skipped. Put each folder at "
            f"PHOTOS/<folder>/<class>/<files> ({', '.join(names)}) from the repositories "
            f"below, then run `python benchmarks/real_photos.py --photos PHOTOS`.\n"
            + sources_table(names))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", metavar="DIR",
                        help=f"the folder holding the photo folders (default ${ENVIRONMENT})")
    parser.add_argument("--folders", nargs="*", help=f"default: {' '.join(DEFAULT_FOLDERS)}")
    parser.add_argument("--sizes", nargs="*", default=["default", "64x64"],
                        help="default (autoprep's choice) and/or HxW")
    parser.add_argument("--rows", nargs="*", help="only these rows (exact names)")
    parser.add_argument("--backbone", action="store_true", help="also the MobileNetV2 rows")
    parser.add_argument("--trial-cost", action="store_true",
                        help="also time trials of the demo model at the default and half size")
    parser.add_argument("--candidates", action="store_true",
                        help="also score every configuration the selection re-evaluated")
    parser.add_argument("--search-seeds", nargs="*", type=int, default=[0],
                        help="the autoprep rows' search seeds (default 0)")
    parser.add_argument("--trials", type=int, help=f"search trials (default {Settings.trials})")
    parser.add_argument("--train-seeds", nargs="*", type=int,
                        help="training seeds of every row (default 0-4)")
    parser.add_argument("--smoke", action="store_true", help="a tiny generated folder")
    parser.add_argument("--out", default="results/real_photos.json",
                        help="the JSON report; rows measured before (same settings) are kept")
    parser.add_argument("--render", metavar="JSON", help="print the page of a report and exit")
    args = parser.parse_args(argv)
    if args.render:
        with open(args.render) as handle:
            print(render(json.load(handle)), end="")
        return None
    settings = SMOKE if args.smoke else Settings()
    if args.trials:
        settings = dataclasses.replace(settings, trials=args.trials)
    if args.train_seeds:
        settings = dataclasses.replace(settings, train_seeds=tuple(args.train_seeds))
    names = ["smoke"] if args.smoke else (args.folders or list(DEFAULT_FOLDERS))
    with tempfile.TemporaryDirectory() as workdir:
        root = write_smoke_photos(os.path.join(workdir, "photos")) if args.smoke else (
            photos_root(args))
        if root is None or not all(os.path.isdir(os.path.join(root, n)) for n in names):
            print(missing_message(root, names), end="")
            return None
        return measure(args, argv, settings, names, root, workdir)


def measure(args, argv, settings, names, root, workdir) -> dict:
    """Measures every folder of `names`, one at a time, adding to the report at `args.out`."""
    sizes = [None if s == "default" else tuple(int(d) for d in s.split("x")) for s in args.sizes]
    if args.smoke:
        sizes = [None, SMOKE_SIZE]
    rows = args.rows or [f"autoprep (search seed {s})" for s in args.search_seeds] + list(
        HAND_ROWS)
    report = _earlier(args.out, settings) or {"folders": {}}
    report.update(
        command="python benchmarks/real_photos.py " + shlex.join(
            sys.argv[1:] if argv is None else argv),
        machine=f"{platform.machine()}, {os.cpu_count()} cores, no GPU, "
                f"Python {platform.python_version()}",
        settings=dataclasses.asdict(settings), test_fraction=quality.TEST_FRACTION,
        batch_size=quality.BATCH_SIZE, autoprep_commit=quality._commit())
    report.setdefault("runs", []).append({
        "command": report["command"], "autoprep_commit": report["autoprep_commit"],
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "load_average": list(os.getloadavg())})

    def done(name, unit):
        _merge(report["folders"].setdefault(name, {}), unit)
        _write_json(args.out, report)  # after every unit: a cut-off run keeps its part

    for name in names:  # one folder at a time
        prepared = prepare(name, root, workdir, settings)
        source = SOURCES.get(name)
        done(name, {**prepared.facts, "source": source._asdict() if source else None})
        for image_size in sizes:
            run_size(name, prepared, image_size, rows, settings, workdir, done,
                     candidates=args.candidates)
        if args.backbone or args.smoke:
            run_backbone(name, prepared, settings, workdir, done,
                         image_size=SMOKE_BACKBONE_SIZE if args.smoke else BACKBONE_SIZE)
        if args.trial_cost or args.smoke:
            trial_cost(name, prepared, settings, workdir, done)
        shutil.rmtree(os.path.join(workdir, name), ignore_errors=True)
    print(render(report), end="")
    return report


def _merge(mine, unit):
    """Nested update: dicts are merged key by key, other values replaced."""
    for key, value in unit.items():
        if isinstance(value, dict) and isinstance(mine.get(key), dict):
            _merge(mine[key], value)
        else:
            mine[key] = value


def _earlier(path, settings):
    """The report already at `path` when it was measured with the same settings."""
    if not os.path.exists(path):
        return None
    with open(path) as handle:
        earlier = json.load(handle)
    if earlier.get("settings") != json.loads(json.dumps(dataclasses.asdict(settings))):
        raise SystemExit(f"{path} was measured with other settings: {earlier.get('settings')}"
                         "; choose another --out")
    return earlier


def _write_json(path, report):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(report, handle, indent=1)


def _say(text):
    load = os.getloadavg()[0]
    print(f"{time.strftime('%H:%M:%S')} {text}  [load {load:.1f}]", flush=True)


if __name__ == "__main__":
    main()
