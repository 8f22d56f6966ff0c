"""SearchSpace: validates every dimension at construction, declares each one on Keras Tuner
hyperparameters (fixed, choice, range, conditional), and round-trips through JSON."""

import json

import keras_tuner
import numpy as np
import pytest

from autoprep.choices import AUGMENTATIONS, FLIP_MODES, IMBALANCE_STRATEGIES, NORMALIZATIONS
from autoprep.errors import ArgumentError, UnknownChoiceError
from autoprep.search.space import PREFIX, SearchSpace

DIMENSIONS = [
    "normalization", "flip", "rotation", "zoom", "translation", "contrast", "brightness",
    "policy", "rand_augment", "mixup", "cutmix", "trivial_augment", "imbalance", "beta",
    "reweight_start", "loss_tau",
]
POLICIES = ["rand_augment", "mixup", "cutmix", "trivial_augment"]


def declared(space):
    """{dimension: hyperparameter} of what `space` declares on fresh hyperparameters."""
    hp = keras_tuner.HyperParameters()
    values = space.declare(hp)
    return values, {p.name[len(PREFIX):]: p for p in hp.space}


def test_a_backbone_convention_is_valid_when_given_though_never_searched_by_default():
    values, hps = declared(SearchSpace(normalization="caffe_bgr"))
    assert values["normalization"] == "caffe_bgr"
    values, hps = declared(SearchSpace(normalization=["torch_imagenet", "rescale_01"]))
    assert hps["normalization"].values == ["torch_imagenet", "rescale_01"]


def parents(hyperparameter):
    return [(c.name[len(PREFIX):], sorted(c.values)) for c in hyperparameter.conditions]


def test_default_space_declares_every_dimension_with_the_right_conditions():
    values, hps = declared(SearchSpace())
    assert set(hps) == set(DIMENSIONS) == set(values)
    searched = [name for name in NORMALIZATIONS if NORMALIZATIONS.get(name).searched]
    assert hps["normalization"].values == searched
    assert {"rescale_128", "caffe_bgr", "torch_imagenet"}.isdisjoint(searched)
    assert hps["imbalance"].values == IMBALANCE_STRATEGIES.names()
    assert hps["flip"].values == list(FLIP_MODES)
    for policy in POLICIES:
        assert parents(hps[policy]) == [("policy", [policy])]
    assert parents(hps["beta"]) == [
        ("imbalance", ["deferred_reweighting", "effective_number"])
    ]
    assert parents(hps["reweight_start"]) == [("imbalance", ["deferred_reweighting"])]
    assert parents(hps["loss_tau"]) == [("imbalance", ["logit_adjusted_loss"])]
    conditional = {*POLICIES, "beta", "reweight_start", "loss_tau"}
    unconditional = set(DIMENSIONS) - conditional
    assert all(parents(hps[name]) == [] for name in unconditional)


def test_default_levels_stay_within_each_ops_limits_and_start_off():
    _, hps = declared(SearchSpace())
    for name, hyperparameter in hps.items():
        if name in AUGMENTATIONS and name != "flip":
            op = AUGMENTATIONS.get(name)
            if name == "trivial_augment":  # a zero-search reference: one strength
                assert hyperparameter.value == 1.0
                continue
            assert 0 <= min(hyperparameter.values)
            assert max(hyperparameter.values) <= op.max_intensity
            assert hyperparameter.values == sorted(hyperparameter.values)
            if not op.policy:  # off first, and off in the first trial
                assert hyperparameter.values[0] == 0.0 == hyperparameter.default


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


@pytest.mark.parametrize("policy", ["none", *POLICIES])
def test_policy_intensities_are_declared_only_with_their_policy(policy):
    values, hps = declared(SearchSpace(policy=policy))
    strengths = set(POLICIES)
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
        ("policy", ["none", *POLICIES]),
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


def prior_points(space, count=400):
    hp = keras_tuner.HyperParameters()
    space.declare(hp)
    return [space.random_values(hp, seed) for seed in range(count)]


def test_the_prior_turns_few_light_ops_on_and_policies_rarely():
    from autoprep.search.space import complexity, pipeline_from_values

    points = prior_points(SearchSpace())
    ops = ["flip", "rotation", "zoom", "translation", "contrast", "brightness"]
    pipelines = [pipeline_from_values({k[len(PREFIX):]: v for k, v in p.items()} | {
        name: None for name in (*POLICIES, "beta", "reweight_start", "loss_tau")
        if PREFIX + name not in p}) for p in points]
    plain = [len([op for op in p.augmentation if not op.policy]) for p in pipelines]
    assert 1.2 < np.mean(plain) < 2.5  # uniform draws turn about 4.5 of these 6 on
    policies = np.mean([p[PREFIX + "policy"] != "none" for p in points])
    assert 0.12 < policies < 0.28  # uniform: 3 in 4
    for name in ops[1:]:
        levels = [p[PREFIX + name] for p in points]
        light, strong = sorted(set(levels))[1], max(levels)
        assert np.mean([v == 0 for v in levels]) > 0.6
        assert levels.count(light) > levels.count(strong)
    assert np.mean([complexity(p) for p in pipelines]) < 4


def test_prior_points_are_reproducible_and_hold_only_active_hyperparameters():
    space = SearchSpace(imbalance=["none", "deferred_reweighting"])
    points = prior_points(space, 60)
    assert points == prior_points(space, 60)
    for point in points:
        assert (PREFIX + "reweight_start" in point) == (
            point[PREFIX + "imbalance"] == "deferred_reweighting"
        )
        for policy in POLICIES:
            assert (PREFIX + policy in point) == (point[PREFIX + "policy"] == policy)


def test_a_narrowed_dimension_is_drawn_uniformly_within_what_the_user_allows():
    points = prior_points(SearchSpace(rotation=[0.1, 0.2], zoom=(0.1, 0.3)), 200)
    rotations = [p[PREFIX + "rotation"] for p in points]
    assert set(rotations) == {0.1, 0.2} and 60 < rotations.count(0.1) < 140
    assert all(0.1 <= p[PREFIX + "zoom"] <= 0.3 for p in points)


def test_random_search_and_bayesian_start_draw_from_the_prior(tmp_path):
    from autoprep.search.tuners import make_tuner

    class Model(keras_tuner.HyperModel):
        space = SearchSpace()

        def build(self, hp):
            self.space.declare(hp)

    for name in ("random", "bayesian"):
        tuner = make_tuner(name, Model(), objective="val_loss", max_trials=50, epochs=1, seed=3,
                           directory=tmp_path, project_name=name)
        oracle = tuner.oracle
        assert oracle.prior == Model.space.random_values
        oracle.hyperparameters = keras_tuner.HyperParameters()
        Model.space.declare(oracle.hyperparameters)
        draws = [oracle._random_values() for _ in range(100)]
        assert np.mean([d[PREFIX + "policy"] != "none" for d in draws]) < 0.35


def facts(**changes):
    from autoprep.search.space import DataFacts

    plain = dict(mean=110.0, high=250.0, median_std=50.0, imbalance_ratio=1.0, gray=False,
                 flip="none")
    return DataFacts(**(plain | changes))


def test_seeds_come_from_the_data():
    from autoprep.search.space import pipeline_from_values

    # Color images: per-channel standardization first (results/first_configuration.md).
    color = SearchSpace().seed_configurations(facts())
    assert [(p["normalization"], p["imbalance"]) for p in color] == [
        ("per_channel", "none"), ("rescale_01", "none"), ("per_channel", "sqrt_inverse"),
        ("per_channel", "none"),  # with light augmentation: no flip here, zoom and translation
    ]
    # Gray images of a full range: [0, 1] first.
    first = SearchSpace().seed_configurations(facts(gray=True))
    assert [(p["normalization"], p["imbalance"]) for p in first] == [
        ("rescale_01", "none"), ("per_channel", "none"), ("rescale_01", "sqrt_inverse"),
        ("rescale_01", "none"),
    ]
    assert first[3]["zoom"] == 0.05 and first[3]["flip"] == "none" != first[0]["zoom"]
    dark = SearchSpace().seed_configurations(facts(mean=20.0, imbalance_ratio=10.0, gray=True,
                                                   flip="horizontal"))
    assert [(p["normalization"], p["imbalance"], p["flip"]) for p in dark] == [
        ("per_channel", "inverse_frequency", "none"),
        ("rescale_01", "inverse_frequency", "none"),
        ("per_channel", "oversample", "none"),
        ("per_channel", "inverse_frequency", "horizontal"),
    ]
    assert dark[3]["zoom"] == 0.05 == dark[3]["translation"] and dark[3]["rotation"] == 0.0
    assert SearchSpace().seed_configurations(facts(imbalance_ratio=2.0))[0]["imbalance"] == (
        "sqrt_inverse"
    )
    for values in dark:
        assert values["policy"] == "none" and pipeline_from_values(values)
        assert SearchSpace.hyperparameter_values(values)[PREFIX + "normalization"] == (
            values["normalization"]
        )


def test_seeds_respect_a_narrowed_space():
    space = SearchSpace(normalization="robust", imbalance=["none", "effective_number"],
                        zoom=0.0)
    seeds = space.seed_configurations(facts(mean=20.0, imbalance_ratio=10.0))
    assert {p["normalization"] for p in seeds} == {"robust"}
    assert [p["imbalance"] for p in seeds] == ["effective_number", "none", "effective_number"]
    assert seeds[0]["beta"] == 0.9 and seeds[1]["beta"] is None
    assert all(p["zoom"] == 0.0 for p in seeds) and seeds[2]["translation"] == 0.05
    assert len(seeds) == len({json.dumps(p, sort_keys=True) for p in seeds}) == 3


def test_data_facts_find_range_imbalance_and_symmetry():
    import numpy as np

    from autoprep.search.space import data_facts

    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, size=(60, 8, 8, 1), dtype=np.uint8)
    labels = np.array([0] * 50 + [1] * 10)
    found = data_facts(noise, labels, 2)
    assert found.flip == "horizontal_and_vertical" and found.gray
    assert found.imbalance_ratio == 5.0 and found.mean < 40
    left = noise.copy()
    left[:, :, :4] += 150  # a bright left half: mirror-symmetric only top to bottom
    assert data_facts(left, labels, 2).flip == "vertical"
    corner = left.copy()
    corner[:, :4] += 50
    assert data_facts(corner, labels, 2).flip == "none"


def test_data_facts_propose_no_flip_from_classes_too_small_to_tell():
    import numpy as np

    from autoprep.search.space import data_facts

    rng = np.random.default_rng(0)
    images = rng.integers(0, 40, size=(46, 8, 8, 1), dtype=np.uint8)
    images[:40, :, :4] += 150  # the large class: bright on the left, not mirror-symmetric
    labels = np.array([0] * 40 + [1] * 3 + [2] * 3)
    # The mean of 3 noisy images looks symmetric within its own noise; it is not evidence.
    assert data_facts(images, labels, 3).flip == "vertical"
    assert data_facts(images[40:], labels[40:] - 1, 2).flip == "none"


def test_complexity_counts_ops_policy_and_imbalance():
    from autoprep.search.space import complexity

    assert complexity({"normalization": "robust", "augmentation": [],
                       "imbalance": "none"}) == 0
    assert complexity({"normalization": "rescale_01",
                       "augmentation": [{"name": "flip", "mode": "horizontal"},
                                        {"name": "zoom", "intensity": 0.0},
                                        {"name": "mixup", "intensity": 0.2}],
                       "imbalance": {"name": "oversample"}}) == 3
