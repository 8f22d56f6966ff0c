"""A `Subset` names images by index without copying them; datasets and statistics built from
one equal those built from the copy `images[indices]`."""

import tracemalloc

import numpy as np
import pytest
from helpers import tiny_model, write_folder

from autoprep.choices.pipeline import Pipeline
from autoprep.data.subset import Subset


@pytest.fixture
def images(tmp_path):
    """40 memory-mapped 6x6 RGB images."""
    rng = np.random.default_rng(0)
    array = np.lib.format.open_memmap(tmp_path / "images.npy", mode="w+", dtype=np.uint8,
                                      shape=(40, 6, 6, 3))
    array[:] = rng.integers(0, 256, array.shape)
    return array


LABELS = np.arange(40) % 3
INDICES = np.random.default_rng(1).permutation(40)[:25]


def test_indexing_is_lazy_and_asarray_reads_the_images(images):
    subset = Subset(images)[INDICES]
    assert isinstance(subset, Subset) and subset.shape == (25, 6, 6, 3) and len(subset) == 25
    np.testing.assert_array_equal(np.asarray(subset), images[INDICES])
    np.testing.assert_array_equal(np.asarray(subset[3:7]), images[INDICES[3:7]])
    np.testing.assert_array_equal(subset[2], images[INDICES[2]])
    assert Subset.of(subset) is subset


@pytest.mark.parametrize("normalization", ["per_channel", "robust"])
def test_statistics_of_a_subset_equal_those_of_the_copy(images, normalization):
    from_subset = Pipeline(normalization=normalization).fit(Subset(images)[INDICES],
                                                            LABELS[INDICES], 3)
    from_copy = Pipeline(normalization=normalization).fit(images[INDICES], LABELS[INDICES], 3)
    assert from_subset.get_config() == from_copy.get_config()


@pytest.mark.parametrize("imbalance", ["none", "oversample"])
def test_datasets_of_a_subset_equal_those_of_the_copy(images, imbalance):
    def batches(source, labels):
        pipeline = Pipeline(normalization="rescale_01", imbalance=imbalance)
        pipeline.fit(source, labels, 3)
        train, _ = pipeline.train_dataset(source, labels, num_classes=3, batch_size=8,
                                          epochs=1, seed=0)
        evaluation = pipeline.eval_dataset(source, labels, batch_size=8)
        return [(x.numpy(), y.numpy()) for x, y in [*train, *evaluation]]

    from_subset = batches(Subset(images)[INDICES], LABELS[INDICES])
    from_copy = batches(images[INDICES], LABELS[INDICES])
    assert len(from_subset) == len(from_copy) == 8
    for (x1, y1), (x2, y2) in zip(from_subset, from_copy):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_building_datasets_from_a_subset_copies_no_images():
    images = np.zeros((1000, 96, 96, 3), np.uint8)  # 27.6 MB, a half of them named
    labels = np.arange(1000) % 2
    subset = Subset(images)[np.arange(0, 1000, 2)]
    pipeline = Pipeline(normalization="per_channel").fit(subset, labels[::2], 2)
    tracemalloc.start()
    try:
        pipeline.train_dataset(subset, labels[::2], num_classes=2, batch_size=8, epochs=1)
        pipeline.eval_dataset(subset, batch_size=8)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < images.nbytes / 8, f"{peak} bytes allocated"


class Recording(np.ndarray):
    """An image array that records the most images read by one index array or mask."""

    largest = 0

    def __getitem__(self, key):
        if isinstance(key, np.ndarray) and key.ndim == 1:
            count = int(key.sum()) if key.dtype == bool else len(key)
            Recording.largest = max(Recording.largest, count)
        return np.asarray(super().__getitem__(key))


@pytest.mark.slow
def test_a_search_reads_batches_and_chunks_never_a_split(tmp_path, monkeypatch):
    import autoprep
    from autoprep.data import stats
    from autoprep.search import loop

    read = loop.read_image_folder

    def recording_folder(*args, **kwargs):
        folder = read(*args, **kwargs)
        folder.images = folder.images.view(Recording)
        return folder

    monkeypatch.setattr(loop, "read_image_folder", recording_folder)
    monkeypatch.setattr(stats, "CHUNK_VALUES", 4 * 8 * 8)  # 4 images of 8x8x1 per chunk
    Recording.largest = 0
    data = write_folder(tmp_path / "data", [10, 10, 10])
    result = autoprep.tune(tiny_model, data, max_trials=1, epochs=1, tuner="random", seed=0,
                           batch_size=4, final_repeats=1, baseline=False, verbose=0,
                           directory=tmp_path / "runs",
                           space=autoprep.SearchSpace(normalization="per_channel", flip="none",
                                                      policy="none"))
    assert result.test_score is not None  # the trial and the test training both ran
    assert 0 < Recording.largest <= 4  # a batch or a chunk, never images[train] (18 images)
