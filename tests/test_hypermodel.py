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
