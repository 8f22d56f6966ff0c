"""Every registered normalization does what it says, learns from training images only, and its
exported `normalize` source computes the same values as the live stage."""

import numpy as np
import pytest
import tensorflow as tf

from autoprep.choices.normalization import NORMALIZATIONS


def _per_image(images):
    flat = images.reshape(len(images), -1).astype(np.float64)
    mean = flat.mean(axis=1)
    std = np.maximum(flat.std(axis=1), 1.0 / np.sqrt(flat.shape[1]))
    return ((flat - mean[:, None]) / std[:, None]).reshape(images.shape)


def _quartiles(images):
    return np.percentile(images.reshape(-1, images.shape[-1]), [25, 50, 75], axis=0)


def _robust(train, images):
    low, median, high = _quartiles(train)
    return (images - median) / (high - low)


# What each method should compute on `images` once fitted on `train`, written with numpy alone.
REFERENCES = {
    "none": lambda train, images: images.astype(np.float64),
    "rescale_01": lambda train, images: images / 255.0,
    "rescale_pm1": lambda train, images: images / 127.5 - 1.0,
    "per_channel": lambda train, images: (
        (images - train.mean(axis=(0, 1, 2))) / train.std(axis=(0, 1, 2))
    ),
    "per_image": lambda train, images: _per_image(images),
    "robust": _robust,
    # A backbone's own conventions (keras.applications' preprocess_input modes).
    "rescale_128": lambda train, images: images / 128.0 - 1.0,
    "caffe_bgr": lambda train, images: images[..., ::-1] - [103.939, 116.779, 123.68],
    "torch_imagenet": lambda train, images: (
        (images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    ),
}
LEARNED = {"per_channel": {"mean_", "std_"}, "robust": {"median_", "iqr_"}}


@pytest.fixture
def train_images():
    """Twelve 4x4 RGB images whose channels have different centres and spreads."""
    rng = np.random.default_rng(0)
    centres, spreads = np.array([40, 120, 200]), np.array([10, 30, 50])
    values = rng.normal(centres, spreads, size=(12, 4, 4, 3))
    return np.clip(values, 0, 255).astype(np.uint8)


@pytest.fixture
def other_images():
    """Images from a very different distribution (e.g. the validation split)."""
    rng = np.random.default_rng(1)
    return rng.integers(200, 256, size=(5, 4, 4, 3), dtype=np.uint8)


def fitted(name, images):
    return NORMALIZATIONS.get(name)().fit(images)


@pytest.mark.parametrize("name", NORMALIZATIONS.names())
def test_matches_numpy_reference_with_training_statistics(name, train_images, other_images):
    normalization = fitted(name, train_images)
    output = normalization(other_images)
    assert output.dtype == tf.float32
    expected = REFERENCES[name](train_images.astype(np.float64), other_images.astype(np.float64))
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", NORMALIZATIONS.names())
def test_learns_constants_only_from_the_array_given_to_fit(name, train_images, other_images):
    normalization = fitted(name, train_images)
    constants = normalization.get_config()
    assert {k for k in constants if k.endswith("_")} == LEARNED.get(name, set())
    normalization(other_images)  # using the stage on other images learns nothing
    assert normalization.get_config() == constants
    assert fitted(name, train_images.copy()).get_config() == constants
    if name in LEARNED:
        both = np.concatenate([train_images, other_images])
        assert fitted(name, both).get_config() != constants


def test_none_keeps_raw_pixel_values():
    images = np.array([0, 1, 128, 255], np.uint8).reshape(1, 2, 2, 1)
    output = fitted("none", images)(images)
    assert output.dtype == tf.float32
    assert output.numpy().ravel().tolist() == [0.0, 1.0, 128.0, 255.0]


@pytest.mark.parametrize(
    "name, low, high", [("rescale_01", 0.0, 1.0), ("rescale_pm1", -1.0, 1.0)]
)
def test_rescaling_maps_0_and_255_to_the_ends_of_its_range(name, low, high):
    images = np.array([0, 51, 204, 255], np.uint8).reshape(1, 2, 2, 1)
    output = fitted(name, images)(images).numpy().ravel()
    np.testing.assert_allclose(output, low + (high - low) * np.array([0, 0.2, 0.8, 1]), atol=1e-6)


def test_per_channel_standardizes_the_training_images(train_images):
    output = fitted("per_channel", train_images)(train_images).numpy()
    np.testing.assert_allclose(output.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(output.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_per_channel_constant_channel_does_not_divide_by_zero():
    images = np.full((3, 4, 4, 1), 7, np.uint8)
    output = fitted("per_channel", images)(images).numpy()
    assert np.all(output == 0.0)


def test_per_image_standardizes_each_image(train_images):
    output = fitted("per_image", train_images)(train_images).numpy()
    np.testing.assert_allclose(output.mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    np.testing.assert_allclose(output.std(axis=(1, 2, 3)), 1.0, atol=1e-3)


def test_robust_centres_on_training_median_and_scales_by_iqr(train_images):
    robust = fitted("robust", train_images)
    low, median, high = _quartiles(train_images)
    np.testing.assert_allclose(robust.median_, median)
    np.testing.assert_allclose(robust.iqr_, high - low)
    output_low, output_median, output_high = _quartiles(robust(train_images).numpy())
    np.testing.assert_allclose(output_median, 0.0, atol=1e-5)
    np.testing.assert_allclose(output_high - output_low, 1.0, atol=1e-5)


def test_robust_falls_back_to_std_when_the_iqr_is_zero():
    images = np.full((4, 4, 4, 1), 10, np.uint8)
    images[0, 0, 0, 0] = 250  # one outlier: IQR 0, std > 0
    robust = fitted("robust", images)
    np.testing.assert_allclose(robust.iqr_, [images.std()])
    assert np.all(np.isfinite(robust(images).numpy()))


@pytest.mark.parametrize("name", NORMALIZATIONS.names())
def test_exported_normalize_agrees_with_live_stage(name, train_images, other_images):
    normalization = fitted(name, train_images)
    namespace = {"tf": tf}
    for source in [*normalization.module_sources(), normalization.source()]:
        exec(source, namespace)  # as the exported module defines them
    exported = namespace["normalize"](other_images, **normalization.constants)
    np.testing.assert_allclose(exported.numpy(), normalization(other_images).numpy(), rtol=1e-6)
    one_image = namespace["normalize"](other_images[0], **normalization.constants)
    np.testing.assert_allclose(one_image.numpy(), exported.numpy()[0], rtol=1e-6)


@pytest.mark.parametrize("name", ["caffe_bgr", "torch_imagenet"])
def test_backbone_conventions_keep_the_shape_of_gray_images(name):
    images = np.array([0, 64, 128, 255], np.uint8).reshape(1, 2, 2, 1)
    output = fitted(name, images)(images).numpy()
    assert output.shape == images.shape
    rgb = fitted(name, images)(np.repeat(images, 3, axis=-1)).numpy()
    np.testing.assert_allclose(output[..., 0], rgb.mean(axis=-1), atol=0.02)
