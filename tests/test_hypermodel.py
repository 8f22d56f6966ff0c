"""Compiling the user's model for the labels a pipeline yields."""

import keras
from helpers import tiny_model

from autoprep.search.hypermodel import ensure_compiled


def test_uncompiled_models_get_a_matching_loss():
    probabilities = ensure_compiled(tiny_model((4, 4, 1), 3), one_hot_labels=False)
    assert isinstance(probabilities.loss, keras.losses.SparseCategoricalCrossentropy)
    assert probabilities.loss.get_config()["from_logits"] is False
    logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ensure_compiled(logits, one_hot_labels=False)
    assert logits.loss.get_config()["from_logits"] is True


def test_a_compiled_model_keeps_optimizer_and_logits_when_labels_are_mixed():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.SGD(0.5)
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    ensure_compiled(model, one_hot_labels=False)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    ensure_compiled(model, one_hot_labels=True)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"] is True and model.optimizer is optimizer


def test_validation_scores_are_computed_on_the_adjusted_predictions():
    import numpy as np

    from autoprep.search.hypermodel import ValidationMetrics

    labels = np.array([0] * 8 + [1] * 2)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    dataset = np.zeros((10, 2), np.float32)
    seen = []

    def adjust(predictions, truth):  # e.g. a post-hoc adjustment tuned on `truth`
        seen.append((predictions.shape, list(truth)))
        return np.tile([0.0, 1.0], (len(truth), 1))  # always class 1

    metrics = ValidationMetrics(dataset, labels, 2, adjust=adjust)
    metrics.set_model(model)
    logs = {}
    metrics.on_epoch_end(0, logs)
    assert seen == [((10, 2), list(labels))]
    assert logs["val_accuracy"] == 0.2 and logs["val_balanced_accuracy"] == 0.5
