"""Pixel statistics from per-channel histograms equal the float computation on the pixels, and
need no float copy of the images."""

import tracemalloc

import numpy as np
import pytest

from autoprep.choices.normalization import NORMALIZATIONS
from autoprep.data import stats

PERCENTILES = [0, 10, 25, 50, 75, 90, 100]


@pytest.fixture(params=[(7, 5, 3, 3), (13, 4, 4, 1), (1, 1, 2, 3)])
def images(request):
    """uint8 images of odd sizes, channels with different centres, some heavily tied values."""
    rng = np.random.default_rng(sum(request.param))
    values = rng.normal([30, 128, 220][: request.param[-1]], 40, size=request.param)
    return np.clip(values, 0, 255).astype(np.uint8)


@pytest.fixture
def small_chunks(monkeypatch):
    """Several chunks even for a dozen tiny images."""
    monkeypatch.setattr(stats, "CHUNK_VALUES", 40)


def _pixels(images):
    return images.reshape(-1, images.shape[-1]).astype(np.float64)


def test_histograms_count_every_pixel_value_per_channel(images, small_chunks):
    counts = stats.channel_histograms(images)
    for channel in range(images.shape[-1]):
        expected = np.bincount(images[..., channel].ravel(), minlength=256)
        np.testing.assert_array_equal(counts[channel], expected)


def test_mean_and_std_match_the_float_computation(images, small_chunks):
    mean, std = stats.histogram_mean_std(stats.channel_histograms(images))
    np.testing.assert_allclose(mean, _pixels(images).mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(std, _pixels(images).std(axis=0), rtol=1e-9, atol=1e-12)


def test_percentiles_equal_numpy_percentile_exactly(images, small_chunks):
    result = stats.histogram_percentiles(stats.channel_histograms(images), PERCENTILES)
    np.testing.assert_array_equal(result, np.percentile(_pixels(images), PERCENTILES, axis=0))


def test_rejects_float_images():
    with pytest.raises(TypeError, match="Expected uint8 images. Received dtype float32"):
        stats.channel_histograms(np.zeros((2, 2, 2, 3), np.float32))


@pytest.mark.parametrize("name", ["per_channel", "robust"])
def test_fitting_a_normalization_makes_no_float_copy_of_the_images(name, monkeypatch):
    monkeypatch.setattr(stats, "CHUNK_VALUES", 1 << 14)
    images = np.random.default_rng(0).integers(0, 256, (400, 32, 32, 3), dtype=np.uint8)
    tracemalloc.start()
    try:
        NORMALIZATIONS.get(name)().fit(images)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # A float64 copy would be 8x the images (9.8 MB); one chunk widened by bincount is 128 kB.
    assert peak < images.nbytes / 4, f"peak {peak / 1e6:.1f} MB for {images.nbytes / 1e6} MB"


def test_subsample_draws_at_most_the_limit_sorted_and_seeded():
    indices = np.arange(10, 30)
    np.testing.assert_array_equal(stats.subsample(indices, 0, limit=20), indices)
    drawn = stats.subsample(indices, 3, limit=5)
    assert len(drawn) == 5 and set(drawn) <= set(indices) and list(drawn) == sorted(drawn)
    np.testing.assert_array_equal(drawn, stats.subsample(indices, 3, limit=5))
    assert len(stats.subsample(np.arange(stats.STATS_IMAGES + 1), 0)) == stats.STATS_IMAGES
