"""The exported module's own functions, tested where they are defined (autoprep.export.runtime)."""

import os

import numpy as np
import pytest
from helpers import write_folder

from autoprep.data.index import index_directory
from autoprep.export import runtime


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A folder of 3 classes with a hidden file, a hidden folder, a text file and a sub-folder."""
    root = write_folder(tmp_path / "data", [6, 4, 3])
    write_folder(tmp_path / "data" / "class_0" / "nested", [2])  # class_0/nested/class_0/...
    (tmp_path / "data" / "class_1" / ".hidden.png").write_bytes(b"")
    os.makedirs(tmp_path / "data" / "class_1" / ".cache")
    (tmp_path / "data" / "class_1" / ".cache" / "x.png").write_bytes(b"")
    (tmp_path / "data" / "class_2" / "notes.txt").write_text("not an image")
    monkeypatch.setattr(runtime, "CLASS_NAMES", ["class_0", "class_1", "class_2"])
    return root


def _relative(paths, root):
    return [os.path.relpath(p, root).replace(os.sep, "/") for p in paths]


def test_list_files_lists_what_the_library_indexes(folder, monkeypatch):
    index = index_directory(folder)
    paths, labels = runtime.list_files(folder)
    assert _relative(paths, folder) == index.paths
    assert labels == index.labels.tolist()
    assert "class_0/nested/class_0/img_000.png" in index.paths
    skipped = index.paths[3]
    monkeypatch.setattr(runtime, "SKIPPED_FILES", frozenset({skipped}))
    paths, _ = runtime.list_files(folder)
    assert _relative(paths, folder) == [p for p in index.paths if p != skipped]


def test_split_files_is_stratified_and_deterministic(folder):
    paths, labels = runtime.list_files(folder)  # 8, 4 and 3 files
    train, validation = runtime.split_files(paths, labels, validation_split=0.25, seed=3)
    assert [sum(y == c for _, y in validation) for c in range(3)] == [2, 1, 1]
    assert sorted(train + validation) == sorted(zip(paths, labels))
    again = runtime.split_files(paths, labels, validation_split=0.25, seed=3)
    other = runtime.split_files(paths, labels, validation_split=0.25, seed=4)
    assert again == (train, validation) and other != (train, validation)
    assert runtime.split_files(paths, labels, validation_split=0, seed=3)[1] == []


def test_make_datasets_decodes_batches_and_caches_to_files(folder, tmp_path):
    train_ds, val_ds = runtime.make_datasets(
        folder, validation_split=0.25, batch_size=4, seed=0, cache=str(tmp_path / "cache")
    )
    train = [(x.numpy(), y.numpy()) for x, y in train_ds]
    images = np.concatenate([x for x, _ in train])
    assert images.shape == (11, 8, 8, 1) and images.dtype == np.float32
    assert images.max() > 1  # the stand-in preprocess keeps 0-255
    assert sorted(np.concatenate([y for _, y in train]).tolist()) == [0] * 6 + [1] * 3 + [2] * 2
    assert sum(int(x.shape[0]) for x, _ in val_ds) == 4
    assert any(name.startswith("cache_train_0") for name in os.listdir(tmp_path))
    assert any(name.startswith("cache_val_eval") for name in os.listdir(tmp_path))


def test_make_train_dataset_decodes_once_into_memory_as_per_file_decoding_does(folder):
    paths, labels = runtime.list_files(folder)
    per_file = runtime.make_train_dataset(paths, labels, batch_size=4, seed=0, cache=False)
    expected = [(x.numpy(), y.numpy()) for _ in range(2) for x, y in per_file]
    in_memory = runtime.make_train_dataset(paths, labels, batch_size=4, seed=0, cache=True)
    for path in paths:
        os.remove(path)  # decoded once, when the dataset was made: no file is read again
    batches = [(x.numpy(), y.numpy()) for _ in range(2) for x, y in in_memory]
    assert len(batches) == len(expected) == 8
    for (images, labels_), (want_images, want_labels) in zip(batches, expected):
        np.testing.assert_array_equal(images, want_images)
        np.testing.assert_array_equal(labels_, want_labels)


def test_make_eval_dataset_without_labels_and_with_one_hot_labels(folder, monkeypatch):
    paths, labels = runtime.list_files(folder)
    images = next(iter(runtime.make_eval_dataset(paths, batch_size=20, cache=False)))
    assert images.shape == (15, 8, 8, 1)
    monkeypatch.setattr(runtime, "ONE_HOT_LABELS", True)
    _, one_hot = next(iter(runtime.make_eval_dataset(paths, labels, batch_size=20)))
    np.testing.assert_array_equal(np.argmax(one_hot, axis=1), labels)


def test_make_datasets_in_memory_gives_the_batches_of_per_file_decoding(folder):
    """cache=True decodes training and validation files in one pass into one tensor."""
    in_memory = runtime.make_datasets(folder, validation_split=0.25, batch_size=4, seed=0)
    per_file = runtime.make_datasets(folder, validation_split=0.25, batch_size=4, seed=0,
                                     cache=False)
    for got, expected in zip(in_memory, per_file):
        got = [(x.numpy(), y.numpy()) for _ in range(2) for x, y in got]
        expected = [(x.numpy(), y.numpy()) for _ in range(2) for x, y in expected]
        assert len(got) == len(expected) > 0
        for (images, labels), (want_images, want_labels) in zip(got, expected):
            np.testing.assert_array_equal(images, want_images)
            np.testing.assert_array_equal(labels, want_labels)
