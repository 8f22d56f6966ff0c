"""Validation objectives written into the epoch logs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autoprep.search.hypermodel import ValidationMetrics


def test_validation_metrics_reward_minority_classes():
    labels = np.array([0] * 8 + [1] * 2)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(2, activation="softmax")])
    model.build((None, 1))
    # Bias the model to always predict class 0, the majority.
    model.layers[-1].set_weights([np.zeros((1, 2)), np.array([5.0, 0.0])])
    callback = ValidationMetrics(
        tf.data.Dataset.from_tensor_slices(np.zeros((10, 1))).batch(4), labels
    )
    callback.set_model(model)
    logs = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_accuracy"] == pytest.approx(0.8)
    assert logs["val_balanced_accuracy"] == pytest.approx(0.5)
    assert logs["val_macro_f1"] == pytest.approx(0.8 / 1.8 * 2 / 2, rel=1e-3)
