"""Validation objectives, scored on the predictions a trial keeps from its last epochs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autoprep import objectives
from autoprep.objectives import score_predictions
from autoprep.search.hypermodel import EpochPredictions, scored_epochs


def _majority_model():
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.build((None, 1))
    # Bias the model to always predict class 0, the majority.
    model.layers[-1].set_weights([np.zeros((1, 2)), np.array([5.0, 0.0])])
    return model


def test_objectives_reward_minority_classes():
    labels = np.array([0] * 8 + [1] * 2)
    callback = EpochPredictions(tf.data.Dataset.from_tensor_slices(np.zeros((10, 1))).batch(4))
    callback.set_model(_majority_model())
    callback.on_epoch_end(0, {})
    (predictions,) = callback.predictions
    assert score_predictions("accuracy", labels, predictions) == pytest.approx(0.8)
    assert score_predictions("balanced_accuracy", labels, predictions) == pytest.approx(0.5)
    assert score_predictions("macro_f1", labels, predictions) == pytest.approx(0.8 / 1.8,
                                                                               rel=1e-3)


def test_only_the_last_epochs_are_kept_and_nothing_is_logged():
    callback = EpochPredictions(tf.data.Dataset.from_tensor_slices(np.zeros((3, 1))).batch(4),
                                first_epoch=2)
    callback.set_model(_majority_model())
    logs = {}
    for epoch in range(4):
        callback.on_epoch_end(epoch, logs)
    assert len(callback.predictions) == 2 and logs == {}  # no best-epoch metric for Keras Tuner


@pytest.mark.parametrize("epochs, scored", [(1, 1), (2, 1), (8, 2), (12, 3), (40, 3)])
def test_the_score_averages_a_quarter_of_the_epochs_at_the_end(epochs, scored):
    assert scored_epochs(epochs) == scored


def test_best_and_ranked_follow_the_objectives_direction():
    assert objectives.direction("balanced_accuracy") == "max"
    assert objectives.direction("loss") == "min"
    records = [("a", 0.3), ("b", 0.1), ("c", 0.1), ("d", 0.3)]
    score = lambda record: record[1]  # noqa: E731
    assert objectives.best(records, "max", key=score) == ("a", 0.3)  # the first of equals
    assert objectives.best(records, "min", key=score) == ("b", 0.1)
    assert objectives.best([0.2, 0.7], objectives.direction("loss")) == 0.2
    assert [r[0] for r in objectives.ranked(records, "max", key=score)] == ["a", "d", "b", "c"]
    assert [r[0] for r in objectives.ranked(records, "min", key=score)] == ["b", "c", "a", "d"]
