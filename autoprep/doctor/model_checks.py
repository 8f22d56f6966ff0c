"""Model checks: does the user's model fit the data, and can it learn at all?

Each check reads a `ModelContext`: the examined data plus `model_fn`. Models are built as `tune`
builds them (an uncompiled model gets Adam and sparse cross-entropy) and fed the raw decoded
pixels (0-255), which is what a model sees without a preprocessing pipeline. Training is kept
tiny: one batch of 16 images, and a short run of a few dozen steps, on images downscaled to a
long side of `TRAINING_SIDE` pixels. A symptom of these tests is pinned on a cause only when
changing that cause cures it (`_training.attribute`).
"""

import functools
import math

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from autoprep.data.stats import IMBALANCE_RATIO
from autoprep.doctor._checks import MODEL_CHECKS, register
from autoprep.doctor._training import (
    OVERFIT_STEPS,
    Change,
    Collapse,
    InitialLoss,
    OneBatch,
    TrainingTrend,
    Verdict,
    attribute,
)
from autoprep.doctor.data_checks import listing
from autoprep.doctor.report import SEVERITIES, Finding, number
from autoprep.search import model_inputs
from autoprep.search.hypermodel import accepts_hp, ensure_compiled, loss_description
from autoprep.search.model_spec import load_model_fn

BATCH_SIZE = 16
SHORT_RUN_STEPS = 60  # steps of the short training run (its loss trend, then collapse)
COLLAPSE_MIN_RATIO = 1.5  # largest / smallest class count from which collapse is looked for
TRAINING_SIDE = 128  # long side the training tests downscale larger images to
LOWER_FACTORS = (0.1, 0.01, 0.001)  # learning rate changes tried for a too-high rate
_RESIZE_CHUNK = 64  # images resized at a time
_SCALING_LAYERS = (keras.layers.Rescaling, keras.layers.Normalization)
AS_IS = Change()
SCALED = Change(("unscaled_input",), "with inputs scaled to [0, 1]", inputs="unit")
STANDARDIZED = Change(("unscaled_input",), "with inputs standardized (mean 0, std 1 per "
                      "channel)", inputs="standard")
WEIGHTED = Change(("majority_class_collapse",), "with class weights (inverse class frequency)",
                  class_weights=True)


class ModelContext:
    """The data plus the user's model, built lazily and as often as the checks need.

    Args:
        data: The `DataContext` of the folder.
        model_fn: `model_fn(input_shape, num_classes[, hp])`, or a `"file.py:function"` spec.
        seed: Seeds weight initialization and the sampled batches.
        normalization: The name of the normalization that will feed the model, when the user
            gave one (`convention_checks.py` checks it against the model).
    """

    def __init__(self, data, model_fn, *, seed=0, normalization=None):
        self.data, self.normalization = data, normalization
        self.model_fn = load_model_fn(model_fn) if isinstance(model_fn, str) else model_fn
        self.name = getattr(self.model_fn, "__name__", repr(self.model_fn))
        self.seed = seed
        self.images = data.folder.images  # uint8: converted a few images at a time
        self.labels = data.folder.labels
        self.num_classes = len(data.class_names)
        self.runs_ = {}  # (test, Change) -> outcome of a training test

    def build(self, change=AS_IS, *, input_shape=None):
        """A fresh model from `model_fn`, compiled as `tune` compiles it, with the learning
        rate of `change`; for `input_shape` (default: the images' shape)."""
        keras.utils.set_random_seed(self.seed)
        kwargs = {"hp": kt.HyperParameters()} if accepts_hp(self.model_fn) else {}
        shape = tuple(input_shape or self.images.shape[1:])
        model = self.model_fn(shape, self.num_classes, **kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model_fn` must return a keras.Model, not {type(model).__name__}")
        compiled = getattr(model, "compiled", False)
        model = ensure_compiled(model, one_hot_labels=False)
        model.user_compiled_ = compiled
        if change.learning_rate_factor != 1.0:
            config = model.optimizer.get_config()
            config["learning_rate"] *= change.learning_rate_factor
            model.compile(optimizer=type(model.optimizer).from_config(config), loss=model.loss)
        return model

    @functools.cached_property
    def batch_indices(self) -> np.ndarray:
        """A class-balanced batch: classes taken in turn."""
        rng = np.random.default_rng(self.seed)
        per_class = [rng.permutation(np.flatnonzero(self.labels == c))
                     for c in range(self.num_classes)]
        order = [ix[i] for i in range(BATCH_SIZE) for ix in per_class if i < len(ix)]
        return np.array(order[:BATCH_SIZE])

    @functools.cached_property
    def batch(self) -> tuple:
        """The batch (images as float32 0-255 at full size, labels)."""
        return self.images[self.batch_indices].astype(np.float32), self.labels[self.batch_indices]

    @functools.cached_property
    def probe(self) -> dict:
        """The first model with its outputs and loss on `batch`, or the error that stopped it."""
        probe = {"model": None, "outputs": None, "loss": None, "error": None, "stage": "build"}
        try:
            probe["model"] = model = self.build()
            probe["stage"] = "call"
            outputs = model(self.batch[0], training=False)
            probe["outputs"] = keras.ops.convert_to_numpy(outputs)
            if probe["outputs"].shape[-1] == self.num_classes:
                probe["stage"] = "loss"
                # from the tensor: a softmax output keeps its logits, as in training (from
                # numpy probabilities, clipped at 1e-7, the loss would stop at 16.1)
                probe["loss"] = float(loss_value(model, self.batch[1], outputs))
        except Exception as error:  # the user's code may raise anything
            probe["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
        return probe

    @property
    def usable(self) -> bool:
        """Whether the model builds, has one output per class and its loss can be computed."""
        return self.probe["error"] is None and self.probe["loss"] is not None

    @property
    def model(self):
        return self.probe["model"]

    @functools.cached_property
    def expected_loss(self) -> float:
        return math.log(self.num_classes)

    @functools.cached_property
    def rate(self):
        """The optimizer's learning rate as a float, or None for a schedule."""
        return learning_rate(self.model)

    @functools.cached_property
    def convention(self):
        """What the model expects of its input pixels (`model_inputs.inspect_model`), read
        once; None when the model did not build."""
        return None if self.model is None else model_inputs.inspect_model(self.model)

    @functools.cached_property
    def scaling_layers(self) -> list:
        return [layer for layer in all_layers(self.model) if isinstance(layer, _SCALING_LAYERS)]

    @property
    def raw_input(self) -> bool:
        """Whether the model sees 0-255 pixels without rescaling them itself."""
        return not self.scaling_layers and self.data.pixel_range[1] > 1

    def input_dimension(self):
        return "normalization" if self.raw_input else None

    def inputs(self, images, change=AS_IS) -> np.ndarray:
        """float32 0-255 `images` as `change` feeds them: raw, in [0, 1] or standardized."""
        if change.inputs == "unit":
            return images / np.float32(255)
        if change.inputs == "standard":
            mean, std = self.data.channel_mean_std
            return ((images - mean) / np.maximum(std, 1e-3)).astype(np.float32)
        return images

    @functools.cached_property
    def training_shape(self) -> tuple:
        """The input shape of the training tests: the long side cut to `TRAINING_SIDE`, unless
        the model cannot be built for it (then the images' own shape)."""
        full = tuple(self.images.shape[1:])
        scale = TRAINING_SIDE / max(full[:2])
        if scale >= 1:
            return full
        shape = (max(1, round(full[0] * scale)), max(1, round(full[1] * scale)), full[2])
        try:
            outputs = self.build(input_shape=shape)(np.zeros((1, *shape), np.float32))
            return shape if outputs.shape[-1] == self.num_classes else full
        except Exception:  # a model made for one input size only
            return full

    def training_images(self, indices) -> np.ndarray:
        """float32 0-255 images at `training_shape`; each distinct image is resized once (by
        area averaging), a chunk at a time."""
        unique, inverse = np.unique(indices, return_inverse=True)
        size = self.training_shape[:2]
        chunks = []
        for start in range(0, len(unique), _RESIZE_CHUNK):
            chunk = self.images[unique[start:start + _RESIZE_CHUNK]].astype(np.float32)
            if chunk.shape[1:3] != size:
                chunk = tf.image.resize(chunk, size, method="area").numpy()
            chunks.append(chunk)
        return np.concatenate(chunks)[inverse]

    @property
    def downscaled(self) -> bool:
        return self.training_shape != tuple(self.images.shape[1:])

    def one_batch(self, change=AS_IS) -> OneBatch:
        """The one-batch overfit test with `change` (cached)."""
        key = ("one_batch", change)
        if key not in self.runs_:
            self.runs_[key] = overfit_batch(self, change)
        return self.runs_[key]

    @functools.cached_property
    def short_run_data(self) -> tuple:
        """The short run's training images and labels, and a class-balanced sample to predict."""
        rng = np.random.default_rng(self.seed)
        train = (np.arange(len(self.labels)) if self.data.sides is None
                 else self.data.split.folds[0][0])
        steps = rng.choice(train, size=SHORT_RUN_STEPS * BATCH_SIZE)
        sample = _balanced_sample(self.labels, self.num_classes, BATCH_SIZE, rng)
        return (self.training_images(steps), self.labels[steps], self.training_images(sample),
                self.labels[sample])

    def short_run(self, change=AS_IS) -> tuple:
        """(TrainingTrend, Collapse) of `SHORT_RUN_STEPS` training steps with `change` (cached)."""
        key = ("short_run", change)
        if key not in self.runs_:
            self.runs_[key] = short_run(self, change)
        return self.runs_[key]

    def trend(self, change=AS_IS) -> TrainingTrend:
        return self.short_run(change)[0]

    def collapse(self, change=AS_IS) -> Collapse:
        return self.short_run(change)[1]

    def initial_loss(self, change=AS_IS) -> InitialLoss:
        """The probe model's loss on the batch with `change`'s inputs (its weights unchanged)."""
        if change.inputs == "raw":
            return InitialLoss(self.probe["loss"], self.expected_loss)
        outputs = self.model(self.inputs(self.batch[0], change), training=False)
        return InitialLoss(float(loss_value(self.model, self.batch[1], outputs)),
                           self.expected_loss)

    def evidenced(self, change) -> bool:
        """Whether a cause `change` tests is visible without training."""
        rate, (low, high) = self.rate, usual_learning_rates(self.model.optimizer)
        evidence = {
            "unscaled_input": self.raw_input,
            "learning_rate_too_high": rate is not None and rate > high,
            "learning_rate_too_low": rate is not None and rate < low,
            "majority_class_collapse": self.data.imbalance_ratio >= IMBALANCE_RATIO,
        }
        return any(evidence[cause] for cause in change.causes)

    @functools.cached_property
    def verdicts(self) -> list:
        """Each symptom of the training tests, with the changes tried and those that cured it."""
        if not self.usable:
            return []
        try:
            self.one_batch()
        except ValueError as error:
            if _no_gradients(error):
                return []
            raise
        tests = [("one_batch", "error", self.one_batch)]
        if self.one_batch().fits:  # else the one-batch verdict says more, at less cost
            tests.append(("trend", "error", self.trend))
        if self.data.imbalance_ratio >= COLLAPSE_MIN_RATIO:
            tests.append(("collapse", "error", self.collapse))
        tests.append(("initial_loss", "warning", self.initial_loss))
        verdicts = []
        for symptom, severity, test in tests:
            baseline = test(AS_IS)
            if baseline.sick:
                suspects = _suspects(self, symptom, baseline)
                tried, cures = attribute(test, suspects, self.evidenced)
                verdicts.append(Verdict(symptom, severity, baseline, tried, cures))
        return verdicts

    @property
    def causes(self) -> set:
        """Causes confirmed by a counterfactual."""
        return {cause for verdict in self.verdicts for cause in verdict.causes}


def _learning_rate_change(rate, factor) -> Change:
    cause = "learning_rate_too_high" if factor < 1 else "learning_rate_too_low"
    size = f"{number(1 / factor)}x smaller" if factor < 1 else f"{number(factor)}x larger"
    return Change((cause,), f"with a {size} learning rate ({number(rate * factor)})",
                  learning_rate_factor=factor)


def _lower_factors(ctx) -> tuple:
    """10x and 100x smaller, and 1000x while that is not below the optimizer's default rate."""
    default = learning_rate_default(ctx.model.optimizer)
    deepest = default is not None and ctx.rate * LOWER_FACTORS[-1] >= default * (1 - 1e-6)
    return LOWER_FACTORS if deepest else LOWER_FACTORS[:-1]


def _suspects(ctx, symptom, baseline) -> list:
    """The changes to try for a symptom: one list per suspected cause, mildest first."""
    suspects = []
    if ctx.raw_input:
        suspects.append([SCALED, STANDARDIZED] if symptom == "one_batch" else [SCALED])
    if ctx.rate is not None and symptom != "initial_loss":
        stable = symptom == "one_batch" and not (baseline.spiked or baseline.diverged)
        factors = (10,) if stable else _lower_factors(ctx)
        suspects.append([_learning_rate_change(ctx.rate, f) for f in factors])
    if symptom == "collapse":
        suspects.append([WEIGHTED])
    return suspects


def all_layers(model) -> list:
    """Every layer of a model, nested models included."""
    layers = []
    for layer in getattr(model, "layers", []):
        layers.append(layer)
        layers.extend(all_layers(layer))
    return layers


def loss_value(model, labels, outputs):
    """The mean compiled loss of `outputs` (a tensor, so it can be differentiated)."""
    loss = model.loss
    function = keras.losses.get(loss) if isinstance(loss, str) else loss
    return keras.ops.mean(function(labels, outputs))


def is_cross_entropy(name) -> bool:
    return "crossentropy" in name.replace("_", "").lower()


def outputs_are_probabilities(outputs) -> bool:
    """Whether every output row is a probability distribution (a softmax output)."""
    return bool(np.all(outputs >= 0) and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def learning_rate(model):
    """The optimizer's learning rate as a float, or None for a schedule."""
    value = model.optimizer.get_config().get("learning_rate")
    return float(value) if isinstance(value, (int, float)) else None


def usual_learning_rates(optimizer) -> tuple:
    """(lowest, highest) learning rate commonly used with `optimizer`."""
    return 1e-6, 1.0 if type(optimizer).__name__ == "SGD" else 0.05


def learning_rate_default(optimizer):
    """The default learning rate of `optimizer`'s class, or None."""
    try:
        return float(type(optimizer)().get_config()["learning_rate"])
    except Exception:  # an optimizer class that needs arguments, or a schedule
        return None


_RATE_CAUSES = {"learning_rate_too_high", "learning_rate_too_low"}


def _model_check(name, priority):
    return register(MODEL_CHECKS, name, priority=priority)


@_model_check("model_build", priority=0)
def check_model_build(ctx):
    """`model_fn` must build a model with one output unit per class."""
    probe = ctx.probe
    if probe["error"] is not None and probe["stage"] in ("build", "call"):
        yield Finding(
            "model_build_failed", "error", f"`{ctx.name}` fails to build or run",
            f"{probe['error']} (while trying to {probe['stage']} the model on input shape "
            f"{ctx.images.shape[1:]}).",
            f"Make `{ctx.name}(input_shape, num_classes)` return a keras.Model that accepts "
            "batches of that shape.",
        )
    elif probe["outputs"] is not None and probe["outputs"].shape[-1] != ctx.num_classes:
        units = probe["outputs"].shape[-1]
        yield Finding(
            "output_units_mismatch", "error",
            f"The model has {units} output units but the data has {ctx.num_classes} classes",
            f"Output shape {tuple(probe['outputs'].shape)}; classes: "
            f"{listing(ctx.data.class_names)}.",
            "Build the last layer with `num_classes` units: `Dense(num_classes)`.",
        )


@_model_check("loss_activation", priority=4)
def check_loss_activation(ctx):
    """The output activation must match the loss's `from_logits`, and the loss must run."""
    probe = ctx.probe
    if probe["error"] is not None and probe["stage"] == "loss":
        yield Finding(
            "loss_fails", "error", "The compiled loss cannot be computed on integer labels",
            probe["error"], "Compile with `SparseCategoricalCrossentropy`; autoprep's labels "
            "are class indices, not one-hot vectors.",
        )
        return
    if not ctx.usable:
        return
    name, from_logits = loss_description(ctx.model.loss)
    probabilities = outputs_are_probabilities(probe["outputs"])
    if is_cross_entropy(name) and probabilities and from_logits:
        yield Finding(
            "softmax_with_from_logits", "error",
            "Softmax output with a `from_logits=True` loss",
            f"Every output row sums to 1, yet the loss ({name}) applies softmax again: "
            "gradients shrink and training stalls near chance.",
            "Remove the softmax from the last layer, or compile with `from_logits=False`.",
        )
    elif is_cross_entropy(name) and not probabilities and not from_logits:
        yield Finding(
            "logits_without_from_logits", "error",
            "Raw logits output with a `from_logits=False` loss",
            f"Outputs are not probabilities (range {number(probe['outputs'].min())} to "
            f"{number(probe['outputs'].max())}) but the loss ({name}) treats them as such.",
            "Compile with `SparseCategoricalCrossentropy(from_logits=True)`, or end the model "
            "with `activation='softmax'`.",
        )


@_model_check("compile_settings", priority=21)
def check_compile_settings(ctx):
    """Missing compile settings (autoprep fills them in) or unusual loss and learning rate."""
    if not ctx.usable:
        return
    model = ctx.model
    name, from_logits = loss_description(model.loss)
    if not model.user_compiled_:
        yield Finding(
            "not_compiled", "info", "The model is not compiled; autoprep compiles it",
            f"Adam(learning_rate=1e-3) and {name}(from_logits={from_logits}), from_logits "
            "inferred from the output activation.",
            "Nothing to do, or compile it yourself to choose the optimizer.",
        )
    if not is_cross_entropy(name):
        yield Finding(
            "unusual_loss", "warning", f"Unusual loss for classification: {name}",
            "Classifiers are trained with cross-entropy on class indices.",
            "Compile with `SparseCategoricalCrossentropy`.",
        )
    rate, optimizer = ctx.rate, type(model.optimizer).__name__
    low, high = usual_learning_rates(model.optimizer)
    if rate is not None and not low <= rate <= high and ctx.causes.isdisjoint(_RATE_CAUSES):
        default = learning_rate_default(model.optimizer)
        yield Finding(
            "unusual_learning_rate", "warning",
            f"Unusual learning rate {number(rate)} for {optimizer}",
            f"Typical values are 1e-4 to {number(high)}.",
            f"Start from {optimizer}'s default learning rate, {number(default)}." if default
            else "Start from the optimizer's default learning rate.",
        )


@_model_check("input_scale", priority=20)
def check_input_scale(ctx):
    """Which pixel scale the model sees: raw 0-255 unless it rescales its input itself."""
    if not ctx.usable:
        return
    low, high = ctx.data.pixel_range
    if ctx.scaling_layers:
        names = listing(type(layer).__name__ for layer in ctx.scaling_layers)
        yield Finding(
            "input_scale", "info", "The model normalizes its own input",
            f"It receives pixels in [{low}, {high}] and contains {names}.",
            "Nothing to do: `autoprep tune` feeds such a model raw pixels (normalization "
            "'none'), so they are not scaled twice.",
            dimension="normalization",
        )
    elif (ctx.raw_input and "unscaled_input" not in ctx.causes
          and ctx.convention.kind != "backbone"):
        mean = number(ctx.data.channel_mean_std[0].mean())
        yield Finding(
            "unscaled_input", "warning", "The model sees raw pixel values (0-255)",
            f"Inputs range over [{low}, {high}] (mean {mean}) and the model has no Rescaling "
            "or Normalization layer. No symptom of the training tests is cured by scaling them.",
            "Normalize the inputs: `keras.layers.Rescaling(1/255)` as first layer, or the "
            "pipeline autoprep tunes.",
            dimension="normalization",
        )


@_model_check("gradients", priority=5)
def check_gradients(ctx):
    """The loss must produce finite, non-zero gradients for the trainable weights."""
    if not ctx.usable:
        return
    model = ctx.build()
    images, labels = ctx.batch
    with tf.GradientTape() as tape:
        loss = loss_value(model, labels, model(images, training=True))
    variables = model.trainable_variables
    grads = [g if g is None else tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]
    nonfinite = [v.path for v, g in zip(variables, grads, strict=True)
                 if g is not None and not bool(tf.reduce_all(tf.math.is_finite(g)))]
    zero = [v.path for v, g in zip(variables, grads, strict=True)
            if g is None or not bool(tf.reduce_any(g != 0))]
    if nonfinite:
        yield Finding(
            "nonfinite_gradients", "error", "Gradients are NaN or infinite",
            f"Loss {number(loss)}; non-finite gradient for {listing(nonfinite)}.",
            "Look for log/division of zero in custom layers or losses, and scale the inputs.",
            dimension=ctx.input_dimension(),
        )
    elif zero and len(zero) == len(variables):
        yield Finding(
            "zero_gradients", "error", "No weight receives a gradient",
            f"Loss {number(loss)}; all {len(variables)} trainable variables have zero or no "
            "gradient.",
            "Check that the output depends on trainable layers (not frozen, not cut off by "
            "an argmax/round) and that activations do not saturate.",
            dimension=ctx.input_dimension(),
        )
    elif zero:
        yield Finding(
            "zero_gradients", "warning", f"{len(zero)} weight tensor(s) get no gradient",
            f"Zero or missing gradient: {listing(zero)}.",
            "Check for dead ReLU units (scale the inputs) or layers not connected to the loss.",
            dimension=ctx.input_dimension(),
        )


def overfit_batch(ctx, change=AS_IS) -> OneBatch:
    """Trains a fresh model on one batch until it fits (or its loss is not finite)."""
    model = ctx.build(change, input_shape=ctx.training_shape)
    images = ctx.inputs(ctx.training_images(ctx.batch_indices), change)
    labels = ctx.batch[1]
    losses = []
    for _ in range(OVERFIT_STEPS):
        losses.append(float(model.train_on_batch(images, labels, return_dict=True)["loss"]))
        if OneBatch(losses, ctx.expected_loss).fits or not math.isfinite(losses[-1]):
            break
    return OneBatch(losses, ctx.expected_loss)


def _no_gradients(error) -> bool:
    """Keras' error when training a model whose loss gives no weight a gradient (the gradients
    check reports that model: training it has nothing more to say)."""
    return isinstance(error, ValueError) and "No gradients provided" in str(error)


def _balanced_sample(labels, num_classes, per_class, rng):
    return np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)
    ])


def short_run(ctx, change=AS_IS) -> tuple:
    """`SHORT_RUN_STEPS` steps of training on changing batches: the loss of each step, then
    which class a balanced sample is predicted as."""
    images, labels, sample, sample_labels = ctx.short_run_data
    counts = ctx.data.counts
    weights = ({c: len(ctx.labels) / (ctx.num_classes * max(n, 1)) for c, n in enumerate(counts)}
               if change.class_weights else None)
    model = ctx.build(change, input_shape=ctx.training_shape)
    images = ctx.inputs(images, change)
    losses = []
    for start in range(0, len(images), BATCH_SIZE):
        step = slice(start, start + BATCH_SIZE)
        result = model.train_on_batch(images[step], labels[step], class_weight=weights,
                                      return_dict=True)
        losses.append(float(result["loss"]))
        if not math.isfinite(losses[-1]):
            break
    outputs = keras.ops.convert_to_numpy(model(ctx.inputs(sample, change), training=False))
    # share[k]: fraction of each class predicted as k, averaged over classes (class-balanced)
    confusion = np.zeros((ctx.num_classes, ctx.num_classes))
    np.add.at(confusion, (sample_labels, outputs.argmax(axis=-1)), 1)
    share = (confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)).mean(axis=0)
    if not np.isfinite(outputs).all():
        share = np.full(ctx.num_classes, np.nan)
    collapse = Collapse(share, int(counts.argmax()), ctx.data.class_names)
    return TrainingTrend(losses, ctx.expected_loss), collapse


@_model_check("learning", priority=9)
def check_learning(ctx):
    """Can the model learn? Each symptom of the training tests is reported under the cause
    whose change cured it, or as itself when nothing tried cured it."""
    by_cause = {}
    for verdict in ctx.verdicts:
        for cause in verdict.causes:
            by_cause.setdefault(cause, []).append(verdict)
    for cause, verdicts in by_cause.items():
        yield _cause_finding(ctx, cause, verdicts)
    for verdict in ctx.verdicts:
        if not verdict.cures:
            yield _UNCURED[verdict.symptom](ctx, verdict)


def _symptom_sentence(ctx, verdict) -> str:
    """What the user's own setup showed."""
    if verdict.symptom == "one_batch":
        return f"{_one_batch_test(ctx)}: the model {verdict.baseline.describe()}."
    if verdict.symptom == "trend":
        return (f"Short run ({SHORT_RUN_STEPS} steps on changing batches of the training "
                f"images): the model {verdict.baseline.describe()}.")
    if verdict.symptom == "collapse":
        return f"After {SHORT_RUN_STEPS} training steps the model {verdict.baseline.describe()}."
    return (f"A freshly built model {verdict.baseline.describe()} where a classifier unsure of "
            f"every class starts at ln({ctx.num_classes}) = {number(ctx.expected_loss)}.")


def _one_batch_test(ctx) -> str:
    size = "" if not ctx.downscaled else " downscaled to {}x{}".format(*ctx.training_shape[:2])
    return f"One-batch test ({BATCH_SIZE} images{size})"


def _tried_sentence(change, outcome, also=False) -> str:
    text = change.text[0].upper() + change.text[1:]
    return f"{text}, it {'also ' if also else ''}{outcome.describe()}."


def _symptom_phrase(ctx, verdict) -> str:
    """A title's half naming the symptom."""
    baseline = verdict.baseline
    if verdict.symptom == "one_batch":
        return ("the one-batch test diverges" if baseline.diverged
                else "the model cannot fit one batch")
    if verdict.symptom == "trend":
        return "the loss diverges in training"
    if verdict.symptom == "collapse":
        return f"the model {baseline.describe()}"
    return (f"the initial loss is {number(baseline.loss)} instead of about "
            f"{number(ctx.expected_loss)}")


def _cause_finding(ctx, cause, verdicts) -> Finding:
    """The finding of a confirmed cause: each symptom it cured, what was tried before, and
    how."""
    evidence = []
    for verdict in verdicts:
        (change, outcome), *others = verdict.cures
        evidence.append(_symptom_sentence(ctx, verdict))
        evidence += [_tried_sentence(c, o) for c, o in verdict.tried if o.sick]
        if len(change.causes) > 1:
            evidence.append("No single change cured it.")
        evidence.append(_tried_sentence(change, outcome))
        evidence += [_tried_sentence(c, o, also=True) for c, o in others]
    evidence += _spike_note(ctx, cause, verdicts)
    severity = min((v.severity for v in verdicts), key=SEVERITIES.index)
    symptoms = " and ".join(_symptom_phrase(ctx, verdict) for verdict in verdicts)
    title = f"{_CAUSE_TITLES[cause](ctx)}: {symptoms}"
    return Finding(
        cause, severity, title, " ".join(evidence),
        _CAUSE_FIXES[cause](ctx, fix_change(cause, verdicts)),
        dimension=_CAUSE_DIMENSIONS.get(cause), data=_verdict_data(ctx, verdicts),
    )


def fix_change(cause, verdicts) -> Change:
    """The cure a fix names: for a learning rate, the one that cured every symptom (the
    smallest rate that cured, or the largest for a rate too low); else the first symptom's."""
    changes = [verdict.cures[0][0] for verdict in verdicts]
    if cause == "learning_rate_too_high":
        return min(changes, key=lambda change: change.learning_rate_factor)
    if cause == "learning_rate_too_low":
        return max(changes, key=lambda change: change.learning_rate_factor)
    return changes[0]


def _spike_note(ctx, cause, verdicts) -> list:
    """For raw pixels blamed on the initial loss alone: the one-batch loss spike they cause."""
    one_batch, fitted = ctx.one_batch(), all(v.symptom != "one_batch" for v in verdicts)
    if cause != "unscaled_input" or not fitted or not one_batch.spiked:
        return []
    scaled = ctx.one_batch(SCALED)
    return [f"{_one_batch_test(ctx)}: the model {one_batch.describe()}; {SCALED.text}, it "
            f"{scaled.describe()}."]


def _verdict_data(ctx, verdicts) -> dict:
    return {
        "training_shape": list(ctx.training_shape),
        "symptoms": [{
            "symptom": v.symptom, "result": v.baseline.describe(),
            "tried": [{"change": c.text, "result": o.describe(), "cured": not o.sick}
                      for c, o in v.tried],
            **({"losses": v.baseline.losses} if v.symptom in ("one_batch", "trend") else {}),
        } for v in verdicts],
    }


_CAUSE_TITLES = {
    "unscaled_input": lambda ctx: "The model is fed raw 0-255 pixels",
    "learning_rate_too_high": lambda ctx: f"The learning rate ({number(ctx.rate)}) is too high",
    "learning_rate_too_low": lambda ctx: f"The learning rate ({number(ctx.rate)}) is too low",
    "majority_class_collapse": lambda ctx:
        f"The classes are imbalanced {number(ctx.data.imbalance_ratio, 2)}:1",
}
_CAUSE_DIMENSIONS = {"unscaled_input": "normalization", "majority_class_collapse": "imbalance"}


def _input_fix(ctx, change) -> str:
    convention = ctx.convention
    if convention.kind == "backbone" and convention.normalization is not None:
        return (f"Feed the {convention.source} what its ImageNet weights were trained on (it "
                f"{convention.reason}): `autoprep tune` does so by itself (normalization "
                f"'{convention.normalization}'), or apply its family's `preprocess_input` "
                "before the model.")
    if change.inputs == "standard":
        return ("Standardize the inputs: a `keras.layers.Normalization()` first layer adapted to "
                "the training images, or the pipeline autoprep tunes.")
    return ("Scale the inputs: `keras.layers.Rescaling(1/255)` as the model's first layer, or "
            "the pipeline autoprep tunes.")


def _learning_rate_fix(ctx, change) -> str:
    factor = change.learning_rate_factor  # a combined change carries its rate's factor too
    if factor < 1:
        return (f"Lower the learning rate to {number(ctx.rate * factor)} ({number(1 / factor)}x "
                f"smaller than your {number(ctx.rate)}).")
    return (f"Raise the learning rate to {number(ctx.rate * factor)} ({number(factor)}x your "
            f"{number(ctx.rate)}).")


_CAUSE_FIXES = {
    "unscaled_input": _input_fix,
    "learning_rate_too_high": _learning_rate_fix,
    "learning_rate_too_low": _learning_rate_fix,
    "majority_class_collapse": lambda ctx, change:
        "Weight the classes by inverse frequency (`class_weight=` in `fit`) or resample them; "
        "autoprep's imbalance search tries both.",
}


def _nothing_cured(ctx, verdict) -> str:
    """What was tried, the most helpful change first, when nothing cured the symptom."""
    if not verdict.tried:
        reasons = ["the model scales its own inputs"]
        if verdict.symptom != "initial_loss":
            reasons.append("its learning rate is a schedule")
        return f"Nothing to try: {' and '.join(reasons)}."
    ranked = sorted(verdict.tried, key=lambda t: t[1].badness)
    return "Nothing tried cures it. " + " ".join(_tried_sentence(c, o) for c, o in ranked)


def _most_helpful_dimension(verdict):
    """The dimension of the change that helped most, if it helped at all."""
    helpful = [(c, o) for c, o in verdict.tried if o.badness < verdict.baseline.badness]
    if not helpful:
        return None
    change = min(helpful, key=lambda t: t[1].badness)[0]
    return next((_CAUSE_DIMENSIONS[c] for c in change.causes if c in _CAUSE_DIMENSIONS), None)


def _uncured_one_batch(ctx, verdict) -> Finding:
    title = ("The one-batch test diverges" if verdict.baseline.diverged
             else "The model cannot fit even one batch")
    return Finding(
        "cannot_overfit_batch", "error", title,
        f"{_symptom_sentence(ctx, verdict)} A working model memorises {BATCH_SIZE} images "
        f"quickly. {_nothing_cured(ctx, verdict)}",
        "Check the architecture (capacity, a bottleneck, activations that saturate, layers "
        "cut off from the loss), then the inputs and the learning rate.",
        dimension=_most_helpful_dimension(verdict), data=_verdict_data(ctx, [verdict]),
    )


def _uncured_trend(ctx, verdict) -> Finding:
    return Finding(
        "training_diverges", "error", "The loss diverges in training",
        f"{_symptom_sentence(ctx, verdict)} {_nothing_cured(ctx, verdict)}",
        "Lower the learning rate, scale the inputs, and look for layers whose outputs grow "
        "without bound (no normalization, exponentials, custom losses).",
        dimension=_most_helpful_dimension(verdict), data=_verdict_data(ctx, [verdict]),
    )


def _uncured_collapse(ctx, verdict) -> Finding:
    names, winner = ctx.data.class_names, verdict.baseline.majority
    return Finding(
        "majority_class_collapse", "error",
        f"After {SHORT_RUN_STEPS} training steps the model predicts the majority class "
        f"{names[winner]!r} for {verdict.baseline.share.max():.0%} of the images",
        f"{_symptom_sentence(ctx, verdict)} Classes are imbalanced "
        f"{number(ctx.data.imbalance_ratio, 2)}:1. {_nothing_cured(ctx, verdict)}",
        "Reweight or resample the classes (autoprep's imbalance search), and check that the "
        "model can learn at all (the one-batch test).",
        dimension="imbalance", data=_verdict_data(ctx, [verdict]),
    )


def _uncured_initial_loss(ctx, verdict) -> Finding:
    confident = "" if ctx.raw_input else " Its outputs are confident before any training."
    return Finding(
        "initial_loss_off", "warning",
        f"Initial loss {number(verdict.baseline.loss)} is far from ln({ctx.num_classes}) = "
        f"{number(ctx.expected_loss)}",
        f"{_symptom_sentence(ctx, verdict)}{confident} {_nothing_cured(ctx, verdict)}",
        "Keep the default initialization of the last layer (small weights, zero bias) and "
        "check what feeds it.",
        dimension=ctx.input_dimension(), data=_verdict_data(ctx, [verdict]),
    )


_UNCURED = {
    "one_batch": _uncured_one_batch,
    "trend": _uncured_trend,
    "collapse": _uncured_collapse,
    "initial_loss": _uncured_initial_loss,
}
