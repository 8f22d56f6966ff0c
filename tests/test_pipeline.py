"""Pipeline: assembles the choices, learns from the training split only, builds training and
evaluation datasets, round-trips through JSON, and renders a module that is clean and safe."""

import ast
import json
import shutil
import subprocess

import numpy as np
import pytest
import tensorflow as tf

from autoprep.choices import IMBALANCE_STRATEGIES
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError
from autoprep.export.module import render_module

MALICIOUS = 'x"); __import__("os").system("touch pwned"); ("'
WEIGHTED = ["inverse_frequency", "sqrt_inverse", "effective_number"]


@pytest.fixture
def data():
    """Training and validation splits: 4x4 RGB uint8 images, labels 8:3:1 and 2:1:1."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 120, size=(12, 4, 4, 3), dtype=np.uint8)
    validation = rng.integers(150, 256, size=(4, 4, 4, 3), dtype=np.uint8)
    return train, np.array([0] * 8 + [1] * 3 + [2]), validation, np.array([0, 0, 1, 2])


def fitted_pipeline(data, **choices):
    train_images, train_labels, _, _ = data
    return Pipeline(**choices).fit(train_images, train_labels, num_classes=3)


def collect(dataset):
    """Concatenates each component of a dataset's batches."""
    batches = list(dataset)
    if not isinstance(batches[0], tuple):
        return np.concatenate([b.numpy() for b in batches])
    return tuple(np.concatenate([b[i].numpy() for b in batches]) for i in range(len(batches[0])))


def test_defaults_are_rescaling_no_augmentation_no_balancing():
    config = Pipeline().get_config()
    assert config == {
        "normalization": {"name": "rescale_01"},
        "augmentation": [],
        "imbalance": {"name": "none"},
    }


@pytest.mark.parametrize(
    "mixers", [["mixup", "cutmix"], ["cutmix", "mixup"], ["mixup", "mixup"]]
)
def test_two_label_mixing_ops_are_rejected(mixers):
    ops = [{"name": name, "intensity": 0.3} for name in mixers]
    with pytest.raises(ArgumentError, match=r"At most one label-mixing augmentation per pipeline"):
        Pipeline(augmentation=ops)
    Pipeline(augmentation=ops[:1] + [{"name": mixers[1], "intensity": 0.0}])  # inactive: fine


def test_fit_learns_from_the_training_split_only(data):
    train_images, _, validation, validation_labels = data
    pipeline = fitted_pipeline(data, normalization="per_channel", imbalance="inverse_frequency")
    before = pipeline.get_config()
    images, labels = collect(pipeline.eval_dataset(validation, validation_labels, batch_size=3))
    assert pipeline.get_config() == before
    mean = train_images.reshape(-1, 3).mean(axis=0)
    std = train_images.reshape(-1, 3).std(axis=0)
    np.testing.assert_allclose(images, (validation - mean) / std, rtol=1e-5)
    np.testing.assert_array_equal(labels, validation_labels)
    assert before["imbalance"]["class_weight_"][0] < before["imbalance"]["class_weight_"][2]


def test_eval_dataset_without_labels_yields_normalized_image_batches(data):
    _, _, validation, _ = data
    dataset = fitted_pipeline(data, normalization="rescale_pm1").eval_dataset(validation,
                                                                             batch_size=3)
    assert [tuple(batch.shape) for batch in dataset] == [(3, 4, 4, 3), (1, 4, 4, 3)]
    np.testing.assert_allclose(collect(dataset), validation / 127.5 - 1, rtol=1e-6)


def test_eval_dataset_is_never_augmented_even_with_every_op_on(data):
    _, _, validation, validation_labels = data
    ops = [{"name": "flip", "mode": "vertical"}, {"name": "cutmix", "intensity": 1.0}]
    ops += [{"name": n, "intensity": 0.4} for n in ("rotation", "zoom", "contrast", "brightness")]
    pipeline = fitted_pipeline(data, augmentation=ops)
    passes = [collect(pipeline.eval_dataset(validation, validation_labels)) for _ in range(2)]
    np.testing.assert_array_equal(passes[0][0], passes[1][0])
    np.testing.assert_allclose(passes[0][0], validation / 255.0, rtol=1e-6)


@pytest.mark.parametrize("mix", [None, "mixup"])
@pytest.mark.parametrize("imbalance", ["none", "deferred_reweighting"])
def test_train_dataset_elements(data, mix, imbalance):
    train_images, train_labels, _, _ = data
    ops = [] if mix is None else [{"name": mix, "intensity": 0.3}]
    pipeline = fitted_pipeline(data, normalization="per_image", augmentation=ops,
                               imbalance=imbalance)
    dataset, _ = pipeline.train_dataset(train_images, train_labels, num_classes=3, batch_size=5,
                                        epochs=2, seed=0)
    components = collect(dataset)
    assert components[0].shape == train_images.shape and components[0].dtype == np.float32
    np.testing.assert_allclose(components[0].mean(axis=(1, 2, 3)), 0.0, atol=1e-4)
    labels = components[1]
    if mix is None:
        assert sorted(labels.tolist()) == sorted(train_labels.tolist())
    else:
        assert labels.shape == (12, 3)
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)
    assert len(components) == (3 if imbalance == "deferred_reweighting" else 2)


@pytest.mark.parametrize("imbalance", IMBALANCE_STRATEGIES.names())
def test_fit_kwargs_hold_only_what_fit_accepts(data, imbalance):
    pipeline = fitted_pipeline(data, imbalance=imbalance)
    kwargs = pipeline.fit_kwargs(epochs=6, gate=tf.Variable(0.0))
    assert kwargs.pop("shuffle") is False  # the dataset shuffles: Keras would only warn
    if imbalance in WEIGHTED:
        weights = pipeline.imbalance.class_weight_
        assert kwargs == {"class_weight": {0: weights[0], 1: weights[1], 2: weights[2]}}
    elif imbalance == "deferred_reweighting":
        assert list(kwargs) == ["callbacks"] and kwargs["callbacks"][0].start_epoch == 3
    else:
        assert kwargs == {}
    assert eval(pipeline.fit_kwargs_source(epochs=6), {"DeferredReweighting": lambda g, **k: k,
                                                        "CLASS_WEIGHT_GATE": None}) == (
        {"shuffle": False, "callbacks": [{"start_epoch": 3}]}
        if imbalance == "deferred_reweighting" else {"shuffle": False, **kwargs}
    )


def test_config_round_trips_through_json_with_learned_constants(data):
    pipeline = fitted_pipeline(
        data,
        normalization="robust",
        augmentation=[{"name": "flip", "mode": "horizontal"}, {"name": "zoom", "intensity": 0.2},
                      {"name": "mixup", "intensity": 0.2}],
        imbalance={"name": "deferred_reweighting", "beta": 0.99, "start": 0.4},
    )
    config = pipeline.get_config()
    assert {"median_", "iqr_"} <= set(config["normalization"])
    assert "class_weight_" in config["imbalance"]
    rebuilt = Pipeline.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    _, _, validation, _ = data
    np.testing.assert_array_equal(collect(rebuilt.eval_dataset(validation)),
                                  collect(pipeline.eval_dataset(validation)))


def test_clone_keeps_the_choices_and_forgets_learned_values(data):
    pipeline = fitted_pipeline(data, normalization="per_channel", imbalance="sqrt_inverse")
    clone = pipeline.clone()
    assert clone.get_config() == {
        "normalization": {"name": "per_channel"},
        "augmentation": [],
        "imbalance": {"name": "sqrt_inverse"},
    }
    assert pipeline.get_config()["normalization"]["mean_"]


# -- the rendered module -------------------------------------------------------------------


def render(pipeline, class_names=("cat", "dog", "eel"), **kwargs):
    return render_module(pipeline, class_names=list(class_names), image_size=(4, 4), channels=3,
                         epochs=4, **kwargs)


RENDERED = [{"imbalance": name} for name in IMBALANCE_STRATEGIES.names()] + [
    {"normalization": "per_channel", "imbalance": "oversample",
     "augmentation": [{"name": "rotation", "intensity": 0.1}, {"name": "mixup", "intensity": 0.2}]}
]


@pytest.mark.parametrize(
    "choices", RENDERED, ids=[str(i) for i in range(len(RENDERED) - 1)] + ["mixup"]
)
def test_rendered_module_compiles_and_passes_ruff(data, tmp_path, choices):
    source = render(fitted_pipeline(data, **choices))
    compile(source, "pipeline.py", "exec")
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed")
    path = tmp_path / "pipeline.py"
    path.write_text(source)
    result = subprocess.run(["ruff", "check", "--isolated", str(path)], capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_module_agrees_with_the_pipeline_it_came_from(data):
    pipeline = fitted_pipeline(data, normalization="per_channel", imbalance="effective_number")
    namespace = {"__name__": "exported"}
    exec(render(pipeline), namespace)
    _, _, validation, _ = data
    np.testing.assert_allclose(namespace["preprocess"](validation).numpy(),
                               pipeline.normalization(validation).numpy(), rtol=1e-6)
    assert namespace["FIT_KWARGS"] == pipeline.fit_kwargs(epochs=4)
    assert namespace["CONFIG"] == pipeline.get_config()
    assert namespace["CLASS_NAMES"] == ["cat", "dog", "eel"]


def test_hostile_class_names_are_embedded_as_inert_literals(data, tmp_path, monkeypatch):
    hostile = [MALICIOUS, "it's", 'say "hi"\nnext line', "back\\slash"]
    pipeline = fitted_pipeline(data)
    source = render(pipeline, class_names=hostile,
                    skipped_files=[f"{MALICIOUS}/a.png"], info={MALICIOUS: MALICIOUS})
    ast.parse(source)
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "exported"}
    exec(compile(source, "pipeline.py", "exec"), namespace)
    assert not (tmp_path / "pwned").exists()
    assert list(tmp_path.iterdir()) == []
    assert namespace["CLASS_NAMES"] == hostile
    assert namespace["SKIPPED_FILES"] == {f"{MALICIOUS}/a.png"}


def test_a_seeded_training_dataset_draws_the_same_augmentation():
    """With a seed, batches are augmented in order: a parallel map would advance the random
    layers' shared seed state in thread order, so two runs would draw differently."""
    import keras

    images = np.random.default_rng(0).integers(0, 255, (200, 12, 12, 1)).astype("uint8")
    labels = np.repeat([0, 1], 100)
    ops = [{"name": "rotation", "intensity": 0.2}, {"name": "zoom", "intensity": 0.2},
           {"name": "contrast", "intensity": 0.5}]

    def draw():
        keras.utils.set_random_seed(0)
        pipeline = Pipeline(augmentation=ops).fit(images, labels, 2)
        dataset, _ = pipeline.train_dataset(images, labels, num_classes=2, batch_size=2,
                                            epochs=1, seed=0)
        return np.concatenate([batch.numpy() for batch, _ in dataset])

    np.testing.assert_array_equal(draw(), draw())
