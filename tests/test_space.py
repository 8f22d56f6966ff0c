"""SearchSpace: validates every dimension at construction, declares each one on Keras Tuner
hyperparameters (fixed, choice, range, conditional), and round-trips through JSON."""

import json

import keras_tuner
import pytest

from autoprep.choices import AUGMENTATIONS, FLIP_MODES, IMBALANCE_STRATEGIES, NORMALIZATIONS
from autoprep.errors import ArgumentError, UnknownChoiceError
from autoprep.search.space import PREFIX, SearchSpace

DIMENSIONS = [
    "normalization", "flip", "rotation", "zoom", "translation", "contrast", "brightness",
    "policy", "rand_augment", "mixup", "cutmix", "imbalance", "beta", "reweight_start",
]


def declared(space):
    """{dimension: hyperparameter} of what `space` declares on fresh hyperparameters."""
    hp = keras_tuner.HyperParameters()
    values = space.declare(hp)
    return values, {p.name[len(PREFIX):]: p for p in hp.space}


def parents(hyperparameter):
    return [(c.name[len(PREFIX):], sorted(c.values)) for c in hyperparameter.conditions]


def test_default_space_declares_every_dimension_with_the_right_conditions():
    values, hps = declared(SearchSpace())
    assert set(hps) == set(DIMENSIONS) == set(values)
    assert hps["normalization"].values == NORMALIZATIONS.names()
    assert hps["imbalance"].values == IMBALANCE_STRATEGIES.names()
    assert hps["flip"].values == list(FLIP_MODES)
    for policy in ("rand_augment", "mixup", "cutmix"):
        assert parents(hps[policy]) == [("policy", [policy])]
    assert parents(hps["beta"]) == [
        ("imbalance", ["deferred_reweighting", "effective_number"])
    ]
    assert parents(hps["reweight_start"]) == [("imbalance", ["deferred_reweighting"])]
    unconditional = set(DIMENSIONS) - {"rand_augment", "mixup", "cutmix", "beta", "reweight_start"}
    assert all(parents(hps[name]) == [] for name in unconditional)


def test_default_ranges_stay_within_each_ops_limits():
    _, hps = declared(SearchSpace())
    for name, hyperparameter in hps.items():
        if name in AUGMENTATIONS and name != "flip":
            assert hyperparameter.min_value >= 0
            assert hyperparameter.max_value <= AUGMENTATIONS.get(name).max_intensity


@pytest.mark.parametrize(
    "arguments, dimension, value",
    [
        ({"normalization": "per_channel"}, "normalization", "per_channel"),
        ({"normalization": ["robust"]}, "normalization", "robust"),
        ({"rotation": 0.1}, "rotation", 0.1),
        ({"zoom": (0.2, 0.2)}, "zoom", 0.2),
        ({"contrast": [0.3]}, "contrast", 0.3),
        ({"imbalance": "effective_number", "beta": 0.99}, "beta", 0.99),
    ],
)
def test_a_fixed_dimension_is_declared_as_hp_fixed(arguments, dimension, value):
    values, hps = declared(SearchSpace(**arguments))
    assert isinstance(hps[dimension], keras_tuner.engine.hyperparameters.Fixed)
    assert hps[dimension].value == value == values[dimension]


def test_lists_become_choices_and_tuples_ranges():
    space = SearchSpace(normalization=["rescale_01", "per_image"], brightness=(0.1, 0.2),
                        mixup=[0.2, 0.3], policy="mixup")
    _, hps = declared(space)
    assert hps["normalization"].values == ["rescale_01", "per_image"]
    assert (hps["brightness"].min_value, hps["brightness"].max_value) == (0.1, 0.2)
    assert hps["brightness"].step == pytest.approx(0.1)
    assert hps["mixup"].values == [0.2, 0.3]


@pytest.mark.parametrize(
    "imbalance, expected",
    [
        ("oversample", set()),
        ("effective_number", {"beta"}),
        ("deferred_reweighting", {"beta", "reweight_start"}),
        (["none", "effective_number"], {"beta"}),
    ],
)
def test_beta_and_start_are_declared_only_with_strategies_that_use_them(imbalance, expected):
    values, hps = declared(SearchSpace(imbalance=imbalance))
    assert set(hps) & {"beta", "reweight_start"} == expected
    for name in {"beta", "reweight_start"} - expected:
        assert values[name] is None


@pytest.mark.parametrize("policy", ["none", "rand_augment", "mixup", "cutmix"])
def test_policy_intensities_are_declared_only_with_their_policy(policy):
    values, hps = declared(SearchSpace(policy=policy))
    strengths = {"rand_augment", "mixup", "cutmix"}
    assert set(hps) & strengths == ({policy} & strengths)
    pipeline_ops = [op.name for op in SearchSpace(policy=policy).pipeline(
        keras_tuner.HyperParameters()).augmentation]
    assert pipeline_ops == ([] if policy == "none" else [policy])


def test_pipeline_from_fixed_space_uses_every_fixed_value():
    space = SearchSpace(
        normalization="robust", flip="vertical", rotation=0.1, zoom=0.0, translation=0.05,
        contrast=0.0, brightness=0.2, policy="cutmix", cutmix=0.75,
        imbalance="deferred_reweighting", beta=0.99, reweight_start=0.6,
    )
    config = space.pipeline(keras_tuner.HyperParameters()).get_config()
    assert config == {
        "normalization": {"name": "robust"},
        "augmentation": [
            {"name": "flip", "mode": "vertical"},
            {"name": "rotation", "intensity": 0.1},
            {"name": "translation", "intensity": 0.05},
            {"name": "brightness", "intensity": 0.2},
            {"name": "cutmix", "intensity": 0.75},
        ],
        "imbalance": {"name": "deferred_reweighting", "beta": 0.99, "start": 0.6},
    }


@pytest.mark.parametrize("seed", range(12))
def test_every_sampled_point_of_the_default_space_builds_a_valid_pipeline(seed):
    space = SearchSpace()
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    for hyperparameter in hp.space:
        hp.values[hyperparameter.name] = hyperparameter.random_sample(seed * 97 + len(hp.values))
    values = space.declare(hp)
    pipeline = space.pipeline(hp)
    assert pipeline.normalization.name == values["normalization"]
    assert pipeline.imbalance.name == values["imbalance"]
    for op in pipeline.augmentation:
        assert op.get_config() == {"name": "flip", "mode": values["flip"]} or (
            op.intensity == values[op.name] and round(op.intensity, 6) == op.intensity
        )


@pytest.mark.parametrize(
    "space",
    [
        SearchSpace(),
        SearchSpace(normalization=["rescale_01", "robust"], flip="horizontal", rotation=(0.05, 0.1),
                    zoom=[0.0, 0.1], policy="mixup", mixup=0.2, imbalance="deferred_reweighting",
                    beta=[0.9, 0.99], reweight_start=(0.4, 0.6)),
    ],
)
def test_config_round_trips_through_json(space):
    config = space.get_config()
    rebuilt = SearchSpace.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert rebuilt.dimensions == space.dimensions
    assert declared(rebuilt)[0] == declared(space)[0]


@pytest.mark.parametrize(
    "argument, valid",
    [
        ("normalization", NORMALIZATIONS.names()),
        ("imbalance", IMBALANCE_STRATEGIES.names()),
        ("flip", list(FLIP_MODES)),
        ("policy", ["none", "rand_augment", "mixup", "cutmix"]),
    ],
)
def test_unknown_names_fail_listing_the_valid_ones(argument, valid):
    message = f"Unknown {argument} 'bogus'. Expected one of: {', '.join(valid)}."
    with pytest.raises(UnknownChoiceError, match=message.replace(".", r"\.")):
        SearchSpace(**{argument: ["bogus"] if argument == "imbalance" else "bogus"})


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"rotation": 0.9}, r"`rotation` values must lie in \[0.0, 0.5\]. Received: rotation=0.9"),
        ({"zoom": -0.1}, r"`zoom` values must lie in \[0.0, 1.0\]"),
        ({"contrast": [0.1, 1.5]}, r"`contrast` values must lie in \[0.0, 1.0\]"),
        ({"brightness": (0.3, 0.1)}, r"`brightness` range must have low <= high"),
        ({"zoom": (0.1, 0.2, 0.3)}, r"`zoom` range must be \(low, high\)"),
        ({"mixup": "strong"}, r"`mixup` must be a number, a list of numbers or a \(low, high\)"),
        ({"rotation": []}, r"`rotation` must be a number"),
        ({"zoom": True}, r"`zoom` must be a number.*Received: zoom=True"),
        ({"beta": 1.0}, r"`beta` values must lie in"),
        ({"reweight_start": (0.5, 1.0)}, r"`reweight_start` values must lie in \[0.0, 0.95\]"),
        ({"normalization": []}, r"`normalization` must be a name or a non-empty list of names"),
        ({"imbalance": 3}, r"`imbalance` must be a name or a non-empty list of names"),
    ],
)
def test_bad_values_fail_at_construction(arguments, message):
    with pytest.raises(ArgumentError, match=message):
        SearchSpace(**arguments)


def test_a_range_for_beta_is_declared_as_a_float():
    space = SearchSpace(imbalance="effective_number", beta=(0.9, 0.99))
    values, hps = declared(space)
    assert (hps["beta"].min_value, hps["beta"].max_value) == (0.9, 0.99)
    assert 0.9 <= values["beta"] <= 0.99
    assert space.pipeline(keras_tuner.HyperParameters()).imbalance.beta == values["beta"]


class _Noise:
    """Mixed into an op registered only for one test: Gaussian pixel noise."""

    layer_name = "GaussianNoise"
    search_range = (0.0, 0.4)
    search_step = 0.2

    def layer_kwargs(self):
        return {"stddev": float(self.intensity)}


@pytest.fixture
def noise_op():
    """An augmentation op (and a policy) registered for one test only, in no autoprep file."""
    from autoprep.choices.augmentation import AugmentationOp

    op = AUGMENTATIONS.register("test_noise")(type("TestNoise", (_Noise, AugmentationOp), {}))
    policy = AUGMENTATIONS.register("test_noise_policy")(
        type("TestNoisePolicy", (_Noise, AugmentationOp), {"policy": True})
    )
    yield op, policy
    AUGMENTATIONS.unregister("test_noise")
    AUGMENTATIONS.unregister("test_noise_policy")


def test_an_op_registered_elsewhere_is_a_dimension_of_the_space(noise_op):
    values, hps = declared(SearchSpace())
    assert (hps["test_noise"].min_value, hps["test_noise"].max_value) == (0.0, 0.4)
    assert parents(hps["test_noise"]) == []
    assert "test_noise_policy" in hps["policy"].values
    assert parents(hps["test_noise_policy"]) == [("policy", ["test_noise_policy"])]
    space = SearchSpace(test_noise=0.2, policy="test_noise_policy", test_noise_policy=[0.4])
    config = SearchSpace.from_config(json.loads(json.dumps(space.get_config()))).get_config()
    assert config == space.get_config()
    pipeline = space.pipeline(keras_tuner.HyperParameters())
    assert [op.get_config() for op in pipeline.augmentation] == [
        {"name": "test_noise", "intensity": 0.2}, {"name": "test_noise_policy", "intensity": 0.4}
    ]
    with pytest.raises(ArgumentError, match=r"`test_noise` values must lie in \[0.0, 1.0\]"):
        SearchSpace(test_noise=2.0)
    with pytest.raises(UnknownChoiceError, match="Unknown policy 'blur'. Expected one of: none, "):
        SearchSpace(policy="blur")


def test_an_unknown_dimension_is_refused_listing_the_valid_ones():
    with pytest.raises(ArgumentError, match="Unknown search dimension 'noise'. Expected one of: "
                                            "normalization, flip, rotation"):
        SearchSpace(noise=0.1)


@pytest.mark.slow
def test_an_op_registered_elsewhere_runs_in_a_trial_and_in_the_exported_module(
    noise_op, make_folder, tmp_path
):
    import importlib.util

    from helpers import tiny_model

    import autoprep

    data_dir = make_folder([6, 6], size=(8, 8))
    fixed = dict(normalization="rescale_01", flip="none", rotation=0.0, zoom=0.0,
                 translation=0.0, contrast=0.0, brightness=0.0, policy="none",
                 imbalance="none", test_noise=0.4)
    result = autoprep.tune(
        tiny_model, data_dir, max_trials=1, epochs=1, tuner="random", test_split=0,
        space=SearchSpace(**fixed), directory=tmp_path / "runs", verbose=0, seed=0,
    )
    assert result.best_config["augmentation"] == [{"name": "test_noise", "intensity": 0.4}]
    path = result.export(tmp_path / "noisy.py")
    assert "tf.keras.layers.GaussianNoise(stddev=0.4)" in open(path).read()
    spec = importlib.util.spec_from_file_location("noisy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    train, _ = module.make_datasets(data_dir, batch_size=4, seed=0, cache=False)
    images, labels = next(iter(train))
    assert [type(layer).__name__ for layer in module.make_augmentation_layers()] == [
        "GaussianNoise"
    ]
    assert tuple(images.shape) == (4, 8, 8, 1) and tuple(labels.shape) == (4,)
