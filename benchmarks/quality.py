"""Quality benchmark (issue 9): autoprep against hand configurations on imbalanced folders.

Every folder is built from images scikit-learn ships (no download): its handwritten digits
at imbalance 10 and 100, gray texture tiles and color patches cut from its two sample photos.
For each folder an outer stratified train/test split is made here; autoprep only ever sees the
training part. Every row trains the same small CNN for the same epochs on the whole training
part and is scored on the test part (balanced accuracy and macro-F1, mean and std over
several training seeds; training seed S starts every row from the same initial weights):

- autoprep: `autoprep.tune` (search seeds 0 and 1), its exported module loaded from the file
  it wrote and used as a user would (`make_train_dataset`, `FIT_KWARGS`, `preprocess`);
- hand rows: raw pixels, [0,1], z-score, [0,1] + class weights, z-score + class weights +
  light augmentation;
- Keras Tuner's `HyperImageAugment` searched with the same trial budget (z-score inputs);
- TrivialAugment (one random op per image at a uniformly random strength) with z-score.

autoprep is used only through its public API, so the script measures whatever `main` holds.

    python benchmarks/quality.py --out results/quality.json        # the full benchmark
    python benchmarks/quality.py --smoke --out /tmp/smoke.json     # one tiny folder, seconds
    python benchmarks/quality.py --render results/quality.json     # tables from a JSON
"""

import argparse
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np
from PIL import Image

TEST_FRACTION = 0.25
SPLIT_SEED = 0
BATCH_SIZE = 32
HAND_ROWS = ("raw pixels", "[0,1]", "z-score", "[0,1] + class weights",
             "z-score + class weights + light aug")
REFERENCE_ROWS = ("HyperImageAugment (KT)", "TrivialAugment + z-score")


@dataclasses.dataclass
class Settings:
    """What every row shares: trials, epochs, seeds."""

    trials: int = 15
    epochs: int = 12
    train_seeds: tuple = (0, 1, 2, 3, 4)
    search_seeds: tuple = (0, 1)


SMOKE = Settings(trials=2, epochs=1, train_seeds=(0, 1), search_seeds=(0, 1))


# ---------------------------------------------------------------------------- the folders


def long_tail(n_max: int, ratio: float, classes: int, *, floor: int = 1) -> list:
    """Class sizes decaying exponentially from `n_max` to `n_max / ratio`, at least `floor`."""
    return [max(floor, round(n_max * ratio ** (-c / (classes - 1)))) for c in range(classes)]


def digits(ratio: float, *, n_max: int = 178, floor: int = 4, classes: int = 10):
    """scikit-learn's 8x8 digits as uint8 gray images, long-tailed at `ratio`."""
    from sklearn.datasets import load_digits

    data = load_digits()
    rng = np.random.default_rng(0)
    images, labels = [], []
    for label, count in enumerate(long_tail(n_max, ratio, classes, floor=floor)):
        members = np.flatnonzero(data.target == label)
        chosen = rng.choice(members, size=min(count, len(members)), replace=False)
        images.append(np.clip(data.images[chosen] * 16, 0, 255).astype(np.uint8)[..., None])
        labels += [label] * len(chosen)
    return np.concatenate(images), np.array(labels), [f"digit_{c}" for c in range(classes)]


def _sample_photos() -> dict:
    from sklearn.datasets import load_sample_images

    photos = load_sample_images()
    return {os.path.basename(name)[:-4]: image
            for name, image in zip(photos.filenames, photos.images)}


def tiles(photo, region, size: int, count: int, rng):
    """`count` non-overlapping size x size tiles picked at random in region (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = region
    corners = [(y, x) for y in range(y0, y1 - size + 1, size)
               for x in range(x0, x1 - size + 1, size)]
    if count > len(corners):
        raise ValueError(f"region {region} holds {len(corners)} tiles of {size}, not {count}")
    picked = rng.choice(len(corners), size=count, replace=False)
    return np.stack([photo[y:y + size, x:x + size] for y, x in (corners[i] for i in picked)])


def jitter(patches, rng, *, gain=(0.7, 1.3), offset=30):
    """Per-tile random gain and offset, so that texture, not brightness, tells classes apart."""
    n = len(patches)
    shape = (n,) + (1,) * (patches.ndim - 1)
    scaled = patches * rng.uniform(*gain, shape) + rng.uniform(-offset, offset, shape)
    return np.clip(scaled, 0, 255).astype(np.uint8)


# (class name, photo, region y0, y1, x0, x1)
GRAY_TEXTURE_CLASSES = [
    ("pagoda", "china", (30, 390, 70, 340)),
    ("blurred_leaves", "flower", (0, 427, 0, 160)),
    ("petals", "flower", (90, 350, 180, 440)),
    ("trees", "china", (290, 427, 350, 640)),
]
COLOR_PATCH_CLASSES = [
    ("blurred_leaves", "flower", (0, 427, 0, 160)),
    ("trees", "china", (300, 427, 350, 640)),
    ("sky", "china", (0, 120, 340, 640)),
    ("petals", "flower", (100, 340, 190, 430)),
    ("pagoda", "china", (60, 380, 90, 330)),
]


def photo_tiles(classes, counts, *, size: int, gray: bool, seed: int = 0):
    """Tiles of scikit-learn's sample photos, one class per region, jittered per tile."""
    photos = _sample_photos()
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, ((_, photo, region), count) in enumerate(zip(classes, counts)):
        pixels = photos[photo].astype(np.float32)
        if gray:
            pixels = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
        patches = jitter(tiles(pixels, region, size, count, rng), rng)
        images.append(patches[..., None] if gray else patches)
        labels += [label] * count
    return np.concatenate(images), np.array(labels), [name for name, _, _ in classes]


def folder_specs(smoke: bool) -> dict:
    """name -> (description, builder). Builders return (uint8 NHWC images, labels, class names)."""
    if smoke:
        return {"smoke_digits": ("digits 0-2, 8x8 gray, 30:15:8",
                                 lambda: _first_classes(digits(4, n_max=30, classes=3), 3))}
    return {
        "digits_ir10": ("handwritten digits, 8x8 gray, 10 classes, 178 down to 18 (ratio 10)",
                        lambda: digits(10)),
        "digits_ir100": ("handwritten digits, 8x8 gray, 10 classes, 178 down to 4 "
                         "(ratio 100 profile, floored at 4 images: real ratio 44)",
                         lambda: digits(100)),
        "gray_textures": ("gray 16x16 tiles of the sample photos, 4 classes 180:60:15:15, "
                          "per-tile brightness jitter",
                          lambda: photo_tiles(GRAY_TEXTURE_CLASSES, [180, 60, 15, 15],
                                              size=16, gray=True)),
        "color_patches": ("color 12x12 tiles of the sample photos, 5 classes 240:120:60:30:30 "
                          "(8:4:2:1:1), per-tile brightness jitter",
                          lambda: photo_tiles(COLOR_PATCH_CLASSES, [240, 120, 60, 30, 30],
                                              size=12, gray=False)),
    }


def _first_classes(data, classes):
    images, labels, names = data
    return images, labels, names[:classes]


def outer_split(labels, *, seed: int = SPLIT_SEED):
    """Stratified train/test indices; the test part is never shown to autoprep."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(labels))
    return train_test_split(indices, test_size=TEST_FRACTION, stratify=labels, random_state=seed)


def folder_names(class_names) -> list:
    """Class folder names whose sorted order (autoprep's label order) is the label order here."""
    return [f"{label:02d}_{name}" for label, name in enumerate(class_names)]


def write_folder(root, images, labels, class_names) -> str:
    """Writes images as PNGs, one sub-folder per class; returns `root`."""
    names = folder_names(class_names)
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)
    for i, (pixels, label) in enumerate(zip(images, labels)):
        image = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
        image.save(os.path.join(root, names[label], f"{i:05d}.png"))
    return root


# ------------------------------------------------------------------------- model, scores


def cnn(input_shape, num_classes, seed=None):
    """The one model of every row: two conv blocks, a small dense layer, softmax.

    With a training seed, the global seed is set right before the weights are drawn, so every
    row starts training seed S from the same initial weights (common random numbers: the rows
    differ by their preprocessing, not by their initialization).
    """
    import keras

    if seed is not None:
        keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def compile_model(model, *, one_hot: bool = False, loss=None):
    """Adam(1e-3) and cross-entropy (or the exported module's loss), for every row."""
    import keras

    if loss is None:
        loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss)
    return model


def model_fn(input_shape, num_classes):
    """What autoprep receives: the same CNN, compiled the same way."""
    return compile_model(cnn(input_shape, num_classes))


def predict(model, images):
    """Class probabilities: one eager call (tiny test parts; `predict` would trace a function)."""
    return np.asarray(model(images, training=False))


def scores(y_true, probabilities) -> dict:
    from sklearn.metrics import balanced_accuracy_score, f1_score

    predicted = np.argmax(probabilities, axis=-1)
    return {"balanced_accuracy": float(balanced_accuracy_score(y_true, predicted)),
            "macro_f1": float(f1_score(y_true, predicted, average="macro", zero_division=0))}


def summary(runs: list) -> dict:
    """Per-seed scores -> their lists, means and (population) stds."""
    out = {"runs": runs}
    for metric in ("balanced_accuracy", "macro_f1"):
        values = np.array([run[metric] for run in runs])
        out[metric] = {"mean": round(float(values.mean()), 4),
                       "std": round(float(values.std()), 4),
                       "values": [round(float(v), 4) for v in values]}
    return out


# ------------------------------------------------------------------------------ hand rows


class TrivialAugment:
    """Builds a Keras layer: one op per image, drawn uniformly, at a uniformly random strength.

    Müller & Hutter 2021, on the RandAugment op set as far as Keras layers offer it; applied to
    0-255 pixels before normalization, in training only.
    """

    @staticmethod
    def ops(channels: int):
        import keras

        layers = keras.layers
        ops = [
            None,  # identity
            layers.AutoContrast(),
            layers.Equalization(),
            layers.RandomRotation(30 / 360, fill_mode="constant"),
            layers.Solarization(threshold_factor=(0.0, 1.0)),
            layers.RandomPosterization(factor=(4, 8)),
            layers.RandomContrast(0.9),
            layers.RandomBrightness(0.4),
            layers.RandomSharpness(0.9),
            layers.RandomShear(x_factor=0.3, y_factor=0.0, fill_mode="constant"),
            layers.RandomShear(x_factor=0.0, y_factor=0.3, fill_mode="constant"),
            layers.RandomTranslation(0.0, 0.3, fill_mode="constant"),
            layers.RandomTranslation(0.3, 0.0, fill_mode="constant"),
        ]
        if channels == 3:
            ops.append(layers.RandomColorDegeneration(0.9))
        return ops

    @classmethod
    def layer(cls, channels: int, seed: int):
        import keras

        ops = cls.ops(channels)

        class _TrivialAugment(keras.layers.Layer):
            def __init__(self):
                super().__init__()
                self.ops = [op for op in ops if op is not None]
                self.generator = keras.random.SeedGenerator(seed)

            def call(self, images, training=None):
                if not training:
                    return images
                batch = keras.ops.shape(images)[0]
                choice = keras.random.randint((batch, 1, 1, 1), 0, len(ops), seed=self.generator)
                out = images
                for index, op in enumerate(ops):
                    if op is not None:
                        transformed = keras.ops.cast(op(images, training=True), images.dtype)
                        out = keras.ops.where(keras.ops.equal(choice, index), transformed, out)
                return out

        return _TrivialAugment()


def light_augmentation(seed: int):
    import keras

    return [keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed),
            keras.layers.RandomRotation(0.03, fill_mode="constant", seed=seed)]


def normalization(kind: str, x_train):
    """A Keras layer mapping 0-255 pixels as the hand row says (statistics of the training part)."""
    import keras

    if kind == "raw":
        return None
    if kind == "unit":
        return keras.layers.Rescaling(1 / 255)
    mean = x_train.mean(axis=(0, 1, 2))
    std = x_train.std(axis=(0, 1, 2)) + 1e-6
    return keras.layers.Normalization(mean=mean, variance=std ** 2)


def class_weights(labels, classes: int) -> dict:
    """Inverse frequency, n / (k * n_c), as scikit-learn's "balanced"."""
    counts = np.bincount(labels, minlength=classes)
    return {c: len(labels) / (classes * counts[c]) for c in range(classes)}


def with_head(head, input_shape, num_classes, seed=None):
    """The CNN behind preprocessing layers (augmentation is active in training only)."""
    import keras

    inputs = keras.Input(input_shape)
    x = inputs
    for layer in head:
        if layer is not None:
            x = layer(x)
    return compile_model(keras.Model(inputs, cnn(input_shape, num_classes, seed)(x)))


HAND_SPECS = {  # row -> (normalization, class weights, augmentation)
    "raw pixels": ("raw", False, None),
    "[0,1]": ("unit", False, None),
    "z-score": ("zscore", False, None),
    "[0,1] + class weights": ("unit", True, None),
    "z-score + class weights + light aug": ("zscore", True, "light"),
    "TrivialAugment + z-score": ("zscore", False, "trivial"),
}


def hand_row(row, data, settings) -> dict:
    import keras

    norm, weighted, augment = HAND_SPECS[row]
    x_train, y_train, x_test, y_test, classes = data
    runs = []
    for seed in settings.train_seeds:
        keras.utils.set_random_seed(seed)
        head = []
        if augment == "light":
            head += light_augmentation(seed)
        elif augment == "trivial":
            head.append(TrivialAugment.layer(x_train.shape[-1], seed))
        head.append(normalization(norm, x_train))
        model = with_head(head, x_train.shape[1:], classes, seed)
        model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=settings.epochs, verbose=0,
                  class_weight=class_weights(y_train, classes) if weighted else None)
        runs.append(scores(y_test, predict(model, x_test)))
    return summary(runs)


# --------------------------------------------------------------- Keras Tuner's augmentation


def hyper_image_augment(data, settings, workdir) -> dict:
    """HyperImageAugment + z-score + the CNN, random search on a validation split.

    `augment_layers=0`: the tuned rotation, translations and contrast are applied in sequence.
    The default RandAugment mode creates Keras layers inside `call`, which fails in a compiled
    training step under Keras 3 ("tf.function only supports singleton tf.Variables").
    """
    import keras
    import keras_tuner as kt
    from keras_tuner.applications import HyperImageAugment
    from sklearn.model_selection import train_test_split

    x_train, y_train, x_test, y_test, classes = data
    shape = x_train.shape[1:]

    def build(hp, seed=None):
        augment = HyperImageAugment(input_shape=shape, augment_layers=0).build(hp)
        return with_head([augment, normalization("zscore", x_train)], shape, classes, seed)

    fit_idx, val_idx = train_test_split(np.arange(len(y_train)), test_size=0.2,
                                        stratify=y_train, random_state=0)

    class Search(kt.RandomSearch):
        def run_trial(self, trial, *args, **kwargs):
            keras.utils.set_random_seed(0)
            model = build(trial.hyperparameters)
            model.fit(x_train[fit_idx], y_train[fit_idx], batch_size=BATCH_SIZE,
                      epochs=settings.epochs, verbose=0)
            probabilities = predict(model, x_train[val_idx])
            return {"val_balanced_accuracy": scores(y_train[val_idx], probabilities)[
                "balanced_accuracy"]}

    started = time.monotonic()
    search = Search(objective=kt.Objective("val_balanced_accuracy", "max"),
                    max_trials=settings.trials, seed=0, directory=workdir,
                    project_name="hyper_image_augment", overwrite=True)
    with contextlib.redirect_stdout(io.StringIO()):
        search.search()
    best = search.get_best_hyperparameters(1)[0]
    search_seconds = time.monotonic() - started
    runs = []
    for seed in settings.train_seeds:
        keras.utils.set_random_seed(seed)
        model = build(best, seed)
        model.fit(x_train, y_train, batch_size=BATCH_SIZE, epochs=settings.epochs, verbose=0)
        runs.append(scores(y_test, predict(model, x_test)))
    out = summary(runs)
    out.update(best=best.values, search_seconds=round(search_seconds, 1))
    return out


# ----------------------------------------------------------------------------- autoprep row


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # AutoGraph reads the module's source
    spec.loader.exec_module(module)
    return module


def autoprep_row(train_dir, data, settings, workdir, search_seed) -> dict:
    """autoprep.tune on the training folder, then its exported module trained as a user would."""
    import keras

    import autoprep

    x_train, y_train, x_test, y_test, classes = data
    started = time.monotonic()
    result = autoprep.tune(model_fn, train_dir, max_trials=settings.trials,
                           epochs=settings.epochs, batch_size=BATCH_SIZE, test_split=0,
                           baseline=False, seed=search_seed, verbose=0, directory=workdir,
                           project_name=f"search_seed_{search_seed}", overwrite=True)
    search_seconds = time.monotonic() - started
    path = result.export(os.path.join(workdir, f"pipeline_seed_{search_seed}.py"))
    runs = []
    for seed in settings.train_seeds:
        # A fresh module per training: its callbacks and gates hold state.
        pipeline = load_module(path, f"quality_pipeline_{search_seed}_{seed}")
        keras.utils.set_random_seed(seed)
        if list(pipeline.CLASS_NAMES) != sorted(os.listdir(train_dir)):
            raise RuntimeError(f"class order {pipeline.CLASS_NAMES} is not the folders' order")
        paths, labels = pipeline.list_files(train_dir)
        train_ds = pipeline.make_train_dataset(paths, labels, batch_size=BATCH_SIZE, seed=seed)
        make_loss = getattr(pipeline, "make_loss", None)  # a logit-adjusted loss, if chosen
        model = compile_model(cnn(x_train.shape[1:], classes, seed),
                              one_hot=bool(pipeline.ONE_HOT_LABELS),
                              loss=make_loss(from_logits=False) if make_loss else None)
        model.fit(train_ds, epochs=settings.epochs, verbose=0, **pipeline.FIT_KWARGS)
        probabilities = predict(model, pipeline.preprocess(x_test.astype(np.uint8)))
        adjust = getattr(pipeline, "adjust", None)  # post-hoc logit adjustment, when exported
        if adjust is not None:
            probabilities = np.asarray(adjust(probabilities))
        runs.append(scores(y_test, probabilities))
        del sys.modules[pipeline.__name__]
    out = summary(runs)
    out.update(best=result.best_config, validation_score=result.best_score,
               search_seconds=round(search_seconds, 1), trials=len(result.trials))
    return out


# ------------------------------------------------------------------------------- a folder


def row_names(settings) -> list:
    """Every row, most expensive first: the autoprep searches, then the references."""
    return ([f"autoprep (search seed {s})" for s in settings.search_seeds]
            + ["HyperImageAugment (KT)"] + list(HAND_SPECS))


def prepare(name, build, workdir):
    """A folder's data: the outer split, the training part written out for autoprep."""
    images, labels, class_names = build()
    train_idx, test_idx = outer_split(labels)
    train_dir = write_folder(os.path.join(workdir, name, "train"), images[train_idx],
                             labels[train_idx], class_names)
    classes = len(class_names)
    data = (images[train_idx].astype(np.float32), labels[train_idx],
            images[test_idx].astype(np.float32), labels[test_idx], classes)
    facts = {
        "class_names": class_names, "image_shape": list(images.shape[1:]),
        "train_counts": np.bincount(labels[train_idx], minlength=classes).tolist(),
        "test_counts": np.bincount(labels[test_idx], minlength=classes).tolist(),
        "fingerprint": hashlib.sha256(images.tobytes() + labels.tobytes()
                                      + train_idx.tobytes()).hexdigest()[:16],
    }
    return train_dir, data, facts


def run_row(row, train_dir, data, settings, workdir) -> dict:
    if row.startswith("autoprep"):
        seed = int(row.rsplit(" ", 1)[1].rstrip(")"))
        return autoprep_row(train_dir, data, settings, workdir, seed)
    if row == "HyperImageAugment (KT)":
        return hyper_image_augment(data, settings, workdir)
    return hand_row(row, data, settings)


def run_rows(name, description, build, rows, settings, workdir, done):
    """Measures `rows` of one folder in this process; `done(name, folder)` after each row."""
    train_dir, data, facts = prepare(name, build, workdir)
    for row in rows:
        started = time.monotonic()
        result = run_row(row, train_dir, data, settings, os.path.join(workdir, name))
        seconds = round(time.monotonic() - started, 1)
        print(f"{name:14s} {row:38s} {_cell(result, 'balanced_accuracy')}  ({seconds:.0f} s)",
              flush=True)
        done(name, {"description": description, **facts, "rows": {row: result},
                    "seconds": {row: seconds}})


# -------------------------------------------------------------------------------- targets


def _noise(a, b, metric="balanced_accuracy") -> float:
    """The larger of the two rows' training-seed stds: a difference below it is noise."""
    return max(a[metric]["std"], b[metric]["std"])


def targets(rows, metric="balanced_accuracy") -> dict:
    """Issue 9's targets for each autoprep row, with the figures they rest on."""
    autoprep_rows = [r for r in rows if r.startswith("autoprep")]
    best_hand = max(HAND_ROWS, key=lambda r: rows[r][metric]["mean"])
    out = {"best_hand_row": best_hand}
    for row in autoprep_rows:
        mine = rows[row][metric]["mean"]
        checks = {}
        diff = mine - rows[best_hand][metric]["mean"]
        checks["vs best hand (>= -0.02)"] = _check(diff, diff >= -0.02,
                                                   _noise(rows[row], rows[best_hand]))
        for other in REFERENCE_ROWS:
            diff = mine - rows[other][metric]["mean"]
            checks[f"above {other}"] = _check(diff, diff > 0, _noise(rows[row], rows[other]))
        out[row] = checks
    if len(autoprep_rows) == 2:
        a, b = (rows[r][metric]["mean"] for r in autoprep_rows)
        out["search seeds (|diff| <= 0.03)"] = _check(abs(a - b), abs(a - b) <= 0.03,
                                                      _noise(*(rows[r] for r in autoprep_rows)))
    return out


def _check(diff, met, noise) -> dict:
    return {"diff": round(float(diff), 4), "met": bool(met),
            "within_noise": bool(abs(diff) <= noise)}


# ------------------------------------------------------------------------------- markdown


def _cell(row, metric) -> str:
    return f"{row[metric]['mean']:.3f} ± {row[metric]['std']:.3f}"


def render(report) -> str:
    """Markdown tables of a report: one row per configuration, one column per folder."""
    folders = report["folders"]
    names = list(folders)
    rows = [row for row in row_names(Settings(**report["settings"]))
            if any(row in folders[f]["rows"] for f in names)]
    lines = []
    for metric, title in (("balanced_accuracy", "Test balanced accuracy"),
                          ("macro_f1", "Test macro-F1")):
        lines += [f"{title} (mean ± std over training seeds):", "",
                  "| configuration | " + " | ".join(names) + " |",
                  "|---|" + "---|" * len(names)]
        for row in rows:
            cells = [_cell(folders[f]["rows"][row], metric) if row in folders[f]["rows"]
                     else "not measured" for f in names]
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Targets (balanced accuracy; 'within noise': the difference is at most the larger "
              "std of the two rows):", "",
              "| folder | check | difference | met | within noise |", "|---|---|---|---|---|"]
    for name in names:
        for label, value in _checks(folders[name].get("targets", {})):
            lines.append(f"| {name} | {label} | {value['diff']:+.3f} | "
                         f"{'yes' if value['met'] else 'NO'} | "
                         f"{'yes' if value['within_noise'] else 'no'} |")
    lines += ["", "Configurations chosen by autoprep:", ""]
    for name in names:
        for row, value in folders[name]["rows"].items():
            if row.startswith("autoprep"):
                lines.append(f"- {name}, {row}: `{json.dumps(_short(value['best']))}` "
                             f"(validation {value['validation_score']:.3f}, "
                             f"search {value['search_seconds']:.0f} s)")
    return "\n".join(lines) + "\n"


def _checks(found):
    """(label, check) pairs of a folder's targets, in reading order."""
    for row, checks in found.items():
        if row == "best_hand_row":
            continue
        if "diff" in checks:
            yield row, checks
            continue
        for check, value in checks.items():
            extra = f" ({found['best_hand_row']})" if check.startswith("vs best hand") else ""
            yield f"{row}: {check}{extra}", value


def _short(config):
    """The chosen configuration without learned constants."""
    if not isinstance(config, dict):
        return config
    return {k: _short(v) for k, v in config.items()
            if not k.endswith("_") and k not in ("constants", "mean", "std", "class_weight")}


# ----------------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="one tiny folder, 2 trials, 1 epoch, 2 training seeds")
    parser.add_argument("--out", default="results/quality.json", help="the JSON report")
    parser.add_argument("--folders", nargs="*", help="only these folders")
    parser.add_argument("--rows", nargs="*", help="only these rows (exact names)")
    parser.add_argument("--references", metavar="JSON",
                        help="copy the rows not measured here from this earlier report "
                             "(same folders, settings and data)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="(folder, row) units measured at the same time, one process each")
    parser.add_argument("--render", metavar="JSON", help="print the tables of a report and exit")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="join reports of other folders (same settings) into --out and exit")
    args = parser.parse_args(argv)
    if args.merge:
        _write_json(args.out, merge_reports(args.merge))
        return None
    if args.render:
        with open(args.render) as handle:
            print(render(json.load(handle)), end="")
        return None
    settings = SMOKE if args.smoke else Settings()
    specs = folder_specs(args.smoke)
    specs = {name: specs[name] for name in (args.folders or specs)}
    rows = args.rows or row_names(settings)
    started = time.monotonic()
    report = {
        "command": "python benchmarks/quality.py " + shlex.join(argv or sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU, "
                   f"Python {platform.python_version()}",
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "settings": dataclasses.asdict(settings), "test_fraction": TEST_FRACTION,
        "batch_size": BATCH_SIZE, "autoprep_commit": _commit(), "folders": {},
    }

    def merge(name, folder):
        mine = report["folders"].setdefault(name, {**folder, "rows": {}, "seconds": {}})
        mine["rows"].update(folder["rows"])
        mine["seconds"].update(folder["seconds"])
        report["seconds"] = round(time.monotonic() - started, 1)
        _write_json(args.out, report)  # after every unit: a cut-off run keeps its part

    earlier = _read_references(args.references, settings) if args.references else None
    with tempfile.TemporaryDirectory() as workdir:
        if args.jobs > 1:
            _run_in_processes(merge, specs, rows, args, workdir)
        else:
            for name, (description, build) in specs.items():
                run_rows(name, description, build, rows, settings, workdir, done=merge)
    if earlier:
        _copy_references(report, earlier, args.references)
    _finish(report, settings)
    _write_json(args.out, report)
    print(render(report), end="")
    return report


def merge_reports(paths) -> dict:
    """One report from reports measured with the same settings: folders and rows joined.

    Each row keeps where it was measured (`row_sources`: the report's command, start and
    autoprep commit); a folder measured twice must hold the same data (fingerprint).
    """
    merged = None
    for path in paths:
        with open(path) as handle:
            report = json.load(handle)
        if merged is None:
            merged = {**report, "command": [], "autoprep_commit": [], "seconds": [],
                      "folders": {}}
        if report["settings"] != merged["settings"]:
            raise SystemExit(f"{path} was measured with other settings: {report['settings']}")
        source = {"command": report["command"], "started": report.get("started"),
                  "autoprep_commit": report.get("autoprep_commit")}
        for key in ("command", "autoprep_commit", "seconds"):
            merged[key].append(report.get(key))
        for name, folder in report["folders"].items():
            mine = merged["folders"].setdefault(
                name, {**folder, "rows": {}, "seconds": {}, "row_sources": {}})
            if mine["fingerprint"] != folder["fingerprint"]:
                raise SystemExit(f"{path}: folder {name} holds other data")
            mine["rows"].update(folder["rows"])
            mine["seconds"].update(folder["seconds"])
            mine["row_sources"].update({row: source for row in folder["rows"]})
    _finish(merged, Settings(**merged["settings"]))
    return merged


def _run_in_processes(merge, specs, rows, args, workdir):
    """Measures each (folder, row) in its own process, `args.jobs` at a time, row-major."""
    import concurrent.futures
    import subprocess

    def one(unit):
        row, name = unit
        part = os.path.join(workdir, f"{name}-row{rows.index(row)}.json")
        command = [sys.executable, os.path.abspath(__file__), "--folders", name,
                   "--rows", row, "--out", part] + (["--smoke"] if args.smoke else [])
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL if args.smoke else None)
        with open(part) as handle:
            return name, json.load(handle)["folders"][name]

    units = [(row, name) for row in rows for name in specs]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for name, folder in pool.map(one, units):
            merge(name, folder)


def _read_references(path, settings) -> dict:
    with open(path) as handle:
        earlier = json.load(handle)
    if earlier["settings"] != json.loads(json.dumps(dataclasses.asdict(settings))):
        raise SystemExit(f"{path} was measured with other settings: {earlier['settings']}")
    return earlier


def _copy_references(report, earlier, path):
    """Fills the rows not measured in this run from an earlier report of the same data."""
    for name, folder in report["folders"].items():
        old = earlier["folders"][name]
        if old["fingerprint"] != folder["fingerprint"]:
            raise SystemExit(f"{path}: folder {name} holds other data")
        for row, value in old["rows"].items():
            if row not in folder["rows"] and not row.startswith("autoprep"):
                folder["rows"][row] = value
                folder["seconds"][row] = old["seconds"][row]
                folder.setdefault("copied_rows", []).append(row)
    report["references_from"] = {"path": path, "command": earlier["command"],
                                 "started": earlier.get("started"),
                                 "autoprep_commit": earlier.get("autoprep_commit")}


def _finish(report, settings):
    """Rows in their fixed order; targets where every row they need was measured."""
    order = row_names(settings)
    for folder in report["folders"].values():
        folder["rows"] = {row: folder["rows"][row] for row in order if row in folder["rows"]}
        if set(HAND_ROWS + REFERENCE_ROWS) <= set(folder["rows"]):
            folder["targets"] = targets(folder["rows"])


def _write_json(path, report):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        json.dump(report, handle, indent=1)


def _commit():
    import subprocess

    import autoprep

    root = os.path.dirname(os.path.dirname(os.path.abspath(autoprep.__file__)))
    done = subprocess.run(["git", "-C", root, "log", "-1", "--format=%h %s"],
                          capture_output=True, text=True)
    return done.stdout.strip() or None


if __name__ == "__main__":
    main()
