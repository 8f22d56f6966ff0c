"""Batches made in the training step match the trial's tf.data batches; refusals say why."""

import types

import keras
import numpy as np
import pytest
from helpers import tiny_model

from autoprep.choices.pipeline import Pipeline
from autoprep.data.subset import Subset
from autoprep.errors import ArgumentError
from autoprep.search import device_input
from autoprep.search.hypermodel import PipelineHyperModel, ensure_compiled

FOUR_OPS = [{"name": "flip", "mode": "horizontal"}, {"name": "rotation", "intensity": 0.1},
            {"name": "zoom", "intensity": 0.1}, {"name": "contrast", "intensity": 0.2}]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (48, 12, 12, 3), dtype=np.uint8)
    labels = np.array([0] * 24 + [1] * 16 + [2] * 8)
    return images, labels, np.arange(0, 48, 2)  # the training part: every other image


def _batches(pipeline, images, labels, train, *, indices_only):
    keras.utils.set_random_seed(3)
    dataset, _ = pipeline.train_dataset(Subset(images)[train], labels[train], num_classes=3,
                                        batch_size=5, epochs=4, seed=1,
                                        indices_only=indices_only)
    return list(dataset)


def _made_on_device(pipeline, images, batches, training=True):
    layer = device_input.DeviceBatches(device_input.place(images),
                                       normalize=pipeline.normalization,
                                       layers=pipeline.augmentation_layers())
    return [(layer(batch[0], training=training).numpy(), *batch[1:]) for batch in batches]


@pytest.mark.parametrize("imbalance", ["oversample", "deferred_reweighting"])
def test_without_augmentation_the_device_batches_are_the_tf_data_batches(data, imbalance):
    images, labels, train = data
    pipeline = Pipeline(normalization="per_channel", imbalance=imbalance).fit(
        Subset(images)[train], labels[train], 3)
    expected = _batches(pipeline, images, labels, train, indices_only=False)
    indices = _batches(pipeline, images, labels, train, indices_only=True)
    made = _made_on_device(pipeline, images, indices)
    assert len(made) == len(expected) == 5
    for mine, theirs in zip(made, expected):
        assert len(mine) == len(theirs)  # sample weights in both or neither
        for part, (a, b) in enumerate(zip(mine, theirs)):
            np.testing.assert_allclose(a, np.asarray(b), rtol=1e-6, err_msg=f"part {part}")


def test_augmentation_changes_the_images_as_much_as_on_tf_data(data):
    images, labels, train = data
    plain = Pipeline(normalization="rescale_01").fit(Subset(images)[train], labels[train], 3)
    augmented = Pipeline(normalization="rescale_01", augmentation=FOUR_OPS).fit(
        Subset(images)[train], labels[train], 3)
    indices = _batches(plain, images, labels, train, indices_only=True)
    unchanged = np.concatenate([b[0] for b in _made_on_device(plain, images, indices)])
    on_device = np.concatenate([b[0] for b in _made_on_device(augmented, images, indices)])
    tf_data = np.concatenate(
        [b[0] for b in _batches(augmented, images, labels, train, indices_only=False)])
    device_change = np.abs(on_device - unchanged).mean()
    tf_data_change = np.abs(tf_data - unchanged).mean()  # the same sampled images, seed 1
    assert device_change > 0 and 1 / 2 < device_change / tf_data_change < 2
    inference = np.concatenate(
        [b[0] for b in _made_on_device(augmented, images, indices, training=False)])
    np.testing.assert_allclose(inference, unchanged, rtol=1e-6)  # no augmentation there


def test_mixing_ops_memory_maps_and_strategies_are_refused_with_the_reason(data, tmp_path):
    images, labels, train = data
    mixup = Pipeline(augmentation=[{"name": "mixup", "intensity": 0.2}])
    assert "mixup mixes labels" in device_input.refusal(mixup, images)
    with pytest.raises(ArgumentError, match="mixup mixes them"):
        mixup.train_dataset(images, labels, num_classes=3, batch_size=4, epochs=1,
                            indices_only=True)
    mapped = np.lib.format.open_memmap(tmp_path / "x.npy", "w+", np.uint8, images.shape)
    folder = types.SimpleNamespace(images=mapped, labels=labels, class_names=list("abc"))
    with pytest.raises(ArgumentError, match="`device_input` cannot.*memory-mapped"):
        PipelineHyperModel(None, folder, None, None, objective="balanced_accuracy",
                           batch_size=4, device_input=True)
    assert "distribution strategy" in device_input.refusal(None, images, object())
    folder.images = images
    hypermodel = PipelineHyperModel(None, folder, None, None, objective="balanced_accuracy",
                                    batch_size=4, device_input=True)
    with pytest.warns(UserWarning, match="reads its batches with tf.data: mixup mixes"):
        assert not hypermodel._on_device(mixup)
    assert device_input.refusal(Pipeline(augmentation=FOUR_OPS), images) is None


def test_a_trial_on_the_device_trains_the_users_model_with_class_weights(data):
    images, labels, train = data
    folder = types.SimpleNamespace(images=images, labels=labels, class_names=list("abc"))
    hypermodel = PipelineHyperModel(None, folder, None, None, objective="balanced_accuracy",
                                    batch_size=8, seed=0, device_input=True)
    keras.utils.set_random_seed(0)
    model = ensure_compiled(tiny_model(images.shape[1:], 3), one_hot_labels=False)
    before = [w.copy() for w in model.get_weights()]
    pipeline = Pipeline(normalization="per_channel", augmentation=FOUR_OPS[:1],
                        imbalance="inverse_frequency")
    evaluate = np.arange(1, 48, 2)
    predictions = hypermodel.train_and_predict(model, pipeline, train, evaluate, epochs=2,
                                               seed=0, keep=2)
    assert hypermodel._device_images is not None  # placed once, at the first such trial
    assert [p.shape for p in predictions] == [(24, 3), (24, 3)]
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    normalized = pipeline.normalization(images[evaluate]).numpy()  # the user's model alone
    np.testing.assert_allclose(model.predict(normalized, verbose=0), predictions[-1],
                               rtol=1e-4, atol=1e-5)


def test_the_trainers_checkpoint_loads_into_the_users_model(data, tmp_path):
    images, _, _ = data
    model = ensure_compiled(tiny_model(images.shape[1:], 3), one_hot_labels=False)
    batches = device_input.DeviceBatches(device_input.place(images),
                                         normalize=Pipeline().normalization)
    device_input.Trainer(model, batches).save_weights(tmp_path / "best.weights.h5")
    fresh = tiny_model(images.shape[1:], 3)  # as a later Hyperband round builds it
    fresh.load_weights(tmp_path / "best.weights.h5")
    for a, b in zip(fresh.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
