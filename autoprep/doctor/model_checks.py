"""Model checks: does the user's model fit the data, and can it learn at all?

Each check reads a `ModelContext`: the examined data plus `model_fn`. Models are built as `tune`
builds them (an uncompiled model gets Adam and sparse cross-entropy) and fed the raw decoded
pixels (0-255), which is what a model sees without a preprocessing pipeline. Training is kept
tiny: one batch of 16 images, and a short run of a few dozen steps.
"""

import functools
import math

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from autoprep.data.stats import IMBALANCE_RATIO
from autoprep.doctor._checks import MODEL_CHECKS, register
from autoprep.doctor.data_checks import listing
from autoprep.doctor.report import Finding
from autoprep.search import model_inputs
from autoprep.search.hypermodel import accepts_hp, ensure_compiled, loss_description
from autoprep.search.model_spec import load_model_fn

BATCH_SIZE = 16
OVERFIT_STEPS = 100  # steps of the one-batch overfit test
OVERFIT_TARGET = 0.25  # the loss must fall below this fraction of ln(num_classes)
DIVERGENCE_FACTOR = 10  # a loss this many times its start means the steps are too large
LEARNING_RATE_FACTORS = (0.1, 0.01)  # retried when the batch cannot be fit
SHORT_RUN_STEPS = 60  # training steps before looking for majority-class collapse
COLLAPSE_SHARE = 0.9  # share of a class-balanced sample predicted as one class
_SCALING_LAYERS = (keras.layers.Rescaling, keras.layers.Normalization)


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
        self.images = data.folder.images.astype(np.float32)
        self.labels = data.folder.labels
        self.num_classes = len(data.class_names)

    def build(self, learning_rate_factor=1.0):
        """A fresh model from `model_fn`, compiled as `tune` compiles it."""
        keras.utils.set_random_seed(self.seed)
        kwargs = {"hp": kt.HyperParameters()} if accepts_hp(self.model_fn) else {}
        model = self.model_fn(self.images.shape[1:], self.num_classes, **kwargs)
        if not isinstance(model, keras.Model):
            raise TypeError(f"`model_fn` must return a keras.Model, not {type(model).__name__}")
        compiled = getattr(model, "compiled", False)
        model = ensure_compiled(model, one_hot_labels=False)
        model.user_compiled_ = compiled
        if learning_rate_factor != 1.0:
            config = model.optimizer.get_config()
            config["learning_rate"] *= learning_rate_factor
            model.compile(optimizer=type(model.optimizer).from_config(config), loss=model.loss)
        return model

    @functools.cached_property
    def batch(self) -> tuple:
        """A class-balanced batch (images, labels): classes taken in turn."""
        rng = np.random.default_rng(self.seed)
        per_class = [rng.permutation(np.flatnonzero(self.labels == c))
                     for c in range(self.num_classes)]
        order = [ix[i] for i in range(BATCH_SIZE) for ix in per_class if i < len(ix)]
        chosen = np.array(order[:BATCH_SIZE])
        return self.images[chosen], self.labels[chosen]

    @functools.cached_property
    def probe(self) -> dict:
        """The first model with its outputs and loss on `batch`, or the error that stopped it."""
        probe = {"model": None, "outputs": None, "loss": None, "error": None, "stage": "build"}
        try:
            probe["model"] = model = self.build()
            probe["stage"] = "call"
            probe["outputs"] = keras.ops.convert_to_numpy(model(self.batch[0], training=False))
            if probe["outputs"].shape[-1] == self.num_classes:
                probe["stage"] = "loss"
                probe["loss"] = float(loss_value(model, self.batch[1], probe["outputs"]))
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
    def scaling_layers(self) -> list:
        return [layer for layer in all_layers(self.model) if isinstance(layer, _SCALING_LAYERS)]

    @property
    def raw_input(self) -> bool:
        """Whether the model sees 0-255 pixels without rescaling them itself."""
        return not self.scaling_layers and self.images.max() > 1

    def input_dimension(self):
        return "normalization" if self.raw_input else None


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
            f"Outputs are not probabilities (range {probe['outputs'].min():.2f} to "
            f"{probe['outputs'].max():.2f}) but the loss ({name}) treats them as such.",
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
            f"Adam(learning_rate=0.001) and {name}(from_logits={from_logits}), from_logits "
            "inferred from the output activation.",
            "Nothing to do, or compile it yourself to choose the optimizer.",
        )
    if not is_cross_entropy(name):
        yield Finding(
            "unusual_loss", "warning", f"Unusual loss for classification: {name}",
            "Classifiers are trained with cross-entropy on class indices.",
            "Compile with `SparseCategoricalCrossentropy`.",
        )
    rate, optimizer = learning_rate(model), type(model.optimizer).__name__
    high = 1.0 if optimizer == "SGD" else 0.05
    if rate is not None and not 1e-6 <= rate <= high:
        yield Finding(
            "unusual_learning_rate", "warning", f"Unusual learning rate {rate:g} for {optimizer}",
            f"Typical values are 1e-4 to {high:g}.",
            "Use the optimizer's default learning rate as a starting point.",
        )


@_model_check("input_scale", priority=20)
def check_input_scale(ctx):
    """Which pixel scale the model sees: raw 0-255 unless it rescales its input itself."""
    if not ctx.usable:
        return
    low, high = float(ctx.images.min()), float(ctx.images.max())
    if ctx.scaling_layers:
        names = listing(type(layer).__name__ for layer in ctx.scaling_layers)
        yield Finding(
            "input_scale", "info", "The model normalizes its own input",
            f"It receives pixels in [{low:g}, {high:g}] and contains {names}.",
            "Nothing to do: `autoprep tune` feeds such a model raw pixels (normalization "
            "'none'), so they are not scaled twice.",
            dimension="normalization",
        )
    elif ctx.raw_input and model_inputs.inspect_model(ctx.model).kind != "backbone":
        yield Finding(
            "unscaled_input", "warning", "The model sees raw pixel values (0-255)",
            f"Inputs range over [{low:g}, {high:g}] (mean {ctx.images.mean():.1f}) and the "
            "model has no Rescaling or Normalization layer.",
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
            f"Loss {float(loss):.3g}; non-finite gradient for {listing(nonfinite)}.",
            "Look for log/division of zero in custom layers or losses, and scale the inputs.",
            dimension=ctx.input_dimension(),
        )
    elif zero and len(zero) == len(variables):
        yield Finding(
            "zero_gradients", "error", "No weight receives a gradient",
            f"Loss {float(loss):.3g}; all {len(variables)} trainable variables have zero or no "
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


@_model_check("initial_loss", priority=22)
def check_initial_loss(ctx):
    """A freshly initialised classifier should start near ln(num_classes)."""
    if not ctx.usable:
        return
    initial, expected = ctx.probe["loss"], ctx.expected_loss
    if not math.isfinite(initial) or not 0.5 * expected <= initial <= 2 * expected + 1:
        yield Finding(
            "initial_loss_off", "warning",
            f"Initial loss {initial:.3g} is far from ln({ctx.num_classes}) = {expected:.2f}",
            "A fresh classifier should be unsure of every class; "
            + ("its logits are huge because it is fed raw 0-255 pixels." if ctx.raw_input
               else "its outputs are already confident."),
            "Scale the inputs and keep the default initialization of the last layer.",
            dimension=ctx.input_dimension(),
        )


def overfit_batch(ctx, learning_rate_factor=1.0) -> list:
    """Trains a fresh model on one batch; returns its per-step losses (stops early when fit)."""
    model = ctx.build(learning_rate_factor)
    images, labels = ctx.batch
    losses = []
    for _ in range(OVERFIT_STEPS):
        losses.append(float(model.train_on_batch(images, labels, return_dict=True)["loss"]))
        if _fits(ctx, losses) or not math.isfinite(losses[-1]):
            break
    return losses


def _no_gradients(error) -> bool:
    """Keras' error when training a model whose loss gives no weight a gradient (the gradients
    check reports that model: training it has nothing more to say)."""
    return isinstance(error, ValueError) and "No gradients provided" in str(error)


def _fits(ctx, losses) -> bool:
    return math.isfinite(losses[-1]) and losses[-1] < OVERFIT_TARGET * ctx.expected_loss


def _diverges(ctx, losses) -> bool:
    """A non-finite loss, or one that jumps far above where it started."""
    finite = all(math.isfinite(loss) for loss in losses)
    return not finite or max(losses) > DIVERGENCE_FACTOR * max(losses[0], ctx.expected_loss)


@_model_check("overfit_batch", priority=9)
def check_overfit_batch(ctx):
    """The one-batch overfit test: can the model drive the loss near zero on 16 images?"""
    if not ctx.usable:
        return
    try:
        losses = overfit_batch(ctx)
    except ValueError as error:
        if _no_gradients(error):
            return
        raise
    diverged = _diverges(ctx, losses)
    if _fits(ctx, losses) and not diverged:
        return
    trace = f"loss {losses[0]:.3g} -> {losses[-1]:.3g} after {len(losses)} steps on one batch"
    if diverged:
        trace = f"loss {losses[0]:.3g} jumps to {max(losses):.3g} within {len(losses)} steps"
    rate = learning_rate(ctx.model)
    retried = []
    for factor in LEARNING_RATE_FACTORS if rate is not None and not diverged else ():
        retry = overfit_batch(ctx, factor)
        retried.append(f"x{factor:g}: {retry[-1]:.3g}")
        if _fits(ctx, retry):
            diverged = True
            break
    retry_text = f"; with the learning rate {', '.join(retried)}" if retried else ""
    if diverged:
        yield Finding(
            "learning_rate_too_high", "error",
            f"The learning rate ({rate if rate is not None else 'schedule'}) is too high",
            f"{trace}{retry_text}.",
            "Lower the learning rate (try 10x smaller, e.g. Adam's default 1e-3).",
            data={"losses": losses},
        )
    else:
        yield Finding(
            "cannot_overfit_batch", "error", "The model cannot fit even one batch",
            f"{trace}{retry_text}; a working model memorises 16 images quickly.",
            "Check the architecture (capacity, a bottleneck, activations) and scale the "
            "inputs; try a higher learning rate.",
            dimension=ctx.input_dimension(), data={"losses": losses},
        )


def _balanced_sample(labels, num_classes, per_class, rng):
    return np.concatenate([
        rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in range(num_classes)
    ])


@_model_check("majority_collapse", priority=11)
def check_majority_collapse(ctx):
    """After a short training run, does the model predict one class for everything?"""
    if not ctx.usable:
        return
    rng = np.random.default_rng(ctx.seed)
    split = ctx.data.split
    train = np.arange(len(ctx.labels)) if ctx.data.sides is None else split.folds[0][0]
    steps = rng.choice(train, size=SHORT_RUN_STEPS * BATCH_SIZE)
    model = ctx.build()
    try:
        model.fit(ctx.images[steps], ctx.labels[steps], batch_size=BATCH_SIZE, epochs=1,
                  verbose=0)
    except ValueError as error:
        if _no_gradients(error):
            return
        raise
    sample = _balanced_sample(ctx.labels, ctx.num_classes, BATCH_SIZE, rng)
    outputs = keras.ops.convert_to_numpy(model(ctx.images[sample], training=False))
    if not np.isfinite(outputs).all():
        return  # diverged: the overfit test names the learning rate
    predicted = outputs.argmax(axis=-1)
    # share[k]: fraction of each class predicted as k, averaged over classes (class-balanced)
    confusion = np.zeros((ctx.num_classes, ctx.num_classes))
    np.add.at(confusion, (ctx.labels[sample], predicted), 1)
    share = (confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)).mean(axis=0)
    if share.max() >= COLLAPSE_SHARE:
        yield _collapse_finding(ctx, confusion.sum(axis=0), share)


def _collapse_finding(ctx, predicted, share):
    names, counts = ctx.data.class_names, ctx.data.counts
    winner = int(share.argmax())
    imbalanced = ctx.data.imbalance_ratio >= IMBALANCE_RATIO
    predictions = [f"{n} {int(p)}" for n, p in zip(names, predicted, strict=True)]
    cause = (
        f"the classes are imbalanced {ctx.data.imbalance_ratio:.0f}:1 and "
        f"{names[winner]!r} has {int(counts[winner])} images" if imbalanced
        else "the inputs are raw 0-255 pixels" if ctx.raw_input else "the model learns nothing"
    )
    return Finding(
        "majority_class_collapse", "error",
        f"After {SHORT_RUN_STEPS} training steps the model predicts {names[winner]!r} for "
        f"{share.max():.0%} of the images (averaged over classes)",
        f"Predictions per class: {listing(predictions, 10)}; {cause}.",
        "Reweight or resample the classes (autoprep's imbalance search)" if imbalanced
        else "Normalize the inputs and check the learning rate",
        dimension="imbalance" if imbalanced else ctx.input_dimension(),
        data={"predicted": {n: int(p) for n, p in zip(names, predicted, strict=True)}},
    )
