"""Split: a stratified test split held out from the whole search, then validation folds.

All splitting is scikit-learn's; this module only checks the request against the class counts
first, so that an impossible split fails naming the classes that are too small.
"""

import dataclasses
import numbers

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from autoprep.errors import ArgumentError, DataError


@dataclasses.dataclass
class Splits:
    """Indices into an `ImageFolder`.

    Attributes:
        test: Held-out test indices (empty when `test_split=0`).
        folds: (train, validation) index pairs; one pair for a hold-out validation split.
    """

    test: np.ndarray
    folds: list

    @property
    def development(self) -> np.ndarray:
        """Every index outside the test split (the data a final model is trained on)."""
        train, validation = self.folds[0]
        return np.sort(np.concatenate([train, validation]))


def _check_fraction(name, value, *, allow_zero=False):
    low_ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, numbers.Real) or not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ArgumentError(f"`{name}` must be in {interval}. Received: {name}={value!r}")


def _make_cv(cv, seed):
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ArgumentError(f"`cv` must be None, an int >= 2 or a splitter. Received: cv={cv}")
        return StratifiedKFold(n_splits=int(cv), shuffle=True, random_state=seed)
    if hasattr(cv, "split") and hasattr(cv, "get_n_splits"):
        return cv
    raise ArgumentError(
        "`cv` must be None, an int >= 2 or a scikit-learn splitter (with `split` and "
        f"`get_n_splits`). Received: cv={cv!r}"
    )


def _check_class_counts(counts, class_names, needed, why):
    small = [f"{class_names[c]!r} ({n})" for c, n in enumerate(counts) if n < needed]
    if small:
        raise DataError(
            f"Each class needs at least {needed} images for {why}. Too small: {', '.join(small)}. "
            "Add images to these classes, remove them, or lower the split fractions / `cv`."
        )


def _stratified_holdout(labels, fraction, seed, class_names, what):
    n_out = int(np.ceil(fraction * len(labels)))
    n_classes = len(class_names)
    if n_out < n_classes or len(labels) - n_out < n_classes:
        raise DataError(
            f"A {what} split of {fraction} of {len(labels)} images gives {n_out} images for "
            f"{n_classes} classes; each side needs at least one image per class. "
            f"Change `{what}_split` or add images."
        )
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_out, random_state=seed)
    keep, out = next(splitter.split(np.zeros(len(labels)), labels))
    return np.sort(keep), np.sort(out)


def make_splits(
    labels, class_names, *, validation_split=0.2, test_split=0.2, cv=None, seed=None
) -> Splits:
    """Makes the stratified test split and the validation fold(s) of a search.

    Args:
        labels: int array, one label per image.
        class_names: Names of the classes, for error messages.
        validation_split: Fraction of all images used for validation (ignored with `cv`).
        test_split: Fraction of all images held out for the final test score; 0 for none.
        cv: None for one validation split; an int k for stratified k-fold on the images
            outside the test split; or any scikit-learn splitter.
        seed: Fixes every split.

    Returns:
        A `Splits`.

    Raises:
        ArgumentError: for out-of-range fractions or a bad `cv`.
        DataError: when a class has too few images for the requested splits (named).
    """
    labels = np.asarray(labels)
    _check_fraction("test_split", test_split, allow_zero=True)
    counts = np.bincount(labels, minlength=len(class_names))
    splitter = None if cv is None else _make_cv(cv, seed)
    n_folds = 1 if splitter is None else splitter.get_n_splits(np.zeros(len(labels)), labels)
    if splitter is None:
        _check_fraction("validation_split", validation_split)
        if validation_split + test_split >= 1:
            raise ArgumentError(
                "`validation_split + test_split` must be below 1 to leave training data. "
                f"Received: validation_split={validation_split}, test_split={test_split}"
            )
    needed = (2 if splitter is None else n_folds) + (1 if test_split > 0 else 0)
    _check_class_counts(counts, class_names, needed, "a training, validation and test split")
    if test_split > 0:
        development, test = _stratified_holdout(labels, test_split, seed, class_names, "test")
    else:
        development, test = np.arange(len(labels)), np.array([], dtype=int)
    dev_labels = labels[development]
    if splitter is None:
        fraction = validation_split / (1 - test_split)
        train, val = _stratified_holdout(dev_labels, fraction, seed, class_names, "validation")
        folds = [(development[train], development[val])]
    else:
        folds = [
            (development[np.sort(train)], development[np.sort(val)])
            for train, val in splitter.split(np.zeros(len(dev_labels)), dev_labels)
        ]
    return Splits(test=test, folds=folds)
