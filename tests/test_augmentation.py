"""Every registered augmentation op: off at intensity 0, changes training batches when on, never
touches evaluation batches, and its exported constructor call builds the same Keras layer."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from autoprep.choices.augmentation import (
    AUGMENTATIONS,
    FLIP_MODES,
    TracedAugmentation,
    augment,
)
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError

MIXERS = [name for name in AUGMENTATIONS if AUGMENTATIONS.get(name).mixes_labels]
PLAIN = [name for name in AUGMENTATIONS if name not in MIXERS]
INTENSITY_OPS = [name for name in AUGMENTATIONS if name != "flip"]


def active_op(name, intensity=None):
    """An op of `name` switched on (flip horizontally, others at a clear intensity)."""
    cls = AUGMENTATIONS.get(name)
    if name == "flip":
        return cls(mode="horizontal")
    return cls(intensity=min(0.3, cls.max_intensity) if intensity is None else intensity)


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


@pytest.fixture
def batch():
    """Sixteen asymmetric 8x8 RGB images with values well inside [0, 255], as float32."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(60, 190, 8)[None, None, :, None]
    noise = rng.normal(0, 8, size=(16, 8, 8, 3))
    return np.clip(ramp + noise + np.arange(8)[None, :, None, None], 0, 255).astype(np.float32)


@pytest.fixture
def labels():
    return np.arange(16) % 3


def run_op(op, images):
    output, _ = augment(tf.constant(images), None, op.build_layers())
    return output.numpy()


def mixed_batch(name, images, labels):
    one_hot = tf.one_hot(labels, 3)
    (mix,) = active_op(name, 1.0).build_layers()
    return augment(tf.constant(images), one_hot, [], mix)


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_intensity_zero_is_inactive_and_dropped_by_the_pipeline(name):
    off = AUGMENTATIONS.get(name)(**({"mode": "none"} if name == "flip" else {"intensity": 0.0}))
    assert not off.active
    assert active_op(name).active
    pipeline = Pipeline(augmentation=[off, active_op(name).get_config()])
    assert [op.get_config() for op in pipeline.augmentation] == [active_op(name).get_config()]


@pytest.mark.parametrize("name", PLAIN)
def test_active_op_changes_a_batch_and_keeps_its_shape(name, batch):
    output = run_op(active_op(name), batch)
    assert output.shape == batch.shape
    changed = np.abs(output - batch).max(axis=(1, 2, 3)) > 1.0
    assert changed.mean() >= 0.5, f"{name} changed only {changed.sum()} of {len(batch)} images"


@pytest.mark.parametrize(
    "mode, axes",
    [
        ("horizontal", [(), (2,)]),
        ("vertical", [(), (1,)]),
        # Each axis flips independently (Keras' own "horizontal_and_vertical" mode would only
        # ever turn an image by 180 degrees).
        ("horizontal_and_vertical", [(), (1,), (2,), (1, 2)]),
    ],
)
def test_flip_output_is_each_image_or_its_mirror(mode, axes, batch):
    output = run_op(AUGMENTATIONS.get("flip")(mode=mode), batch)
    candidates = [[np.flip(image, axis=[a - 1 for a in axis]) for axis in axes] for image in batch]
    matched = [
        next(i for i, candidate in enumerate(options) if np.array_equal(candidate, out))
        for options, out in zip(candidates, output)
    ]
    assert set(matched) == set(range(len(axes)))  # every variant occurs among 16 images


def test_brightness_shifts_every_pixel_of_an_image_by_the_same_amount(batch):
    assert batch.min() > 0.1 * 255 and batch.max() < 255 - 0.1 * 255  # no clipping
    shift = run_op(active_op("brightness", 0.1), batch) - batch
    per_image = shift.mean(axis=(1, 2, 3))
    uniform = np.broadcast_to(per_image[:, None, None, None], shift.shape)
    np.testing.assert_allclose(shift, uniform, atol=1e-3)
    assert np.all(np.abs(per_image) <= 0.1 * 255 + 1e-3)
    assert np.std(per_image) > 1.0


def test_contrast_keeps_the_mean_and_scales_the_spread(batch):
    output = run_op(active_op("contrast", 0.4), batch)
    np.testing.assert_allclose(output.mean(axis=(1, 2)), batch.mean(axis=(1, 2)), atol=0.5)
    ratio = output.std(axis=(1, 2)) / batch.std(axis=(1, 2))
    assert np.all((ratio >= 0.6 - 1e-3) & (ratio <= 1.4 + 1e-3))
    assert ratio.min() < 0.9 and ratio.max() > 1.1, "contrast must go both ways"


@pytest.mark.parametrize("name", ["rotation", "zoom", "translation"])
def test_geometric_ops_move_pixels_and_fill_with_zeros(name, batch):
    output = run_op(active_op(name), batch)
    assert np.abs(output - batch).mean() > 5.0
    assert (output == 0).any() and not (batch == 0).any()


@pytest.mark.parametrize("name", MIXERS)
def test_label_mixing_ops_mix_labels_into_distributions(name, batch, labels):
    images, mixed = mixed_batch(name, batch, labels)
    mixed = mixed.numpy()
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(mixed >= -1e-6)
    assert not np.all(np.isin(mixed, [0.0, 1.0])), "no label was mixed"
    assert not np.allclose(images.numpy(), batch)


def test_cutmix_pastes_pixels_from_other_images_of_the_batch(batch, labels):
    images, _ = mixed_batch("cutmix", batch, labels)
    images = images.numpy()
    from_self = images == batch
    from_some_image = (images[:, None] == batch[None]).any(axis=1)
    assert from_some_image.all()
    assert not from_self.all()


def test_mixup_blends_whole_images(batch, labels):
    images, mixed = mixed_batch("mixup", batch, labels)
    changed = np.abs(images.numpy() - batch).max(axis=(1, 2, 3)) > 1.0
    assert changed.any()
    assert mixed.shape == (len(batch), 3)


@pytest.fixture
def augmenting_pipeline():
    ops = [active_op(name).get_config() for name in PLAIN] + [active_op("mixup").get_config()]
    return Pipeline(normalization="rescale_01", augmentation=ops)


def test_training_batches_are_augmented_and_evaluation_batches_never(
    augmenting_pipeline, batch, labels
):
    images = batch.astype(np.uint8)
    first, second = (
        np.concatenate([x.numpy() for x, _ in augmenting_pipeline.eval_dataset(images, labels)])
        for _ in range(2)
    )
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, images / 255.0, rtol=1e-6)
    train, _ = augmenting_pipeline.train_dataset(
        images, labels, num_classes=3, batch_size=16, epochs=1, seed=0
    )
    train_images, train_labels = next(iter(train))
    assert train_labels.shape == (16, 3)
    trained = np.sort(train_images.numpy().ravel())
    assert not np.allclose(trained, np.sort(first.ravel()), atol=1e-3)


@pytest.mark.parametrize("name", PLAIN)
def test_traced_augmentation_draws_what_the_layers_draw_called_one_by_one(name, batch):
    def layers():
        keras.utils.set_random_seed(7)
        return active_op(name).build_layers() + active_op("flip").build_layers()

    direct, _ = augment(tf.constant(batch), None, layers())
    traced = TracedAugmentation(layers())
    output = traced(tf.constant(batch)).numpy()
    assert output.shape == batch.shape and not np.allclose(output, batch)
    if not AUGMENTATIONS.get(name).policy:  # a policy picks its ops with TensorFlow's op seeds:
        # those of a graph are not those of eager calls, so only the seed generators match
        np.testing.assert_allclose(output, direct.numpy(), atol=1e-4)
    np.testing.assert_array_equal(traced(tf.constant(batch), training=False).numpy(), batch)


def test_training_datasets_sharing_a_traced_augmentation_trace_it_once(batch, labels):
    pipeline = Pipeline(augmentation=[active_op("rotation"), active_op("flip")])
    traced = pipeline.traced_augmentation()
    images = batch.astype(np.uint8)
    for seed in range(3):
        train, _ = pipeline.clone().train_dataset(images, labels, num_classes=3, batch_size=16,
                                                  epochs=1, seed=seed, augmentation=traced)
        augmented, _ = next(iter(train))
        assert augmented.shape == images.shape
    assert traced._traced.experimental_get_tracing_count() == 1
    assert Pipeline().traced_augmentation() is None


@pytest.mark.parametrize("name", AUGMENTATIONS.names())
def test_exported_layer_matches_live_layer(name):
    op = active_op(name)
    namespace = {"tf": tf}
    for definition in op.module_sources():  # classes the exported module defines
        exec(definition, namespace)
    exported = [eval(source, namespace) for source in op.sources()]
    live = op.build_layers()
    assert [type(layer).__name__ for layer in exported] == [type(layer).__name__ for layer in live]

    def settings(layer):
        config = {k: v for k, v in layer.get_config().items() if k not in ("name", "seed")}
        return config | {"ops": [settings(op) for op in getattr(layer, "ops", [])]}

    assert [settings(layer) for layer in exported] == [settings(layer) for layer in live]


@pytest.mark.parametrize("name", INTENSITY_OPS)
@pytest.mark.parametrize("offset", [-0.1, 0.1])
def test_out_of_range_intensity_is_rejected(name, offset):
    cls = AUGMENTATIONS.get(name)
    intensity = 0.0 + offset if offset < 0 else cls.max_intensity + offset
    message = rf"`{name}` intensity must be in \[0, {cls.max_intensity}\]"
    with pytest.raises(ArgumentError, match=message):
        cls(intensity=intensity).validate()
    with pytest.raises(ArgumentError, match=message):
        Pipeline(augmentation=[{"name": name, "intensity": intensity}])


def test_unknown_flip_mode_is_rejected():
    message = "`flip` must be one of none, .*horizontal_and_vertical. Received: flip='diagonal'"
    with pytest.raises(ArgumentError, match=message):
        AUGMENTATIONS.get("flip")(mode="diagonal").validate()
    for mode in FLIP_MODES:
        AUGMENTATIONS.get("flip")(mode=mode).validate()
