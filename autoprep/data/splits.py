"""Split: a stratified test split held out from the whole search, then validation folds.

All splitting is scikit-learn's; this module checks the request against the class counts first,
so that an impossible split fails naming the classes that are too small. When one validation
split would leave a class with fewer than `SMALL_VALIDATION` validation images, the search
cross-validates instead (stratified k-fold whose out-of-fold predictions are pooled), so that
every development image is validated once. A class with fewer than two development images
cannot be validated: it stays in the training part of every fold, with a warning naming it.
"""

import dataclasses
import numbers
import warnings

import numpy as np
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from autoprep.errors import ArgumentError, DataError

SMALL_VALIDATION = 20  # fewer validation images in some class: cross-validate automatically
AUTO_FOLDS = 3


@dataclasses.dataclass
class Splits:
    """Indices into an `ImageFolder`.

    Attributes:
        test: Held-out test indices (empty when `test_split=0`).
        folds: (train, validation) index pairs; one pair for a hold-out validation split.
        development: Every index outside the test split, sorted (the images a final model is
            trained on). Default: every index of the folds.
        method: "holdout", "cv" (asked for) or "auto_cv" (chosen for a small validation split).
        reason: Why `auto_cv` was chosen, or "".
        train_only: Names of the classes kept in training only (too few images to validate).
    """

    test: np.ndarray
    folds: list
    development: np.ndarray = None
    method: str = "holdout"
    reason: str = ""
    train_only: list = dataclasses.field(default_factory=list)
    refold: object = dataclasses.field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.development is None:  # a custom splitter may leave images out of a fold
            self.development = np.unique(np.concatenate([np.concatenate(fold)
                                                         for fold in self.folds]))

    def reshuffled(self, seed) -> list:
        """Folds made the same way with another seed (the same folds for a custom splitter)."""
        return self.folds if self.refold is None else self.refold(seed)

    def describe(self) -> dict:
        """JSON-ready facts of the validation: method, folds, reason, train-only classes."""
        return {"method": self.method, "folds": len(self.folds), "pooled": len(self.folds) > 1,
                "reason": self.reason, "train_only_classes": list(self.train_only)}


def _check_fraction(name, value, *, allow_zero=False):
    low_ok = value >= 0 if allow_zero else value > 0
    if not isinstance(value, numbers.Real) or not (low_ok and value < 1):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ArgumentError(f"`{name}` must be in {interval}. Received: {name}={value!r}")


def _check_cv(cv):
    if cv is None or (hasattr(cv, "split") and hasattr(cv, "get_n_splits")):
        return cv
    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ArgumentError(f"`cv` must be None, an int >= 2 or a splitter. Received: cv={cv}")
        return int(cv)
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


def _kfold(development, dev_labels, n_folds, seed):
    """Stratified k-fold over the development indices; classes with fewer than 2 images (or
    fewer than the folds) are validated in fewer folds, and classes with one image not at all."""
    counts = np.bincount(dev_labels)
    alone = np.isin(dev_labels, np.flatnonzero(counts == 1))
    rest = np.flatnonzero(~alone)
    n_folds = min(n_folds, int(np.bincount(dev_labels[rest]).max()))
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # "The least populated class has only 2 members": expected
        warnings.simplefilter("ignore", UserWarning)
        pairs = list(splitter.split(np.zeros(len(rest)), dev_labels[rest]))
    kept = development[alone]
    return [
        (np.sort(np.concatenate([development[rest[train]], kept])), np.sort(development[rest[val]]))
        for train, val in pairs
    ]


def make_splits(
    labels, class_names, *, validation_split=0.2, test_split=0.2, cv=None, seed=None,
    small_validation=SMALL_VALIDATION,
) -> Splits:
    """Makes the stratified test split and the validation fold(s) of a search.

    Args:
        labels: int array, one label per image.
        class_names: Names of the classes, for error messages.
        validation_split: Fraction of all images used for validation (ignored with `cv`).
        test_split: Fraction of all images held out for the final test score; 0 for none.
        cv: None for one validation split (or `AUTO_FOLDS`-fold cross-validation when a
            class would get fewer than `small_validation` validation images); an int k for
            stratified k-fold on the images outside the test split; or any scikit-learn splitter.
        seed: Fixes every split.
        small_validation: See `cv`; 0 never cross-validates automatically.

    Returns:
        A `Splits`.

    Raises:
        ArgumentError: for out-of-range fractions or a bad `cv`.
        DataError: when a class has too few images for the requested splits (named).
    """
    labels = np.asarray(labels)
    _check_fraction("test_split", test_split, allow_zero=True)
    cv = _check_cv(cv)
    if cv is None:
        _check_fraction("validation_split", validation_split)
        if validation_split + test_split >= 1:
            raise ArgumentError(
                "`validation_split + test_split` must be below 1 to leave training data. "
                f"Received: validation_split={validation_split}, test_split={test_split}"
            )
    counts = np.bincount(labels, minlength=len(class_names))
    if isinstance(cv, int) or (cv is None and small_validation > 0):
        # k-fold (asked for, or automatic for such small classes) validates a small class in
        # fewer folds, or keeps it in training only
        needed = 2
    else:
        needed = (2 if cv is None else cv.get_n_splits(np.zeros(len(labels)), labels)) + (
            1 if test_split > 0 else 0)
    _check_class_counts(counts, class_names, needed, "a training, validation and test split"
                        if test_split > 0 else "a training and validation split")
    if test_split > 0:
        development, test = _stratified_holdout(labels, test_split, seed, class_names, "test")
    else:
        development, test = np.arange(len(labels)), np.array([], dtype=int)
    dev_labels = labels[development]
    if cv is None:
        fraction = validation_split / (1 - test_split)
        dev_counts = np.bincount(dev_labels, minlength=len(class_names))
        expected = np.floor(fraction * dev_counts)
        if expected.min() >= small_validation:
            def refold(fold_seed):
                train, val = _stratified_holdout(dev_labels, fraction, fold_seed, class_names,
                                                 "validation")
                return [(development[train], development[val])]

            return Splits(test=test, folds=refold(seed), development=development,
                          refold=refold)
        smallest = int(np.argmin(expected))
        count = int(expected[smallest])
        reason = (f"one validation split would hold {count} image{'' if count == 1 else 's'} "
                  f"of class {class_names[smallest]!r} (fewer than {small_validation})")
        method, cv = "auto_cv", AUTO_FOLDS
    else:
        method, reason = "cv", ""
    if not isinstance(cv, int):
        folds = [
            (development[np.sort(train)], development[np.sort(val)])
            for train, val in cv.split(np.zeros(len(dev_labels)), dev_labels)
        ]
        return Splits(test=test, folds=folds, development=development, method=method)

    def refold(fold_seed):
        return _kfold(development, dev_labels, cv, fold_seed)

    dev_counts = np.bincount(dev_labels, minlength=len(class_names))
    train_only = [class_names[c] for c in np.flatnonzero(dev_counts == 1)]
    if train_only:
        warnings.warn(
            f"Classes {', '.join(map(repr, train_only))} have one image outside the test split: "
            "they are kept in training and not validated. Add images to validate them.",
            stacklevel=2,
        )
    return Splits(test=test, folds=refold(seed), development=development, method=method,
                  reason=reason, train_only=train_only, refold=refold)
