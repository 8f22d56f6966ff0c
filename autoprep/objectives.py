"""Objectives: scores of the pooled validation predictions of a trial's last epochs.

`hypermodel.PipelineHyperModel.evaluate` computes them (`score_predictions`) and reports the
trial's score to Keras Tuner under `log_name(objective)`, e.g. `val_balanced_accuracy`.
Balanced accuracy is the default: plain accuracy rewards a model that predicts only the
majority class.

Whether higher or lower scores are better is decided here and nowhere else: `direction`
names it, `best` and `ranked` apply it. The module sits at the bottom of the package (the
choices, the search, the report and the CLI all compare scores) and imports numpy and
scikit-learn only when a score is computed.
"""

from autoprep.errors import ArgumentError


# numpy and scikit-learn are imported on first use: the CLI lists these names without them.
def _balanced_accuracy(y_true, y_pred):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(y_true, y_pred)


def _macro_f1(y_true, y_pred):
    from sklearn.metrics import f1_score

    return f1_score(y_true, y_pred, average="macro", zero_division=0)


def _accuracy(y_true, y_pred):
    from sklearn.metrics import accuracy_score

    return accuracy_score(y_true, y_pred)


# name: (direction, metric(y_true, y_pred) or None when Keras computes it)
OBJECTIVES = {
    "balanced_accuracy": ("max", _balanced_accuracy),
    "macro_f1": ("max", _macro_f1),
    "accuracy": ("max", _accuracy),
    "loss": ("min", None),
}


def direction(objective: str) -> str:
    """"max" when higher scores of `objective` are better, "min" when lower are.

    A name this version does not know (a results.json edited or written by another version)
    counts as "max".
    """
    return OBJECTIVES.get(objective, ("max",))[0]


def sign(direction: str) -> int:
    """1 when higher scores are better (`direction` "max"), -1 when lower are ("min")."""
    return 1 if direction == "max" else -1


def best(items, direction: str, *, key=None):
    """The best of `items` under `direction` ("max" or "min"); the first of equals.

    Args:
        items: Scores, or objects whose score is `key(item)`.
        direction: "max" or "min", e.g. `direction(objective)`.
        key: The score of an item (default: the item itself).
    """
    key = key or _itself
    return max(items, key=lambda item: sign(direction) * key(item))


def ranked(items, direction: str, *, key=None) -> list:
    """`items` sorted best first under `direction`; equals keep their order (see `best`)."""
    key = key or _itself
    return sorted(items, key=lambda item: -sign(direction) * key(item))


def _itself(item):
    return item


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
    import numpy as np

    return float(OBJECTIVES[objective][1](y_true, np.argmax(probabilities, axis=-1)))


def confusion(y_true, probabilities, num_classes: int) -> list:
    """The confusion matrix (rows: true class, columns: predicted) as nested lists for JSON."""
    import numpy as np
    from sklearn.metrics import confusion_matrix

    predicted = np.argmax(probabilities, axis=-1)
    return confusion_matrix(y_true, predicted, labels=list(range(num_classes))).tolist()
