"""The Keras Tuner HyperModel: the user's model, trained on the trial's preprocessing pipeline.

`build(hp)` declares the preprocessing search space and calls the user's `model_fn` (passing
`hp` when it accepts one, so users can co-tune their own hyperparameters). `fit(hp, model)`
fits the trial's pipeline on the training split only, trains, and reports the validation
objective, averaged over folds when cross-validating.
"""

import contextlib
import functools
import inspect
import math

import keras
import keras_tuner as kt
import numpy as np

from autoprep.data.subset import Subset
from autoprep.errors import ModelError
from autoprep.search.objectives import OBJECTIVES, confusion, log_name, score_predictions


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


class PipelineHyperModel(kt.HyperModel):
    """Searches the preprocessing space around the user's own model.

    Args:
        model_fn: `model_fn(input_shape, num_classes[, hp]) -> keras.Model`.
        folder: The decoded `ImageFolder`.
        splits: The `Splits` of the search: trials use their folds, `test_score` their
            development and test splits.
        space: The `SearchSpace`.
        objective: A name from `autoprep.objectives.OBJECTIVES`.
        batch_size: Training batch size.
        seed: Seeds the trial datasets.
        distribution_strategy: The `tf.distribute.Strategy` models are built under.
    """

    def __init__(self, model_fn, folder, splits, space, *, objective, batch_size, seed=None,
                 distribution_strategy=None):
        super().__init__(name="autoprep")
        self.distribution_strategy = distribution_strategy
        self.model_fn = model_fn
        self.folder = folder
        self.splits = splits
        self.space = space
        self.objective = objective
        self.batch_size = batch_size
        self.seed = seed
        # Confusion matrix of the last fit (at its best epoch, summed over folds) or test_score.
        self.last_confusion = None

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

    def fit(self, hp, model, *args, callbacks=(), epochs=1, verbose=0, **kwargs):
        pipeline = self.space.pipeline(hp)
        scores, history = [], None
        self.last_confusion = None
        for fold, (train, val) in enumerate(self.splits.folds):
            if fold > 0:  # Keras Tuner built fold 0's model under the strategy itself
                with strategy_scope(self.distribution_strategy):
                    model = self.build(hp)
            history = self.fit_fold(
                model, pipeline.clone(), train, val,
                callbacks=list(callbacks) if fold == 0 else [],
                epochs=epochs, verbose=verbose, **kwargs,
            )
            scores.append(best_epoch_value(history, self.objective))
            self._add_confusion(history.confusions[best_epoch(history, self.objective)])
        if len(self.splits.folds) == 1:
            return history
        return {log_name(self.objective): float(np.mean(scores))}

    def fit_fold(self, model, pipeline, train, val, *, callbacks, epochs, verbose, **kwargs):
        """Fits `pipeline` on the training indices and trains `model`; returns the History."""
        images, labels = Subset(self.folder.images), self.folder.labels  # images[i]: no copy
        pipeline.fit(images[train], labels[train], self.num_classes)
        _prepare(model, pipeline)
        train_ds, fit_kwargs = pipeline.train_dataset(
            images[train], labels[train], num_classes=self.num_classes,
            batch_size=self.batch_size, epochs=epochs, seed=self.seed,
        )
        val_ds = pipeline.eval_dataset(images[val], batch_size=self.batch_size)
        # A post-hoc strategy tunes its tau on these predictions (no extra training).
        adjust = functools.partial(pipeline.imbalance.adjust, objective=self.objective)
        metrics = ValidationMetrics(val_ds, labels[val], self.num_classes, adjust=adjust)
        callbacks = [
            metrics,
            keras.callbacks.TerminateOnNaN(),
            *callbacks,
        ]
        callbacks += fit_kwargs.pop("callbacks", [])
        if self.objective == "loss":
            kwargs["validation_data"] = pipeline.eval_dataset(
                images[val], _validation_labels(pipeline, labels[val], self.num_classes),
                batch_size=self.batch_size,
            )
        history = model.fit(
            train_ds, epochs=epochs, callbacks=callbacks, verbose=verbose, shuffle=False,
            **fit_kwargs, **kwargs,
        )
        _check_finite(history)
        history.confusions = metrics.confusions
        return history

    def _add_confusion(self, matrix):
        if self.last_confusion is None:
            self.last_confusion = matrix
        else:
            self.last_confusion = (np.asarray(self.last_confusion) + matrix).tolist()


    def test_score(self, pipeline, hp, *, epochs, seed=None) -> float:
        """Trains a fresh model with `pipeline` on the development split; scores the test split."""
        self.last_confusion = None
        if seed is not None:
            keras.utils.set_random_seed(seed)
        with strategy_scope(self.distribution_strategy):
            model = self.build_with(pipeline, hp)
        train, test = self.splits.development, self.splits.test
        images, labels = Subset(self.folder.images), self.folder.labels  # images[i]: no copy
        pipeline.fit(images[train], labels[train], self.num_classes)
        _prepare(model, pipeline)
        train_ds, fit_kwargs = pipeline.train_dataset(
            images[train], labels[train], num_classes=self.num_classes,
            batch_size=self.batch_size, epochs=epochs, seed=seed,
        )
        model.fit(train_ds, epochs=epochs, verbose=0, shuffle=False, **fit_kwargs)
        if self.objective == "loss":
            test_ds = pipeline.eval_dataset(
                images[test], _validation_labels(pipeline, labels[test], self.num_classes),
                batch_size=self.batch_size,
            )
            return float(model.evaluate(test_ds, verbose=0, return_dict=True)["loss"])
        test_ds = pipeline.eval_dataset(images[test], batch_size=self.batch_size)
        predictions = pipeline.imbalance.adjust(model.predict(test_ds, verbose=0))
        self.last_confusion = confusion(labels[test], predictions, self.num_classes)
        return score_predictions(self.objective, labels[test], predictions)


class ValidationMetrics(keras.callbacks.Callback):
    """Adds the validation objectives to the epoch logs.

    Args:
        dataset: Batches of normalized validation images (no labels needed).
        labels: Integer labels of the validation images, in dataset order.
        num_classes: Number of classes; `confusions` holds one confusion matrix per epoch.
        adjust: `adjust(predictions, labels)` -> the predictions to score (the imbalance
            strategy's post-hoc adjustment, tuned on these labels), or None.
    """

    def __init__(self, dataset, labels, num_classes=None, adjust=None):
        super().__init__()
        self.dataset = dataset
        self.labels = np.asarray(labels)
        self.num_classes = num_classes
        self.adjust = adjust
        self.confusions = []

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        predictions = self.model.predict(self.dataset, verbose=0)
        if self.adjust is not None:
            predictions = self.adjust(predictions, self.labels)
        if self.num_classes is not None:
            self.confusions.append(confusion(self.labels, predictions, self.num_classes))
        for name, (_, metric) in OBJECTIVES.items():
            if metric is not None:
                logs[log_name(name)] = score_predictions(name, self.labels, predictions)


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


def best_epoch(history, objective: str) -> int:
    """The index of the epoch with the best value of the objective in a History (the first)."""
    values = history.history[log_name(objective)]
    pick = np.argmax if OBJECTIVES[objective][0] == "max" else np.argmin
    return int(pick(values))


def best_epoch_value(history, objective: str) -> float:
    """The best value of the objective over the epochs of a History."""
    return float(history.history[log_name(objective)][best_epoch(history, objective)])
