"""The Keras Tuner HyperModel: the user's model, trained on the trial's preprocessing pipeline.

`build(hp)` declares the preprocessing search space and calls the user's `model_fn` (passing
`hp` when it accepts one, so users can co-tune their own hyperparameters). `fit(hp, model)`
fits the trial's pipeline on each fold's training part only, trains, and reports the objective
of the pooled out-of-fold predictions of the last epochs.
"""

import contextlib
import dataclasses
import inspect
import json
import math
import warnings
import zlib

import keras
import keras_tuner as kt
import numpy as np
import tensorflow as tf

from autoprep.data.subset import Subset
from autoprep.errors import ArgumentError, ModelError
from autoprep.objectives import confusion, log_name, score_predictions
from autoprep.search import device_input as device
from autoprep.search import kt_adapter, tf_adapter


def call_model_fn(model_fn, input_shape, num_classes, hp=None):
    """Calls `model_fn(input_shape, num_classes[, hp])` and checks the model it returns.

    Raises:
        ModelError: when `model_fn` raises, returns something else than a Keras model, or
            its output does not have `num_classes` units.
    """
    name = getattr(model_fn, "__name__", repr(model_fn))
    kwargs = {"hp": hp} if hp is not None and accepts_hp(model_fn) else {}
    try:
        model = model_fn(input_shape, num_classes, **kwargs)
    except Exception as error:
        raise ModelError(
            f"`model_fn` {name}{tuple(input_shape)!r} failed: {type(error).__name__}: {error}. "
            "It must accept (input_shape, num_classes) and may accept `hp`."
        ) from error
    if not isinstance(model, keras.Model):
        raise ModelError(
            f"`model_fn` {name} must return a keras.Model. Received: {type(model).__name__}"
        )
    units = model.outputs[0].shape[-1] if model.outputs else None
    if units != num_classes:
        raise ModelError(
            f"The model from `model_fn` {name} has {units} output units but the data has "
            f"{num_classes} classes. Build the last layer with `num_classes` units."
        )
    return model


def strategy_scope(strategy):
    """`strategy.scope()`, or a no-op context without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def accepts_hp(model_fn) -> bool:
    """Whether `model_fn` takes an `hp` argument (or **kwargs)."""
    try:
        params = inspect.signature(model_fn).parameters
    except (TypeError, ValueError):
        return False
    return "hp" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _output_is_probability(model) -> bool:
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    return getattr(activation, "__name__", "") == "softmax" or type(last).__name__ == "Softmax"


def loss_description(loss) -> tuple:
    """(name, from_logits) of a compiled loss given as an object, a function or a string."""
    if isinstance(loss, str):
        return loss, False
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    name = config.get("name") or getattr(loss, "__name__", type(loss).__name__)
    return name, bool(config.get("from_logits", False))


def ensure_compiled(model, *, one_hot_labels: bool):
    """Compiles an uncompiled model (Adam, cross-entropy) or fits a compiled loss to the labels.

    Label-mixing augmentation (MixUp, CutMix) yields one-hot labels, which need the categorical
    form of the cross-entropy; the user's optimizer and `from_logits` are kept.
    """
    if getattr(model, "compiled", False) and getattr(model, "loss", None) is not None:
        if not one_hot_labels:
            return model
        _, from_logits = loss_description(model.loss)
        optimizer = model.optimizer
    else:
        from_logits = not _output_is_probability(model)
        optimizer = keras.optimizers.Adam()
    loss_class = (
        keras.losses.CategoricalCrossentropy
        if one_hot_labels
        else keras.losses.SparseCategoricalCrossentropy
    )
    model.compile(optimizer=optimizer, loss=loss_class(from_logits=from_logits))
    return model


TAU_METRIC = "tau"  # a trial's tuned post-hoc tau, reported to Keras Tuner beside the score


def scored_epochs(epochs: int) -> int:
    """How many last epochs a score averages: a quarter of them, 1 to 3."""
    return max(1, min(3, epochs // 4))


def trial_seed(seed, hp) -> int:
    """The seed of one trial: the search seed and the trial's values (not the trial order), so
    a trial trains the same way whichever trials ran before it."""
    values = json.dumps(hp.values, sort_keys=True, default=str)
    return (seed * 1_000_003 + zlib.crc32(values.encode())) % 2**31


@dataclasses.dataclass
class Evaluation:
    """The validation outcome of one configuration, scored on pooled out-of-fold predictions.

    Attributes:
        score: The objective, the mean over the last `scored_epochs` epochs.
        folds: How many folds were pooled.
        tau: The post-hoc logit adjustment's tau, tuned on the pooled predictions (None for
            strategies without one).
        labels: The labels of the pooled validation images.
        correct: Whether the last epoch predicted each of them right (bool array; None for
            the "loss" objective). Two configurations evaluated on the same folds are
            compared image by image from these (`selection`).
        confusion: The confusion matrix of the last epoch's pooled predictions (rows: true
            class, columns: predicted) as nested lists for JSON, for the report.
        indices: The image (folder) index of each pooled prediction, in the order of `labels`.
        probabilities: (len(indices), classes) float32 class probabilities of the pooled
            predictions: each scored epoch's outputs after the imbalance strategy's `adjust`
            (not for the "loss" objective), softmax-normalized when they are logits, then
            averaged over the scored epochs (a mean of snapshots is steadier for one image
            than the last epoch alone). `autoprep.search.label_review` looks for mislabeled
            images in them.
    """

    score: float
    folds: int
    tau: float = None
    labels: np.ndarray = None
    correct: np.ndarray = None
    confusion: list = None
    indices: np.ndarray = None
    probabilities: np.ndarray = dataclasses.field(default=None, repr=False)


class TrialMetrics(dict):
    """What `PipelineHyperModel.fit` returns: the metrics Keras Tuner records, and the trial's
    whole `Evaluation` (which `tuners` hands to the search's trial-end hook).

    Args:
        metrics: {metric name: value}.
        evaluation: The trial's `Evaluation`.
    """

    def __init__(self, metrics: dict, evaluation: Evaluation):
        super().__init__(metrics)
        self.evaluation = evaluation


class PipelineHyperModel(kt.HyperModel):
    """Searches the preprocessing space around the user's own model.

    A trial trains on each fold's training part for `epochs` and predicts the fold's
    validation images after each of the last few epochs; the predictions of all folds are
    pooled and scored once per epoch, and the trial's score is the mean over those epochs.
    The last epochs are scored, not the best one, because the exported module trains for a
    fixed number of epochs and keeps the last weights.

    Args:
        model_fn: `model_fn(input_shape, num_classes[, hp]) -> keras.Model`.
        folder: The decoded `ImageFolder`.
        splits: The `Splits` of the search: trials use their folds, `test_score` their
            development and test splits.
        space: The `SearchSpace`.
        objective: A name from `autoprep.objectives.OBJECTIVES`.
        batch_size: Training batch size.
        seed: Seeds every trial (see `trial_seed`) and the trial datasets.
        distribution_strategy: The `tf.distribute.Strategy` models are built under.
        device_input: Place the images on the device once and make each training batch in
            the training step (`autoprep.search.device_input`); a trial whose pipeline
            mixes labels uses tf.data, with a warning.

    Raises:
        ArgumentError: `device_input` with memory-mapped images or a distribution strategy.
    """

    def __init__(self, model_fn, folder, splits, space, *, objective, batch_size, seed=None,
                 distribution_strategy=None, device_input=False):
        super().__init__(name="autoprep")
        reason = device_input and device.refusal(None, folder.images,
                                                        distribution_strategy)
        if reason:
            raise ArgumentError(f"`device_input` cannot be used here: {reason}.")
        self.device_input = device_input
        self._device_images = None  # placed on the device at the first trial that reads it
        self.distribution_strategy = distribution_strategy
        self.model_fn = model_fn
        self.folder = folder
        self.splits = splits
        self.space = space
        self.objective = objective
        self.batch_size = batch_size
        self.seed = seed

    @property
    def num_classes(self) -> int:
        return len(self.folder.class_names)

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build(self, hp):
        return self.build_with(self.space.pipeline(hp), hp)

    def build_with(self, pipeline, hp):
        """The user's model, compiled for the labels `pipeline` yields."""
        model = call_model_fn(self.model_fn, self.folder.images.shape[1:], self.num_classes, hp)
        return ensure_compiled(model, one_hot_labels=pipeline.mix_op is not None)

    def seed_trial(self, hp):
        """Seeds Python, NumPy and Keras for the trial of `hp` (before its model is built)."""
        if self.seed is not None:
            keras.utils.set_random_seed(trial_seed(self.seed, hp))

    def fit(self, hp, model, *args, callbacks=(), epochs=1, verbose=0, **kwargs):
        """Keras Tuner's trial: the search's folds, fold 0 on the model Keras Tuner built.

        Returns:
            `TrialMetrics`: the score (and tau) for Keras Tuner, with the whole `Evaluation`.
        """
        seed = None if self.seed is None else trial_seed(self.seed, hp)
        evaluation = self.evaluate(
            self.space.pipeline(hp), hp, self.splits.folds, epochs=epochs, seed=seed,
            model=model, callbacks=kt_adapter.without_weight_checkpoints(callbacks, hp),
            verbose=verbose, **kwargs,
        )
        metrics = {log_name(self.objective): evaluation.score}
        if evaluation.tau is not None:
            metrics[TAU_METRIC] = evaluation.tau
        return TrialMetrics(metrics, evaluation)

    def evaluate(self, pipeline, hp, folds, *, epochs, seed=None, model=None, callbacks=(),
                 keep=None, tau=None, **kwargs) -> Evaluation:
        """Trains `pipeline` on each fold and scores the pooled out-of-fold predictions.

        Args:
            pipeline: The configuration (unfitted; it is cloned and fitted per fold).
            hp: The trial's hyperparameters (for the user's `model_fn`).
            folds: (train, validation) index pairs.
            epochs: Training epochs.
            seed: Seeds fold k's model and sampling with `seed + k` (None: unseeded). The
                augmentation layers are made once, before fold 0, and their random state runs
                on through the folds (each fold's draws are still fixed by `seed`).
            model: Fold 0's model when already built (by Keras Tuner); built here otherwise.
            callbacks: Extra Keras callbacks for fold 0.
            keep: How many last epochs are scored (default `scored_epochs(epochs)`).
            tau: A post-hoc logit adjustment's tau to apply; None tunes it on the pooled
                predictions of the scored epochs (no extra training).
        """
        initial = kwargs.get("initial_epoch", 0)
        keep = min(keep or scored_epochs(epochs - initial), epochs - initial)
        predictions, labels, indices, loss, fitted = [], [], [], None, None
        # Every fold's training dataset applies the same ops: traced once (tf.data reads).
        augmentation = None if self.device_input else pipeline.traced_augmentation()
        for fold, (train, val) in enumerate(folds):
            fold_seed = None if seed is None else seed + fold
            if model is None or fold > 0:
                if fold_seed is not None:
                    keras.utils.set_random_seed(fold_seed)
                with strategy_scope(self.distribution_strategy):
                    model = self.build_with(pipeline, hp)
            fitted = pipeline.clone()
            predictions.append(self.train_and_predict(
                model, fitted, train, val, epochs=epochs, seed=fold_seed, keep=keep,
                callbacks=list(callbacks) if fold == 0 else [], augmentation=augmentation,
                **kwargs,
            ))
            labels.append(self.folder.labels[val])
            indices.append(np.asarray(val))
            loss = model.loss
        labels = np.concatenate(labels)
        pooled = [np.concatenate([fold[epoch] for fold in predictions]) for epoch in range(keep)]
        strategy = fitted.imbalance  # the last fold's: a post-hoc adjustment is tuned once
        if self.objective != "loss":
            if tau is None:  # tunes tau_ on all scored epochs (other strategies: no-op)
                strategy.adjust(np.concatenate(pooled), np.tile(labels, keep), self.objective)
            elif hasattr(strategy, "tau_"):
                strategy.tau_ = tau
            pooled = [strategy.adjust(outputs) for outputs in pooled]
        scores = [self.score(outputs, labels, loss, pipeline) for outputs in pooled]
        tau = getattr(strategy, "tau_", None)
        correct = None
        if self.objective != "loss":
            correct = np.argmax(np.asarray(pooled[-1]), axis=-1) == labels
        from_logits = loss_description(loss)[1]
        return Evaluation(score=float(np.mean(scores)), folds=len(folds),
                          tau=None if tau is None else float(tau), labels=labels,
                          correct=correct,
                          confusion=confusion(labels, pooled[-1], self.num_classes),
                          indices=np.concatenate(indices),
                          probabilities=np.mean([as_probabilities(outputs, from_logits)
                                                 for outputs in pooled], axis=0))

    def score(self, predictions, labels, loss, pipeline) -> float:
        """The objective of pooled predictions (the compiled loss for the "loss" objective)."""
        if self.objective != "loss":
            return score_predictions(self.objective, labels, predictions)
        targets = _validation_labels(pipeline, labels, self.num_classes)
        return float(keras.ops.convert_to_numpy(
            keras.ops.mean(keras.losses.get(loss)(targets, predictions))
        ))

    def train_and_predict(self, model, pipeline, train, evaluate, *, epochs, seed, keep,
                          callbacks=(), verbose=0, augmentation=None, **kwargs) -> list:
        """Fits `pipeline` on the `train` indices, trains `model` for `epochs`, and returns its
        predictions for the `evaluate` indices after each of the last `keep` epochs.
        `augmentation`: the pipeline's `traced_augmentation()`, shared by a trial's folds.

        The one training function of autoprep: trials, re-evaluations and test scores.
        """
        images, labels = Subset(self.folder.images), self.folder.labels  # images[i]: no copy
        pipeline.fit(images[train], labels[train], self.num_classes)
        _prepare(model, pipeline)
        on_device = self._on_device(pipeline)
        train_ds, fit_kwargs = pipeline.train_dataset(
            images[train], labels[train], num_classes=self.num_classes,
            batch_size=self.batch_size, epochs=epochs, seed=seed, indices_only=on_device,
            augmentation=augmentation,
        )
        if on_device:  # the model of index batches, read and normalized in its step
            model = device.Trainer(model, device.DeviceBatches(
                self._device_images, normalize=pipeline.normalization,
                layers=pipeline.augmentation_layers()))
            eval_ds = tf.data.Dataset.from_tensor_slices(np.asarray(evaluate))
            eval_ds = eval_ds.batch(self.batch_size)
        else:
            eval_ds = pipeline.eval_dataset(images[evaluate], batch_size=self.batch_size)
        recorder = EpochPredictions(eval_ds, first_epoch=epochs - keep)
        callbacks = [recorder, keras.callbacks.TerminateOnNaN(), *callbacks,
                     *fit_kwargs.pop("callbacks", [])]
        with tf_adapter.custom_gradients_released():  # else the graph outlives the model
            history = model.fit(
                train_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, **fit_kwargs,
                **kwargs,
            )
        _check_finite(history)
        return recorder.predictions

    def _on_device(self, pipeline) -> bool:
        """Whether this trial reads its batches on the device (placing the images once)."""
        if not self.device_input:
            return False
        reason = device.refusal(pipeline, self.folder.images)
        if reason:
            warnings.warn(f"This trial reads its batches with tf.data: {reason}.", stacklevel=2)
            return False
        if self._device_images is None:
            self._device_images = device.place(self.folder.images)
        return True

    def test_evaluation(self, pipeline, hp, *, epochs, seed=None, tau=None) -> Evaluation:
        """Trains a fresh model with `pipeline` on the development split; scores the test
        split with the last epoch's weights (those an exported module keeps) and the tau
        chosen on validation (a post-hoc adjustment is never tuned on the test split)."""
        folds = [(self.splits.development, self.splits.test)]
        tau = 1.0 if tau is None else tau
        return self.evaluate(pipeline, hp, folds, epochs=epochs, seed=seed, keep=1, tau=tau)


def as_probabilities(outputs, from_logits: bool) -> np.ndarray:
    """Class probabilities (float32) of a model's outputs: as they are when the model outputs
    probabilities, else (logits, or outputs a post-hoc adjustment turned into logits) their
    softmax."""
    outputs = np.asarray(outputs, np.float64)
    rows = outputs.sum(axis=-1)
    if not from_logits and (outputs >= 0).all() and np.allclose(rows, 1.0, atol=1e-3):
        return outputs.astype(np.float32)
    exponents = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
    return (exponents / exponents.sum(axis=-1, keepdims=True)).astype(np.float32)


class EpochPredictions(keras.callbacks.Callback):
    """Keeps the model's predictions for a dataset after each epoch from `first_epoch` on.

    Args:
        dataset: Batches of normalized images (no labels needed).
        first_epoch: The first epoch (0-based) whose predictions are kept.
    """

    def __init__(self, dataset, *, first_epoch=0):
        super().__init__()
        self.dataset = dataset
        self.first_epoch = first_epoch
        self.predictions = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch >= self.first_epoch:
            self.predictions.append(np.asarray(self.model.predict(self.dataset, verbose=0)))


def _prepare(model, pipeline):
    """Lets the fitted pipeline's imbalance strategy ready the compiled model (e.g. its loss)."""
    pipeline.imbalance.prepare_model(model, from_logits=loss_description(model.loss)[1])


def _validation_labels(pipeline, labels, num_classes):
    if pipeline.mix_op is None:
        return labels
    return keras.utils.to_categorical(labels, num_classes)


def _check_finite(history):
    losses = history.history.get("loss", [])
    bad = [epoch for epoch, loss in enumerate(losses) if not math.isfinite(loss)]
    if bad:
        raise kt.errors.FailedTrialError(
            f"The training loss became {losses[bad[0]]} in epoch {bad[0] + 1}; "
            "this configuration diverges."
        )
