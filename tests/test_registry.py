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
NON_DEFAULT = {"intensity": 0.35, "mode": "vertical", "beta": 0.95, "start": 0.3}
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
