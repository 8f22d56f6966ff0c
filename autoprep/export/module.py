"""Export: write a fitted pipeline as a standalone Python module that imports only TensorFlow.

The module is assembled from the same definitions a trial runs: `load_image` and the
functions it calls (`autoprep/data/image.py`), the chosen normalization's `transform`,
`augment`, the imbalance sampler, the dataset builders and the module's own functions
(`autoprep.export.runtime`: listing, splitting, decoding files) are copied with
`inspect.getsource`; Keras layers are written as constructor calls with the same
arguments; learned constants are embedded as literals. Every string that comes from user data
(class names, paths) is written with `repr`, so it cannot inject code.
"""

import datetime
import json
import os

from autoprep._files import atomic_write, check_replaceable
from autoprep._text import summarize
from autoprep.choices.augmentation import augment
from autoprep.choices.base import function_source
from autoprep.choices.imbalance import DeferredReweighting, add_sample_weights
from autoprep.choices.pipeline import Pipeline, build_eval_dataset, build_train_dataset
from autoprep.data.image import IMAGE_FUNCTIONS
from autoprep.data.index import IMAGE_EXTENSIONS, MAX_PIXELS, check_max_pixels
from autoprep.export.runtime import RUNTIME_FUNCTIONS

# How every module autoprep writes starts: `export` replaces only such files (or with force).
GENERATED_MARK = '"""Preprocessing pipeline found by autoprep.'


def _literal(value) -> str:
    """A Python literal for JSON-like data; strings are escaped by `repr`."""
    return repr(value)


def usage(pipeline: Pipeline, *, data_dir: str = "DATA_DIR", epochs="EPOCHS",
          module: str = "pipeline", images: str = "uint8_images") -> str:
    """The lines of a training script that uses the exported module of `pipeline`: datasets,
    the loss the pipeline needs (logit-adjusted, or categorical for the one-hot labels of MixUp
    and CutMix), `fit` with its keyword arguments, and the prediction (post-hoc adjusted).

    Args:
        pipeline: The exported pipeline.
        data_dir: Source of the data directory argument (a name, or a quoted path).
        epochs: Source of the epochs argument.
        module: The name the module is imported as.
        images: The name of a batch of uint8 images to predict.

    Returns:
        Python source; it expects `model` (a Keras model) and `images` to exist.
    """
    strategy, mix = pipeline.imbalance, pipeline.mix_op
    lines = [
        f"import {module}",
        f"train_ds, val_ds = {module}.make_datasets({data_dir}, validation_split=0.2,",
        " " * len(f"train_ds, val_ds = {module}.make_datasets(") + "batch_size=32, seed=0)",
    ]
    if strategy.usage_loss is not None:
        lines += ["# the loss the search trained with (from_logits=True if the model outputs "
                  "logits)",
                  f"model.compile(optimizer=\"adam\", loss="
                  f"{strategy.usage_loss.format(module=module)}, metrics=[\"accuracy\"])"]
    elif mix is not None:
        lines += [f"# {mix.name} mixes the labels: they are one-hot ({module}.ONE_HOT_LABELS)",
                  "model.compile(optimizer=\"adam\", loss=\"categorical_crossentropy\", "
                  "metrics=[\"accuracy\"])"]
    lines.append(f"model.fit(train_ds, validation_data=val_ds, epochs={epochs}, "
                 f"**{module}.FIT_KWARGS)")
    if strategy.usage_predict is not None:
        lines += ["# class indices, with the post-hoc logit adjustment the search chose",
                  "predicted = " + strategy.usage_predict.format(module=module, images=images)]
    else:
        lines.append(f"probabilities = model.predict({module}.preprocess({images}))")
    return "\n".join(lines)


def _header(info: dict, pipeline: Pipeline) -> str:
    lines = [
        GENERATED_MARK,
        "",
        "Usage:",
        *(f"    {line}" for line in usage(pipeline).splitlines()),
        "",
        "Only TensorFlow is imported. See the comments below for the search that chose it.",
        '"""',
    ]
    comments = [f"# {key}: {_literal(value)}" for key, value in info.items()]
    return "\n".join(lines + [""] + comments) + "\n"


def render_module(pipeline: Pipeline, *, class_names, image_size, channels, epochs,
                  skipped_files=(), max_pixels=MAX_PIXELS, info=None) -> str:
    """The source of the exported module for a fitted `pipeline`.

    Args:
        pipeline: A fitted `Pipeline` (learned constants set).
        class_names: Class names in label order.
        image_size: (height, width) images are resized to.
        channels: 1 or 3.
        epochs: Epochs of the search (deferred re-weighting starts at a fraction of them).
        skipped_files: Paths, relative to the data directory, that autoprep could not read.
        max_pixels: The module's `list_files` skips files whose header declares more pixels.
        info: Search facts written as comments (score, date, ...).

    Returns:
        Python source text.
    """
    info = dict(info or {})
    info.setdefault("exported", datetime.datetime.now().isoformat(timespec="seconds"))
    info["pipeline"] = summarize(pipeline.get_config())
    mix = pipeline.mix_op
    deferred = pipeline.imbalance.deferred
    layers = ",\n".join(
        f"        {source}" for op in pipeline.plain_ops for source in op.sources()
    )
    parts = [
        _header(info, pipeline),
        "import os\nimport random\nimport stat\nimport struct\nimport warnings\n\n"
        "import tensorflow as tf\n",
        f"CLASS_NAMES = {_literal(list(class_names))}",
        f"IMAGE_SIZE = {_literal(tuple(int(d) for d in image_size))}",
        f"CHANNELS = {int(channels)}",
        f"IMAGE_EXTENSIONS = {_literal(IMAGE_EXTENSIONS)}",
        f"SKIPPED_FILES = frozenset({_literal(sorted(skipped_files))})",
        f"MAX_PIXELS = {check_max_pixels(max_pixels)}  # files whose header declares more: skipped",
        f"ONE_HOT_LABELS = {mix is not None}  # MixUp/CutMix: compile with a categorical loss",
        "# The full configuration chosen by the search, learned constants included.",
        f"CONFIG = {_literal(json.loads(json.dumps(pipeline.get_config())))}",
        f"NORMALIZATION_CONSTANTS = {_literal(pipeline.normalization.constants)}",
        "DATASET_CLASS_WEIGHTS = "
        + _literal(pipeline.imbalance.dataset_class_weights()),
        "CLASS_WEIGHT_GATE = "
        + ("tf.Variable(0.0, trainable=False)" if deferred else "None"),
        "\n",
        "\n\n".join(function_source(function) for function in IMAGE_FUNCTIONS),
        "\n" + pipeline.normalization.source(),
        "\ndef preprocess(images):\n"
        '    """Normalizes uint8 images (a batch or one image) exactly as in the search."""\n'
        "    return normalize(images, **NORMALIZATION_CONSTANTS)\n",
        "\ndef make_augmentation_layers():\n"
        '    """Fresh augmentation layers (applied to training batches only)."""\n'
        f"    return [\n{layers}\n    ]\n" if layers else
        "\ndef make_augmentation_layers():\n"
        '    """Fresh augmentation layers (none were chosen)."""\n    return []\n',
        "\ndef make_mix_layer():\n"
        '    """The label-mixing layer (MixUp or CutMix), or None."""\n'
        + (f"    return {mix.sources()[0]}\n" if mix else ""),
        "\n" + function_source(augment),
        "\n" + function_source(pipeline.imbalance.sampler, "sample"),
    ]
    parts.append("\n" + function_source(add_sample_weights))
    if deferred:
        parts.append("\n" + function_source(DeferredReweighting))
    parts += [
        "\n" + function_source(build_train_dataset),
        "\n" + function_source(build_eval_dataset),
        *("\n" + function_source(function) for function in RUNTIME_FUNCTIONS),
        *("\n" + source for choice in pipeline.choices for source in choice.module_sources()),
        "\n# Keyword arguments for model.fit (class weights go to fit, not compile).",
        f"FIT_KWARGS = {pipeline.fit_kwargs_source(epochs)}\n",
    ]
    return "\n".join(parts)


def write_module(result, path, *, force: bool = False) -> str:
    """Writes the best pipeline of `result` (a `TuneResult`) as a standalone module.

    `TuneResult.export` calls this.

    Args:
        result: The result whose best pipeline is written.
        path: The module file to write.
        force: Replace `path` even when it is a file autoprep did not write.

    Returns:
        The path written.

    Raises:
        ArgumentError: `path` is a folder, or a file autoprep did not write (without `force`).
    """
    check_replaceable(path, mark=GENERATED_MARK, what="module", force=force)
    info = {
        "objective": result.objective,
        "best_validation_score": result.best_score,
        "test_score": result.test_score,
        "baseline_test_score": result.baseline_score,
        "trials": len(result.trials),
        "epochs": result.epochs,
        "data_dir": result.data.get("data_dir"),
    }
    source = render_module(
        result.pipeline,
        class_names=result.data["class_names"],
        image_size=result.data["image_size"],
        channels=result.data["channels"],
        epochs=result.epochs,
        skipped_files=[path for path, _ in result.data.get("skipped", [])],
        max_pixels=result.data.get("max_pixels", MAX_PIXELS),
        info=info,
    )
    path = os.fspath(path)
    atomic_write(path, source)
    return path
