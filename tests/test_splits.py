"""Stratified test / validation splits from scikit-learn, and their errors."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold

from autoprep.data.splits import make_splits
from autoprep.errors import ArgumentError, DataError

LABELS = np.repeat([0, 1, 2], [40, 30, 10])
NAMES = ["cat", "dog", "fox"]


def test_holdout_splits_are_disjoint_stratified_and_seeded():
    splits = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=3)
    (train, val), = splits.folds
    test = splits.test
    assert len(set(train) | set(val) | set(test)) == len(LABELS)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert len(test) == 20 and len(val) == 16
    assert np.bincount(LABELS[test]).tolist() == [10, 8, 2]
    assert np.bincount(LABELS[val]).tolist() == [8, 6, 2]
    again = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=3)
    np.testing.assert_array_equal(again.test, test)
    other = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=4)
    assert not np.array_equal(other.test, test)


def test_cv_makes_stratified_folds_outside_the_test_split():
    splits = make_splits(LABELS, NAMES, test_split=0.2, cv=4, seed=0)
    assert len(splits.folds) == 4
    validations = np.concatenate([val for _, val in splits.folds])
    assert sorted(validations.tolist()) == sorted(splits.development.tolist())
    assert not set(validations) & set(splits.test)
    for _, val in splits.folds:
        assert np.bincount(LABELS[val]).tolist() == [8, 6, 2]


def test_any_scikit_learn_splitter_is_accepted():
    splits = make_splits(LABELS, NAMES, test_split=0, cv=StratifiedKFold(2))
    assert len(splits.folds) == 2 and len(splits.test) == 0


def test_too_small_classes_are_named():
    labels = np.repeat([0, 1, 2], [40, 2, 1])
    with pytest.raises(DataError, match=r"at least 3 images.*'dog' \(2\), 'fox' \(1\)"):
        make_splits(labels, NAMES)


def test_cv_needs_more_images_per_class():
    labels = np.repeat([0, 1, 2], [40, 30, 4])
    with pytest.raises(DataError, match=r"at least 6 images.*'fox' \(4\)"):
        make_splits(labels, NAMES, cv=5)


def test_test_split_too_small_for_the_classes():
    labels = np.repeat([0, 1, 2], [40, 30, 10])
    with pytest.raises(DataError, match="each side needs at least one image per class"):
        make_splits(labels, NAMES, test_split=0.02)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"validation_split": 1.5}, r"`validation_split` must be in \(0, 1\). Received: "
                                    r"validation_split=1.5"),
        ({"validation_split": 0}, r"`validation_split` must be in \(0, 1\)"),
        ({"test_split": -0.1}, r"`test_split` must be in \[0, 1\)"),
        ({"validation_split": 0.5, "test_split": 0.5}, "must be below 1"),
        ({"cv": 1}, "`cv` must be None, an int >= 2"),
        ({"cv": "five"}, "`cv` must be None, an int >= 2 or a scikit-learn splitter"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ArgumentError, match=message):
        make_splits(LABELS, NAMES, **kwargs)
