"""Stratified test / validation splits from scikit-learn, and their errors."""

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from autoprep.data.splits import make_splits
from autoprep.errors import ArgumentError, DataError

LABELS = np.repeat([0, 1, 2], [40, 30, 10])
NAMES = ["cat", "dog", "fox"]


def test_holdout_splits_are_disjoint_stratified_and_seeded():
    splits = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=3,
                         small_validation=0)
    (train, val), = splits.folds
    test = splits.test
    assert len(set(train) | set(val) | set(test)) == len(LABELS)
    assert not (set(train) & set(val) or set(train) & set(test) or set(val) & set(test))
    assert len(test) == 20 and len(val) == 16
    assert np.bincount(LABELS[test]).tolist() == [10, 8, 2]
    assert np.bincount(LABELS[val]).tolist() == [8, 6, 2]
    again = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=3,
                        small_validation=0)
    np.testing.assert_array_equal(again.test, test)
    other = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=4,
                        small_validation=0)
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


def test_development_is_every_image_outside_the_test_split_whatever_the_splitter():
    # Each fold of this splitter trains on 40% and validates on 20% of the development images:
    # the final model must still train on all of them, not on fold 0's 60%.
    splitter = StratifiedShuffleSplit(n_splits=2, train_size=0.4, test_size=0.2, random_state=0)
    splits = make_splits(LABELS, NAMES, test_split=0.25, cv=splitter, seed=0)
    outside_test = sorted(set(range(len(LABELS))) - set(splits.test.tolist()))
    assert splits.development.tolist() == outside_test
    train, val = splits.folds[0]
    assert len(train) + len(val) < len(outside_test)


def test_too_small_classes_are_named():
    labels = np.repeat([0, 1, 2], [40, 2, 1])
    with pytest.raises(DataError, match=r"at least 3 images.*'dog' \(2\), 'fox' \(1\)"):
        make_splits(labels, NAMES, small_validation=0)
    with pytest.raises(DataError, match=r"at least 2 images.*Too small: 'fox' \(1\)\. "):
        make_splits(labels, NAMES)


def test_a_small_validation_split_becomes_pooled_cross_validation():
    splits = make_splits(LABELS, NAMES, validation_split=0.2, test_split=0.25, seed=3)
    assert splits.method == "auto_cv" and len(splits.folds) == 3
    assert "'fox'" in splits.reason and splits.describe()["pooled"]
    validations = np.concatenate([val for _, val in splits.folds])
    assert sorted(validations.tolist()) == splits.development.tolist()  # each image once
    big = np.repeat([0, 1], [200, 150])
    assert make_splits(big, NAMES[:2], test_split=0.2).method == "holdout"


def test_a_class_of_three_images_with_cv_and_a_test_split():
    labels = np.repeat([0, 1, 2], [40, 30, 3])
    splits = make_splits(labels, NAMES, test_split=0.2, cv=3, seed=0)
    assert np.bincount(labels[splits.test], minlength=3)[2] >= 1
    validated = np.concatenate([val for _, val in splits.folds])
    assert sorted(validated.tolist()) == splits.development.tolist()
    for train, _ in splits.folds:
        assert 2 in labels[train]


def test_a_class_with_one_development_image_is_kept_in_training_with_a_warning():
    labels = np.repeat([0, 1, 2], [40, 30, 2])
    with pytest.warns(UserWarning, match="'fox'.*kept in training"):
        splits = make_splits(labels, NAMES, test_split=0.2, seed=0)
    assert splits.train_only == ["fox"]
    for train, val in splits.folds:
        assert 2 in labels[train] and 2 not in labels[val]


def test_reshuffled_folds_differ_and_cover_the_same_images():
    splits = make_splits(LABELS, NAMES, test_split=0.25, seed=3)
    again = splits.reshuffled(4)
    assert not np.array_equal(again[0][1], splits.folds[0][1])
    assert sorted(np.concatenate([v for _, v in again]).tolist()) == splits.development.tolist()


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
