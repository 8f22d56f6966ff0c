"""Registries map names to choices, reject unknown names listing the valid ones, and every
registered choice round-trips through JSON with its learned constants."""

import inspect
import json

import numpy as np
import pytest

from autoprep.choices import AUGMENTATIONS, IMBALANCE_STRATEGIES, NORMALIZATIONS
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError, UnknownChoiceError

# A non-default value for every constructor parameter of a registered choice, by parameter
# name, so that a round-trip that forgets one of them fails. A choice with a new parameter
# fails `test_every_parameter_has_a_non_default_value_here` until its value is added here.
NON_DEFAULT = {"intensity": 0.35, "mode": "vertical", "beta": 0.95, "start": 0.3, "tau": 0.5}
ALL_CHOICES = [
    pytest.param(registry, name, id=f"{registry.kind}-{name}")
    for registry in (NORMALIZATIONS, AUGMENTATIONS, IMBALANCE_STRATEGIES)
    for name in registry
]


def parameters(cls) -> dict:
    """The constructor parameters of a choice class (all but `self`), by name."""
    if cls.__init__ is object.__init__:
        return {}
    params = dict(inspect.signature(cls.__init__).parameters)
    params.pop("self")
    return params


def non_default_parameters(cls) -> dict:
    return {name: NON_DEFAULT[name] for name in parameters(cls)}


def configured(registry, name):
    """A registered choice with non-default parameters, fitted on tiny data when it learns."""
    cls = registry.get(name)
    choice = cls(**non_default_parameters(cls)).validate()
    rng = np.random.default_rng(0)
    if registry is NORMALIZATIONS:
        choice.fit(rng.integers(0, 256, size=(6, 4, 4, 3), dtype=np.uint8))
    elif registry is IMBALANCE_STRATEGIES:
        choice.fit(np.array([0] * 6 + [1] * 3 + [2]), num_classes=3)
    return choice


@pytest.mark.parametrize("registry, name", ALL_CHOICES)
def test_every_parameter_has_a_non_default_value_here(registry, name):
    for param_name, param in parameters(registry.get(name)).items():
        # get_config() reads keyword-only parameters: a positional one would be lost.
        assert param.kind == param.KEYWORD_ONLY, f"{name}: `{param_name}` is not keyword-only"
        assert param.default is not param.empty, f"{name}: `{param_name}` has no default"
        assert param_name in NON_DEFAULT, f"add a non-default `{param_name}` to NON_DEFAULT"
        assert NON_DEFAULT[param_name] != param.default, f"{name}: `{param_name}` is its default"


@pytest.mark.parametrize("registry, name", ALL_CHOICES)
def test_config_round_trips_through_json(registry, name):
    choice = configured(registry, name)
    config = choice.get_config()
    assert config["name"] == name
    rebuilt = registry.get(name).from_config(json.loads(json.dumps(config)))
    assert type(rebuilt) is type(choice)
    assert rebuilt == choice
    assert rebuilt.get_config() == config
    for key, value in config.items():  # learned constants come back as attributes too
        if key.endswith("_"):
            assert getattr(rebuilt, key) == value


@pytest.mark.parametrize("registry, name", ALL_CHOICES)
def test_config_holds_every_non_default_parameter(registry, name):
    cls = registry.get(name)
    values = non_default_parameters(cls)
    config = configured(registry, name).get_config()
    default = cls().get_config()
    learned = {key for key in config if key.endswith("_")}
    # Exactly the name, the parameters and the learned constants: nothing forgotten or extra.
    assert set(config) - learned == {"name", *values} == set(default)
    for key, value in values.items():
        assert config[key] == value != default[key]
    rebuilt = cls.from_config(json.loads(json.dumps(config)))
    assert {key: getattr(rebuilt, key) for key in values} == values


def test_learned_constants_are_part_of_the_config():
    normalization = configured(NORMALIZATIONS, "per_channel").get_config()
    assert set(normalization) == {"name", "mean_", "std_"}
    imbalance = configured(IMBALANCE_STRATEGIES, "inverse_frequency").get_config()
    assert set(imbalance) == {"name", "class_weight_"} and len(imbalance["class_weight_"]) == 3
    unfitted = NORMALIZATIONS.get("per_channel")().get_config()
    assert unfitted == {"name": "per_channel"}


def test_choices_of_different_classes_or_parameters_differ():
    assert NORMALIZATIONS.get("rescale_01")() != NORMALIZATIONS.get("rescale_pm1")()
    assert AUGMENTATIONS.get("zoom")(intensity=0.1) != AUGMENTATIONS.get("zoom")(intensity=0.2)
    assert AUGMENTATIONS.get("zoom")(intensity=0.1) == AUGMENTATIONS.get("zoom")(intensity=0.1)


@pytest.mark.parametrize("registry", [NORMALIZATIONS, AUGMENTATIONS, IMBALANCE_STRATEGIES])
def test_unknown_name_fails_listing_every_valid_name(registry):
    with pytest.raises(UnknownChoiceError) as raised:
        registry.get("nonsense")
    message = str(raised.value)
    assert message.startswith(f"Unknown {registry.kind} 'nonsense'. Expected one of: ")
    for name in registry:
        assert name in message
    assert isinstance(raised.value, KeyError) and isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "argument, registry",
    [("normalization", NORMALIZATIONS), ("imbalance", IMBALANCE_STRATEGIES)],
)
def test_pipeline_rejects_unknown_names_at_construction(argument, registry):
    valid = ", ".join(registry.names())
    with pytest.raises(UnknownChoiceError, match=f"Expected one of: {valid}"):
        Pipeline(**{argument: "nonsense"})
    with pytest.raises(UnknownChoiceError, match=f"Unknown {registry.kind} 'nonsense'"):
        Pipeline(**{argument: {"name": "nonsense"}})


def test_pipeline_rejects_unknown_augmentation_names():
    message = f"Unknown augmentation 'blur'. Expected one of: {', '.join(AUGMENTATIONS.names())}"
    with pytest.raises(UnknownChoiceError, match=message):
        Pipeline(augmentation=[{"name": "blur", "intensity": 0.1}])


def test_pipeline_rejects_a_choice_from_the_wrong_registry():
    with pytest.raises(ArgumentError, match="Expected a normalization. Received: Oversample"):
        Pipeline(normalization=IMBALANCE_STRATEGIES.get("oversample")())


def test_register_sets_the_name_and_refuses_duplicates():
    from autoprep._registry import Registry

    registry = Registry("widget")

    @registry.register("spanner")
    class Spanner:
        pass

    assert Spanner.name == "spanner" and registry.get("spanner") is Spanner
    assert "spanner" in registry and list(registry) == ["spanner"] == registry.names()
    with pytest.raises(ValueError, match="widget 'spanner' is registered twice"):
        registry.register("spanner")(type("Other", (), {}))
    assert registry.get("spanner") is Spanner


LEARNING = [
    pytest.param(registry, name, id=f"{registry.kind}-{name}")
    for registry in (NORMALIZATIONS, IMBALANCE_STRATEGIES)
    for name in registry
    if registry.get(name)._learned
]


def use(choice):
    """What a trial does with a fitted choice: normalize a batch, or read its class weights."""
    if choice.name in NORMALIZATIONS:
        return choice(np.zeros((1, 4, 4, 3), np.uint8))
    if hasattr(choice, "adjusted_loss"):
        return choice.adjusted_loss(from_logits=True)
    if choice.name == "posthoc_logit_adjustment":
        return choice.adjust(np.full((1, 3), 1 / 3))
    return choice.fit_class_weight() or choice.dataset_class_weights()


@pytest.mark.parametrize("registry, name", LEARNING)
def test_a_choice_that_learns_refuses_to_be_used_before_fit(registry, name):
    from autoprep.errors import NotFittedError

    with pytest.raises(NotFittedError, match=rf"\({name!r}\) is not fitted yet: call `fit`"):
        use(registry.get(name)())
    assert use(configured(registry, name)) is not None


@pytest.mark.parametrize("registry, name", LEARNING)
def test_learned_attributes_are_documented_in_the_class_docstring(registry, name):
    cls = registry.get(name)
    docstring = cls.__doc__
    assert "Attributes:" in docstring
    for attr in cls._learned:
        assert f"{attr}_:" in docstring
    assert set(configured(registry, name).get_config()) >= {attr + "_" for attr in cls._learned}


@pytest.mark.parametrize(
    "registry, name, parameters, message",
    [
        (AUGMENTATIONS, "rotation", {"intensity": 0.9}, r"`rotation` intensity must be in"),
        (AUGMENTATIONS, "mixup", {"intensity": -0.1}, r"`mixup` intensity must be in"),
        (AUGMENTATIONS, "flip", {"mode": "diagonal"}, r"`flip` must be one of"),
        (IMBALANCE_STRATEGIES, "effective_number", {"beta": 1.5}, r"`beta` must be in \(0, 1\)"),
        (IMBALANCE_STRATEGIES, "deferred_reweighting", {"start": 1.0}, r"`start` must be in"),
    ],
)
def test_a_choice_built_directly_is_validated_as_through_the_registry(
    registry, name, parameters, message
):
    with pytest.raises(ArgumentError, match=message):
        registry.get(name)(**parameters)
    with pytest.raises(ArgumentError, match=message):
        Pipeline(**{
            "normalization": "rescale_01",
            "augmentation": [{"name": name, **parameters}] if registry is AUGMENTATIONS else [],
            "imbalance": {"name": name, **parameters} if registry is IMBALANCE_STRATEGIES
            else "none",
        })


# best_config of results.json files written before choices declared their own dimensions.
OLD_BEST_CONFIGS = [
    {"normalization": {"name": "per_channel", "mean_": [122.43125, 125.44375, 123.30625],
                       "std_": [71.91476046986114, 72.00900524196612, 77.24757252456227]},
     "augmentation": [{"name": "flip", "mode": "horizontal"},
                      {"name": "rotation", "intensity": 0.1}, {"name": "mixup", "intensity": 0.2}],
     "imbalance": {"name": "deferred_reweighting", "beta": 0.99, "start": 0.5,
                   "class_weight_": [0.562972, 1.109223, 3.294502]}},
    {"normalization": {"name": "robust", "median_": [120.0, 130.0, 125.0],
                       "iqr_": [124.25, 118.25, 131.0]},
     "augmentation": [{"name": "rand_augment", "intensity": 0.4}],
     "imbalance": {"name": "inverse_frequency", "class_weight_": [0.555556, 1.111111, 3.333333]}},
    {"normalization": {"name": "rescale_01"}, "augmentation": [],
     "imbalance": {"name": "oversample"}},
]


@pytest.mark.parametrize("config", OLD_BEST_CONFIGS)
def test_best_configs_of_earlier_runs_still_load_fitted(config):
    pipeline = Pipeline.from_config(json.loads(json.dumps(config)))
    assert pipeline.get_config() == config
    assert pipeline.normalization.fitted and pipeline.imbalance.fitted
    assert pipeline.fit_kwargs(4, gate=None) is not None
