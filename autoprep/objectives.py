"""Objectives: scores computed on the full validation split after every epoch.

`ValidationMetrics` writes `val_balanced_accuracy`, `val_macro_f1` and `val_accuracy` into the
epoch logs, so Keras Tuner (and the History) see them like any Keras metric. Balanced accuracy
is the default: plain accuracy rewards a model that predicts only the majority class.
"""

import keras
import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from autoprep.errors import ArgumentError


def _macro_f1(y_true, y_pred):
    return f1_score(y_true, y_pred, average="macro", zero_division=0)


# name: (direction, metric(y_true, y_pred) or None when Keras computes it)
OBJECTIVES = {
    "balanced_accuracy": ("max", balanced_accuracy_score),
    "macro_f1": ("max", _macro_f1),
    "accuracy": ("max", accuracy_score),
    "loss": ("min", None),
}


def check_objective(objective: str) -> str:
    if objective not in OBJECTIVES:
        raise ArgumentError(
            f"`objective` must be one of {', '.join(OBJECTIVES)}. Received: objective={objective!r}"
        )
    return objective


def log_name(objective: str) -> str:
    """The epoch-log key of an objective, e.g. `val_balanced_accuracy`."""
    return "val_" + objective


def score_predictions(objective: str, y_true, probabilities) -> float:
    """The objective of class probabilities (or logits) against integer labels."""
    return float(OBJECTIVES[objective][1](y_true, np.argmax(probabilities, axis=-1)))


class ValidationMetrics(keras.callbacks.Callback):
    """Adds the validation objectives to the epoch logs.

    Args:
        dataset: Batches of normalized validation images (no labels needed).
        labels: Integer labels of the validation images, in dataset order.
    """

    def __init__(self, dataset, labels):
        super().__init__()
        self.dataset = dataset
        self.labels = np.asarray(labels)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        predictions = self.model.predict(self.dataset, verbose=0)
        for name, (_, metric) in OBJECTIVES.items():
            if metric is not None:
                logs[log_name(name)] = score_predictions(name, self.labels, predictions)
