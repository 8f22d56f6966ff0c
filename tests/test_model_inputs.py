"""What a model expects of its input: Keras Applications families, preprocessing layers inside the
model, KerasHub converters, fixed input sizes; and the exported `preprocess` against each
family's `keras.applications.*.preprocess_input`.

Backbones are built with `weights=None` (nothing downloads): the architecture and the layer
names are those of the pretrained models. A few cheap ones are built in the fast tests; every
constructor of `keras.applications` is built in the slow ones.
"""

import importlib
import importlib.util
import inspect
import re
import sys
import warnings

import keras
import numpy as np
import pytest

from autoprep.choices.normalization import NORMALIZATIONS
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import InputConventionWarning, ModelError
from autoprep.export.module import render_module
from autoprep.run.convention import FIXED, GIVEN, InputConvention, recorded
from autoprep.search import model_inputs
from autoprep.search.model_inputs import (
    FAMILIES,
    contradictions,
    family_of,
    fit_space,
    inspect_model,
    probe_model,
)
from autoprep.search.space import DataFacts, SearchSpace

CONSTRUCTORS = sorted(name for name in dir(keras.applications) if name[0].isupper())
MODULES = sorted({getattr(keras.applications, name).__module__ for name in CONSTRUCTORS})
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}


def uint8_images(channels=3, seed=0):
    """Four 6x6 images over the whole 0-255 range."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(4, 6, 6, channels), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255
    return images


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """exported(name): the `preprocess` of a module exported with that normalization."""
    modules = {}

    def preprocess(name):
        if name not in modules:
            pipeline = Pipeline(normalization=name, augmentation=[], imbalance="none")
            source = render_module(pipeline, class_names=["a", "b"], image_size=(6, 6),
                                   channels=3, epochs=1)
            path = tmp_path_factory.mktemp("exported") / f"pipeline_{name}.py"
            path.write_text(source)
            spec = importlib.util.spec_from_file_location(f"exported_{name}", path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module  # AutoGraph reads its source
            spec.loader.exec_module(module)
            modules[name] = module.preprocess
        return modules[name]

    return preprocess


def family_named(name):
    return next(family for family in FAMILIES if family.name == name)


def fed_by_default(family, model_name=""):
    """What autoprep feeds a model built with the family's defaults."""
    return "none" if family.built_in else family.normalization_of(model_name)


def nested(base, shape=(32, 32, 3), before=(), name="classifier", num_classes=3):
    """A user's model: Input, their own layers, the backbone, pooling and a Dense head."""
    inputs = keras.Input(shape)
    x = inputs
    for layer in before:
        x = layer(x)
    x = keras.layers.GlobalAveragePooling2D()(base(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x), name=name)


def small(constructor, size=32, **kwargs):
    size = MIN_SIZE.get(constructor, size)
    return getattr(keras.applications, constructor)(
        include_top=False, weights=None, input_shape=(size, size, 3), **kwargs)


# -- the table -------------------------------------------------------------------------------
def test_every_keras_applications_constructor_belongs_to_one_family():
    owners = {name: [f.name for f in FAMILIES if name in f.constructors] for name in CONSTRUCTORS}
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}
    listed = {name for family in FAMILIES for name in family.constructors}
    assert listed <= set(CONSTRUCTORS), listed - set(CONSTRUCTORS)


@pytest.mark.parametrize("constructor", CONSTRUCTORS)
def test_the_default_model_name_of_every_constructor_names_its_family(constructor):
    default = inspect.signature(getattr(keras.applications, constructor)).parameters["name"]
    if default.default is None:  # MobileNet, MobileNetV2: named from alpha and size
        pytest.skip("named when built: see test_cheap_backbones_are_recognized_*")
    owner = next(f for f in FAMILIES if constructor in f.constructors)
    assert re.fullmatch(owner.model_name, default.default)
    assert [f for f in FAMILIES if re.fullmatch(f.model_name, default.default)] == [owner]


def test_every_convention_is_a_registered_normalization_not_searched_by_default():
    for family in FAMILIES:
        values = family.normalization
        names = values.values() if isinstance(values, dict) else [values]
        for name in names:
            assert name is None or name in NORMALIZATIONS
    assert not any(NORMALIZATIONS.get(name).searched
                   for name in ("caffe_bgr", "torch_imagenet", "rescale_128"))


# -- the exported module against keras.applications -------------------------------------------
@pytest.mark.parametrize("module_name", MODULES)
def test_exported_preprocess_equals_each_familys_preprocess_input(module_name, exported):
    """For each keras.applications module: what autoprep feeds a backbone of it, exported,
    equals `preprocess_input` on the same uint8 images (identity for the families that build
    their preprocessing in)."""
    module = importlib.import_module(module_name)
    constructors = [c for c in CONSTRUCTORS
                    if getattr(keras.applications, c).__module__ == module_name]
    family = next(f for f in FAMILIES if constructors[0] in f.constructors)
    name = fed_by_default(family)
    images = uint8_images()
    expected = keras.ops.convert_to_numpy(module.preprocess_input(images.astype("float32")))
    output = exported(name)(images).numpy()
    assert output.dtype == np.float32
    np.testing.assert_allclose(output, expected, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(exported(name)(images[0]).numpy(), expected[0],
                               rtol=1e-6, atol=1e-5)


def test_the_caffe_convention_reverses_the_channels():
    images = np.zeros((1, 1, 1, 3), np.uint8)
    images[..., 0] = 255  # pure red
    output = NORMALIZATIONS.get("caffe_bgr")()(images).numpy().ravel()
    np.testing.assert_allclose(output, [-103.939, -116.779, 255 - 123.68], rtol=1e-6)


def own_preprocessing(model, images):
    """The model's own scaling layers (before its first weights) applied to uint8 images."""
    x = keras.ops.convert_to_tensor(images.astype("float32"))
    for layer in model_inputs._stem(model).scaling:
        x = layer(x)
    return keras.ops.convert_to_numpy(x)


def test_mobilenet_v3_without_its_layer_expects_what_its_layer_does(exported):
    with_layer = small("MobileNetV3Small", minimalistic=True)
    without = small("MobileNetV3Small", minimalistic=True, include_preprocessing=False)
    assert inspect_model(with_layer).normalization == "none"
    convention = inspect_model(nested(without, name="renamed"))
    assert (convention.kind, convention.normalization) == ("backbone", "rescale_pm1")
    images = uint8_images()
    np.testing.assert_allclose(exported("rescale_pm1")(images).numpy(),
                               own_preprocessing(with_layer, images), rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("constructor, expected", [
    ("ConvNeXtTiny", "torch_imagenet"), ("EfficientNetV2B0", "torch_imagenet"),
    ("EfficientNetV2S", "rescale_128"),
])
def test_families_without_their_layers_expect_what_their_layers_do(constructor, expected,
                                                                   exported):
    with_layers = small(constructor)
    without = small(constructor, include_preprocessing=False)
    assert inspect_model(with_layers).normalization == "none"
    assert inspect_model(without).normalization == expected
    images = uint8_images()
    np.testing.assert_allclose(exported(expected)(images).numpy(),
                               own_preprocessing(with_layers, images), rtol=1e-5, atol=1e-5)


# -- recognizing backbones ---------------------------------------------------------------------
def test_cheap_backbones_are_recognized_by_name_and_renamed_by_their_layers():
    for base, family, normalization in [
        (small("MobileNetV2", alpha=0.35), "MobileNetV2", "rescale_pm1"),
        (small("MobileNet", alpha=0.25), "MobileNet", "rescale_pm1"),
        (small("VGG16"), "VGG", "caffe_bgr"),
    ]:
        assert family_of(base).name == family
        base.name = "features"  # what `name=` would have set
        assert family_of(base).name == family
        convention = inspect_model(nested(base))
        assert (convention.kind, convention.normalization) == ("backbone", normalization)
        assert f"{family} backbone 'features'" in convention.source


def test_a_backbone_after_the_users_augmentation_layers_keeps_its_convention():
    base = small("MobileNetV2", alpha=0.35)
    model = nested(base, before=[keras.layers.RandomFlip(), keras.layers.RandomRotation(0.1)])
    convention = inspect_model(model)
    assert (convention.kind, convention.normalization) == ("backbone", "rescale_pm1")
    assert contradictions(model, "rescale_pm1") == []


def test_a_backbone_after_the_users_own_weights_sets_no_convention():
    base = small("VGG16")
    model = nested(base, before=[keras.layers.Conv2D(3, 1)])
    assert inspect_model(model).normalization is None


def test_the_model_returned_as_a_backbone_itself_is_recognized():
    model = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.35,
                                           classes=3)
    assert inspect_model(model).normalization == "rescale_pm1"


@pytest.mark.slow
@pytest.mark.parametrize("constructor", CONSTRUCTORS)
def test_every_backbone_is_recognized_by_name_and_renamed_by_its_layers(constructor):
    base = small(constructor)
    owner = next(f for f in FAMILIES if constructor in f.constructors)
    assert [f for f in FAMILIES if re.fullmatch(f.model_name, base.name)] == [owner]
    convention = inspect_model(nested(base, shape=base.inputs[0].shape[1:]))
    assert convention.normalization == fed_by_default(owner, base.name)
    names = [layer.name for layer in base.layers]
    matching = [f for f in FAMILIES
                if all(any(re.fullmatch(p, n) for n in names) for p in f.signature)]
    assert matching == [owner]


# -- preprocessing inside the model --------------------------------------------------------------
def rescaling_model(input_shape=(8, 8, 3), num_classes=3):
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.RandomFlip(), keras.layers.Rescaling(1 / 255),
        keras.layers.Flatten(), keras.layers.Dense(num_classes, activation="softmax"),
    ])


def test_a_model_that_rescales_itself_gets_raw_pixels(exported):
    convention = inspect_model(rescaling_model())
    assert (convention.kind, convention.normalization) == ("in_model", "none")
    assert "Rescaling 'rescaling" in convention.source
    images = uint8_images()
    np.testing.assert_array_equal(exported("none")(images).numpy(), images.astype(np.float32))


def test_a_nested_backbone_with_its_own_layers_gets_raw_pixels():
    base = small("MobileNetV3Small", minimalistic=True)
    convention = inspect_model(nested(base, before=[keras.layers.RandomFlip()]))
    assert (convention.kind, convention.normalization) == ("in_model", "none")
    assert "MobileNetV3 backbone 'MobileNetV3Small' with its own preprocessing" in (
        convention.source)


def test_a_model_without_any_convention_is_searched():
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3)])
    convention = inspect_model(model)
    assert (convention.kind, convention.normalization) == ("none", None)
    assert contradictions(model, "per_image") == []


@pytest.mark.parametrize("normalization", ["rescale_01", "rescale_pm1", "per_image"])
def test_scaling_before_a_model_that_scales_is_double_scaling(normalization):
    [problem] = contradictions(rescaling_model(), normalization)
    assert problem.id == "double_scaling"
    assert f"Normalization {normalization!r} feeds Rescaling" in problem.evidence
    assert problem.sentence().startswith("Double scaling: the pipeline scales pixels that "
                                         "the model scales again. Normalization")
    assert "use normalization 'none'" in problem.fix
    assert contradictions(rescaling_model(), "none") == []


def test_a_backbone_fed_the_wrong_range_by_the_users_layer_is_named():
    base = small("MobileNetV2", alpha=0.35)
    model = nested(base, before=[keras.layers.Rescaling(1 / 255)])
    assert inspect_model(model).normalization == "none"
    [problem] = contradictions(model)
    assert problem.id == "backbone_input_range"
    assert "is fed [0, 1]" in problem.evidence and "expects [-1, 1]" in problem.evidence
    right = nested(base, before=[keras.layers.Rescaling(1 / 127.5, offset=-1)])
    assert contradictions(right) == []


@pytest.mark.parametrize("normalization, fed", [
    ("rescale_01", "[0, 1]"), ("none", "[0, 255]"), ("torch_imagenet", "[-2.118, 2.64]"),
])
def test_a_backbone_fed_another_convention_is_named(normalization, fed):
    model = nested(small("VGG16"))
    [problem] = contradictions(model, normalization)
    assert f"is fed {fed}" in problem.evidence
    assert "expects [-123.7, 151.1]" in problem.evidence
    assert "use normalization 'caffe_bgr'" in problem.fix
    assert contradictions(model, "caffe_bgr") == []


# -- KerasHub image converters (duck-typed: keras_hub need not be installed) -------------------
class ImageConverter(keras.layers.Layer):
    """A stand-in for keras_hub.layers.ImageConverter: resize, then x * scale + offset."""

    def __init__(self, image_size, scale, offset, **kwargs):
        super().__init__(**kwargs)
        self.image_size, self.scale, self.offset = image_size, scale, offset

    def call(self, images):
        images = keras.ops.image.resize(images, self.image_size)
        return images * self.scale + self.offset


class Preprocessor:
    def __init__(self, image_converter):
        self.image_converter = image_converter


def converter_model(input_shape, num_classes, *, inside):
    converter = ImageConverter((16, 16), 1 / 127.5, -1.0)
    inputs = keras.Input((None, None, input_shape[-1]))
    x = converter(inputs) if inside else inputs
    x = keras.layers.Conv2D(4, 3)(x)
    outputs = keras.layers.Dense(num_classes)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, outputs)
    if not inside:
        model.preprocessor = Preprocessor(converter)  # a KerasHub task applies it in fit
    return model


@pytest.mark.parametrize("inside", [True, False])
def test_a_kerashub_converter_takes_raw_pixels_and_sets_the_image_size(inside):
    def model_fn(input_shape, num_classes):
        return converter_model(input_shape, num_classes, inside=inside)

    convention = inspect_model(model_fn((8, 8, 3), 3))
    assert (convention.kind, convention.normalization) == ("converter", "none")
    assert "x * 0.007843 + -1" in convention.reason
    probe = probe_model(model_fn, (8, 8, 3), 3, size_given=False)
    assert probe.image_size == (16, 16) and probe.set_by_model
    assert probe_model(model_fn, (8, 8, 3), 3, size_given=True).image_size == (8, 8)


# -- fixed input shapes --------------------------------------------------------------------------
def fixed_model(input_shape, num_classes):
    """Ignores `input_shape`: always 12x12 RGB."""
    return keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes)])


def test_a_fixed_input_shape_sets_the_image_size_and_channels():
    probe = probe_model(fixed_model, (8, 8, 1), 3, size_given=False)
    assert (probe.image_size, probe.channels) == ((12, 12), 3)
    assert probe.set_by_model == "the model's input size 12x12 and the model's 3 input channels"
    free = probe_model(rescaling_model, (8, 8, 3), 3, size_given=False)
    assert (free.image_size, free.channels, free.set_by_model) == ((8, 8), 3, "")


def test_a_fixed_input_shape_against_a_given_image_size_is_one_clear_line():
    message = (r"The model from `model_fn` fixed_model takes 12x12x3 images only \(its input "
               r"shape is fixed\), but image_size=\(8, 8\) was given\. Pass "
               r"image_size=\(12, 12\) \(--image-size 12x12\), or build the model on "
               r"`input_shape`\.$")
    with pytest.raises(ModelError, match=message):
        probe_model(fixed_model, (8, 8, 3), 3, size_given=True)


def test_a_nested_backbone_built_for_one_size_sets_the_image_size():
    base = small("MobileNetV2", alpha=0.35)  # built for 32x32

    def model_fn(input_shape, num_classes):
        return nested(base, shape=input_shape)

    probe = probe_model(model_fn, (8, 8, 3), 3, size_given=False)
    assert probe.image_size == (32, 32) and probe.input_shape == (32, 32, 3)
    with pytest.raises(ModelError, match=r"takes 32x32x3 images only.*image_size=\(8, 8\)"):
        probe_model(model_fn, (8, 8, 3), 3, size_given=True)


# -- the search space ---------------------------------------------------------------------------
def convention(normalization="rescale_pm1", kind="backbone"):
    return InputConvention(kind, normalization, "MobileNetV2 backbone 'm'", "expects x/127.5-1")


def facts(**changes):
    values = dict(mean=30.0, high=100.0, median_std=5.0, imbalance_ratio=5.0, gray=False,
                  flip="horizontal")
    return DataFacts(**{**values, **changes})


def test_the_models_convention_fixes_the_normalization_and_the_seeds_follow():
    space, fitted = fit_space(SearchSpace(rotation=(0.0, 0.2)), convention())
    assert fitted.search == FIXED and fitted.given is None
    assert space.dimensions["normalization"] == "rescale_pm1"
    assert space.dimensions["rotation"] == (0.0, 0.2)
    seeds = space.seed_configurations(facts())
    assert len(seeds) >= 3 and {seed["normalization"] for seed in seeds} == {"rescale_pm1"}
    assert "normalization fixed to rescale_pm1 by the model" in fitted.describe()


def test_a_normalization_the_user_gives_wins_with_a_warning_when_it_contradicts():
    with pytest.warns(InputConventionWarning, match="normalization rescale_01 as given in the "
                      "search space, although the model expects rescale_pm1"):
        space, fitted = fit_space(SearchSpace(normalization="rescale_01"), convention())
    assert space.dimensions["normalization"] == "rescale_01"
    assert (fitted.search, fitted.given, fitted.contradicted) == (GIVEN, ("rescale_01",), True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        space, fitted = fit_space(SearchSpace(normalization="rescale_pm1"), convention())
        assert not fitted.contradicted
        space, fitted = fit_space(SearchSpace(), convention(None, "none"))
    assert space.dimensions["normalization"] == SearchSpace().dimensions["normalization"]
    assert fitted.search == "searched"


def test_the_record_round_trips_and_old_results_have_none():
    record = fit_space(SearchSpace(), convention())[1]
    assert InputConvention.from_dict(record.to_dict()) == record
    assert recorded({"input_convention": {**record.to_dict(), "later_key": 1}}) == record
    assert recorded({"class_names": ["a"]}) is None
    assert recorded({"input_convention": "garbage"}) is None


def test_efficientnetv2_variants_differ_and_a_renamed_one_is_not_guessed():
    family = family_named("EfficientNetV2")
    assert family.normalization_of("efficientnetv2-b2") == "torch_imagenet"
    assert family.normalization_of("efficientnetv2-s") == "rescale_128"
    assert family.normalization_of("features") is None
    record = InputConvention("backbone", None, "EfficientNetV2 backbone 'features'",
                             "variant not recognized")
    assert record.describe() == ("normalization searched: EfficientNetV2 backbone 'features': "
                                 "variant not recognized")
