"""What the user's model expects of its input, read from the built model before the first trial.

`inspect_model(model)` returns an `InputConvention` (`autoprep.run.convention`). The rule, in
this order:

1. A KerasHub image converter (`model.preprocessor.image_converter`, or a layer with `scale`,
   `offset` and `image_size` attributes) scales the pixels itself: the pipeline feeds raw
   0-255 pixels (normalization "none").
2. Preprocessing layers (`Rescaling`, `Normalization`) before the first layer with weights,
   nested models included (a Keras Applications backbone built with
   `include_preprocessing=True` has them): raw 0-255 pixels ("none"), never scaled twice.
3. A Keras Applications backbone reached before the first layer with weights (the model
   itself, or a nested model as in `x = base(inputs)`, after the user's augmentation layers
   or not), without preprocessing layers: its family's convention (`FAMILIES`), as its
   `preprocess_input` (or, for a family that builds its preprocessing in, as those layers).
4. Otherwise none: the normalization is searched.

A backbone is recognized by its name as Keras Applications sets it (`mobilenetv2_1.00_224`,
`resnet50`, `efficientnetv2-s`), else by its layer names: every family has a `signature` of
layer names that each of its models has and that no model of another family has all of
(`conv_dw_1` and `conv_pw_1` for MobileNet, `conv2_block1_preact_bn` and `post_bn` for
ResNetV2...), so a backbone renamed with `name=` is still recognized. Layers that compute
without weights (a Lambda dividing by 255) are invisible here.

`probe_model` builds the model before the images are decoded, so that a model whose input
shape is fixed sets the image size; `fit_space` fixes the search's normalization.
"""

import dataclasses
import re
import warnings
from typing import NamedTuple

import keras
import keras_tuner as kt
import numpy as np

from autoprep.choices.normalization import NORMALIZATIONS, SELECTOR
from autoprep.data.decode import plan_decoding
from autoprep.errors import InputConventionWarning, ModelError
from autoprep.run.convention import FIXED, GIVEN, InputConvention
from autoprep.search.hypermodel import call_model_fn

_SCALING_LAYERS = (keras.layers.Rescaling, keras.layers.Normalization)
_PREPROCESSING_MODULE = "keras.src.layers.preprocessing"
RANGE_TOLERANCE = 0.1  # a fed range this far (share of the expected span) from the expected


@dataclasses.dataclass(frozen=True)
class Family:
    """A Keras Applications family and the input convention of its ImageNet weights.

    Attributes:
        name: The family, as in the docs (e.g. "MobileNetV2").
        constructors: The `keras.applications` functions that build it.
        model_name: A regular expression matching every name Keras Applications gives it.
        signature: Layer names that every model of the family has and no other family has
            all of.
        normalization: What it expects without its own preprocessing layers (None: it always
            builds them in), or {variant name regex: normalization} when variants differ.
        expects: The convention in words.
        built_in: Whether its models build their preprocessing layers in by default
            (`include_preprocessing=True`): then they take raw 0-255 pixels.
    """

    name: str
    constructors: tuple
    model_name: str
    signature: tuple
    normalization: object
    expects: str
    built_in: bool = False

    def normalization_of(self, model_name: str):
        """The normalization a model of this family (named `model_name`) expects, or None."""
        if not isinstance(self.normalization, dict):
            return self.normalization
        for pattern, normalization in self.normalization.items():
            if re.fullmatch(pattern, model_name):
                return normalization
        return None


_TF = "x / 127.5 - 1, into [-1, 1] (preprocess_input mode 'tf')"
_CAFFE = "RGB to BGR minus the ImageNet means, not scaled (preprocess_input mode 'caffe')"
_TORCH = "x / 255 standardized with the ImageNet mean and std (preprocess_input mode 'torch')"
FAMILIES = (
    Family("ConvNeXt",
           ("ConvNeXtTiny", "ConvNeXtSmall", "ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtXLarge"),
           r"convnext_(tiny|small|base|large|xlarge)",
           (r".*_stage_0_block_0_depthwise_conv", r".*_stem"), "torch_imagenet",
           "its own ImageNet mean and std layer, else " + _TORCH, built_in=True),
    Family("DenseNet", ("DenseNet121", "DenseNet169", "DenseNet201"),
           r"densenet(121|169|201)", ("conv1_conv", "pool2_conv", "conv2_block1_concat"),
           "torch_imagenet", _TORCH),
    Family("EfficientNet", tuple(f"EfficientNetB{i}" for i in range(8)),
           r"efficientnetb[0-7]", ("stem_conv_pad", "block1a_dwconv", "top_conv"), None,
           "its own Rescaling and Normalization layers (always built in)", built_in=True),
    Family("EfficientNetV2",
           ("EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3",
            "EfficientNetV2S", "EfficientNetV2M", "EfficientNetV2L"),
           r"efficientnetv2-(b[0-3]|s|m|l)",
           ("stem_conv", "block1a_project_activation", "top_conv"),
           {r"efficientnetv2-b[0-3]": "torch_imagenet", r"efficientnetv2-[sml]": "rescale_128"},
           "its own preprocessing layers, else (as they do) B0-B3: " + _TORCH
           + "; S, M, L: x / 128 - 1", built_in=True),
    Family("InceptionResNetV2", ("InceptionResNetV2",), r"inception_resnet_v2",
           ("mixed_5b", "block35_1_conv", "conv_7b"), "rescale_pm1", _TF),
    Family("InceptionV3", ("InceptionV3",), r"inception_v3",
           ("mixed0", "mixed5", "mixed10"), "rescale_pm1", _TF),
    Family("MobileNet", ("MobileNet",), r"mobilenet_\d+\.\d\d_\d+",
           ("conv1", "conv_dw_1", "conv_pw_1"), "rescale_pm1", _TF),
    Family("MobileNetV2", ("MobileNetV2",), r"mobilenetv2_\d+\.\d\d_\d+",
           ("Conv1", "bn_Conv1", "expanded_conv_depthwise", "block_1_expand"), "rescale_pm1",
           _TF),
    Family("MobileNetV3", ("MobileNetV3Small", "MobileNetV3Large"),
           r"MobileNetV3(Small|Large)", ("conv", "conv_bn", "expanded_conv_project"),
           "rescale_pm1", "its own Rescaling layer, else " + _TF, built_in=True),
    Family("NASNet", ("NASNetMobile", "NASNetLarge"), r"nasnet_(mobile|large)|NASNet",
           ("stem_conv1", "reduction_conv_1_stem_1"), "rescale_pm1", _TF),
    Family("ResNet", ("ResNet50", "ResNet101", "ResNet152"), r"resnet(50|101|152)",
           ("conv1_conv", "conv1_bn", "conv2_block1_add"), "caffe_bgr", _CAFFE),
    Family("ResNetV2", ("ResNet50V2", "ResNet101V2", "ResNet152V2"), r"resnet(50|101|152)v2",
           ("conv1_conv", "conv2_block1_preact_bn", "post_bn"), "rescale_pm1", _TF),
    Family("VGG", ("VGG16", "VGG19"), r"vgg1[69]",
           ("block1_conv1", "block1_pool", "block5_conv3"), "caffe_bgr", _CAFFE),
    Family("Xception", ("Xception",), r"xception",
           ("block1_conv1", "block2_sepconv1", "block14_sepconv2"), "rescale_pm1", _TF),
)


def family_of(model):
    """The `Family` of a Keras Applications model (by its name, else its layer names), or None."""
    name = getattr(model, "name", "")
    for family in FAMILIES:
        if re.fullmatch(family.model_name, name):
            return family
    names = [layer.name for layer in getattr(model, "layers", [])]
    for family in FAMILIES:
        if all(any(re.fullmatch(pattern, n) for n in names) for pattern in family.signature):
            return family
    return None


class _Stem(NamedTuple):
    """What the pixels meet before the first layer with weights."""

    scaling: list  # Rescaling / Normalization layers, in call order
    backbone: object  # the first Keras Applications model entered, or None
    outer: list  # the scaling layers met before entering the backbone
    converter: object  # a KerasHub image converter, or None


def _stem(model) -> _Stem:
    scaling, outer, found = [], [], {"backbone": None, "converter": _attached_converter(model)}

    def visit(current) -> bool:  # True once a layer with weights is reached
        if found["backbone"] is None and family_of(current) is not None:
            found["backbone"] = current
            outer.extend(scaling)
        for layer in getattr(current, "layers", []):
            if isinstance(layer, keras.Model):
                if visit(layer):
                    return True
            elif isinstance(layer, _SCALING_LAYERS):
                scaling.append(layer)
            elif _is_converter(layer):
                found["converter"] = found["converter"] or layer
            elif layer.weights and not type(layer).__module__.startswith(_PREPROCESSING_MODULE):
                return True
        return False

    visit(model)
    return _Stem(scaling, found["backbone"], outer, found["converter"])


def _is_converter(layer) -> bool:
    return all(hasattr(layer, attr) for attr in ("scale", "offset", "image_size"))


def _attached_converter(model):
    """A KerasHub task's `preprocessor.image_converter` (applied by its `fit`), or None."""
    converter = getattr(getattr(model, "preprocessor", None), "image_converter", None)
    return converter if converter is not None and _is_converter(converter) else None


def inspect_model(model) -> InputConvention:
    """What `model` expects of its input pixels (see the module's rule).

    Returns:
        An `InputConvention` whose `normalization` is the registered normalization to feed
        the model, or None when the model says nothing.
    """
    stem = _stem(model)
    if stem.converter is not None:
        converter = stem.converter
        return InputConvention(
            "converter", "none", f"KerasHub image converter {_name(converter)}",
            f"it applies x * {_short(converter.scale)} + {_short(converter.offset)} to raw "
            "0-255 pixels itself",
        )
    if stem.scaling:
        where = ", ".join(_layer_text(layer) for layer in stem.scaling)
        source = f"preprocessing layers inside the model: {where}"
        if stem.backbone is not None and not stem.outer:
            source = (f"{family_of(stem.backbone).name} backbone {_name(stem.backbone)} with "
                      f"its own preprocessing layers: {where}")
        return InputConvention(
            "in_model", "none", source,
            "it scales raw 0-255 pixels itself; scaling them before would scale them twice",
        )
    if stem.backbone is not None:
        family = family_of(stem.backbone)
        normalization = family.normalization_of(stem.backbone.name)
        source = f"{family.name} backbone {_name(stem.backbone)}"
        if normalization is None:
            return InputConvention("backbone", None, source, "variant not recognized; expects "
                                   + family.expects)
        return InputConvention("backbone", normalization, source, "expects " + family.expects)
    return InputConvention("none", None, "", "no preprocessing layer before its first "
                           "weights, no Keras Applications backbone, no KerasHub converter")


def _name(layer) -> str:
    return repr(getattr(layer, "name", type(layer).__name__))


def _short(value) -> str:
    if value is None:
        return "None"
    values = np.ravel(np.asarray(keras.ops.convert_to_numpy(value), float))
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]" if values.size > 1 else (
        f"{float(values[0]):.4g}" if values.size else "?")


def _layer_text(layer) -> str:
    if isinstance(layer, keras.layers.Rescaling):
        return f"Rescaling {_name(layer)} (x * {_short(layer.scale)} + {_short(layer.offset)})"
    return f"{type(layer).__name__} {_name(layer)}"


# -- ranges: does each part of the model receive the range it expects? -----------------------
def _probe_pixels(channels) -> np.ndarray:
    """One 2x2 image per channel count: black and white in a checkerboard (uint8)."""
    image = np.array([[0, 255], [255, 0]], np.uint8)[None, :, :, None]
    return np.repeat(image, channels, axis=-1)


def value_range(values) -> tuple:
    values = np.asarray(keras.ops.convert_to_numpy(values), float)
    return float(values.min()), float(values.max())


def normalization_range(normalization, channels=3) -> tuple:
    """(low, high) that a normalization (a name, or a fitted `Normalization`) maps 0-255 to."""
    if isinstance(normalization, str):
        normalization = NORMALIZATIONS.get(normalization)()
    return value_range(normalization(_probe_pixels(channels)))


def _through(layers, values):
    for layer in layers:
        values = layer(keras.ops.convert_to_tensor(values, "float32"))
    return values


def _input_channels(model) -> int:
    shape = model_input_shape(model)
    return 3 if shape is None or shape[-1] is None else int(shape[-1])


class Contradiction(NamedTuple):
    """A part of the model fed pixels in a range it does not expect."""

    id: str  # "double_scaling" or "backbone_input_range"
    title: str
    evidence: str
    fix: str

    def sentence(self) -> str:
        return f"{self.title}. {self.evidence} Fix: {self.fix}"


def contradictions(model, normalization=None) -> list:
    """Where the pixels reach the model's first scaling layer or its backbone in a range it
    does not expect, as `Contradiction`s (at most one).

    Args:
        model: The built model.
        normalization: What feeds the model: a registered name or a fitted `Normalization`
            (None: raw 0-255 pixels).
    """
    channels = _input_channels(model)
    pixels = _probe_pixels(channels).astype(np.float32)
    fed_name = "raw 0-255 pixels"
    if isinstance(normalization, str):
        normalization = NORMALIZATIONS.get(normalization)()
    if normalization is not None and normalization.name != "none":
        pixels, fed_name = normalization(pixels), f"normalization {normalization.name!r}"
    stem = _stem(model)
    if stem.scaling and normalization is not None and normalization.name != "none":
        first = stem.scaling[0]
        return [Contradiction(
            "double_scaling",
            "Double scaling: the pipeline scales pixels that the model scales again",
            f"Normalization {normalization.name!r} feeds {_layer_text(first)} inside the "
            "model, which expects raw 0-255 pixels: they arrive in "
            f"[{_range_text(value_range(pixels))}].",
            "use normalization 'none' (raw pixels; `autoprep tune` does so by default for "
            "this model), or remove the scaling layer from the model.",
        )]
    if stem.backbone is None:
        return []
    return _backbone_problem(stem, pixels, fed_name, channels)


def _backbone_problem(stem, pixels, fed_name, channels) -> list:
    family = family_of(stem.backbone)
    own = [layer for layer in stem.scaling if layer not in stem.outer]
    expected_name = "none" if own else family.normalization_of(stem.backbone.name)
    if expected_name is None:
        return []
    expected = normalization_range(expected_name, channels)
    fed = value_range(_through(stem.outer, pixels))
    span = expected[1] - expected[0]
    if max(abs(fed[0] - expected[0]), abs(fed[1] - expected[1])) <= RANGE_TOLERANCE * span:
        return []
    path = " then ".join([fed_name, *(_layer_text(layer) for layer in stem.outer)])
    wanted = ("raw 0-255 pixels, as it scales them itself" if own
              else f"normalization {expected_name!r}: {family.expects}")
    fix = (f"remove the model's scaling layers before the backbone and feed {expected_name!r}"
           if stem.outer else f"use normalization {expected_name!r}")
    if not stem.outer:
        fix += " (`autoprep tune` does so by default for this model)"
    return [Contradiction(
        "backbone_input_range", f"The {family.name} backbone is fed the wrong range",
        f"The {family.name} backbone {_name(stem.backbone)} is fed [{_range_text(fed)}] "
        f"({path}) but expects [{_range_text(expected)}], {wanted}.", fix + ".",
    )]


def _range_text(bounds) -> str:
    return f"{bounds[0]:.4g}, {bounds[1]:.4g}"


# -- the input shape -----------------------------------------------------------------------
def model_input_shape(model):
    """The model's input shape without the batch axis (None for a free dimension), or None."""
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # a subclassed model not built on an Input
        return None
    if not inputs:
        return None
    return tuple(None if d is None else int(d) for d in inputs[0].shape[1:])


class ModelInputs(NamedTuple):
    """The model built before decoding, and the images it asks for.

    Attributes:
        model: The model `model_fn` built at `input_shape`.
        input_shape: The shape it was built with (height, width, channels).
        image_size: (height, width) to decode the images at.
        channels: Channels to decode the images with.
        set_by_model: Why the model set the image size or channels ("" when it did not).
        convention: What the model expects of its pixels (`inspect_model`).
        size_given: Whether the user gave `image_size`.
    """

    model: object
    input_shape: tuple
    image_size: tuple
    channels: int
    set_by_model: str
    convention: InputConvention
    size_given: bool = False

    def decode_arguments(self, planned_shape) -> dict:
        """`image_size` and `channels` for `read_image_folder`: the size given or set by the
        model; None where neither set it, so that decoding says why it chose its size."""
        chosen = self.size_given or self.image_size != tuple(planned_shape[:2])
        return {
            "image_size": self.image_size if chosen else None,
            "channels": None if self.channels == planned_shape[2] else self.channels,
        }


def planned_shape(index, image_size=None) -> tuple:
    """(height, width, channels) the images of a `FileIndex` would be decoded at."""
    plan = plan_decoding(index, image_size=image_size)
    return (*plan.image_size, plan.channels)


_EXPECTED_SHAPE = re.compile(r"expected shape=\(None, (\d+), (\d+), (\d+)\)")


def probe_model(model_fn, planned_shape, num_classes, *, size_given: bool) -> ModelInputs:
    """Builds the model at the planned image shape and reads what it asks for.

    A model whose input shape is fixed (an `Input((96, 96, 3))` that ignores `input_shape`, or a
    backbone built for 224x224 that refuses other sizes) sets the image size, unless one was
    given, and the channels; then the images are decoded at that size.

    Args:
        model_fn: The user's `model_fn`.
        planned_shape: (height, width, channels) the images would be decoded at.
        num_classes: Number of classes.
        size_given: Whether the user gave `image_size` (then a model fixed to another size is
            an error, not a new size).

    Raises:
        ModelError: `model_fn` fails, or its fixed input size differs from a given
            `image_size` (one line naming both shapes and the fix).
    """
    planned = tuple(int(d) for d in planned_shape)
    model, built = _build(model_fn, planned, num_classes, size_given=size_given)
    fixed = model_input_shape(model) or (None, None, None)
    size = tuple(f if f is not None else b for f, b in zip(fixed[:2], built[:2]))
    if fixed[:2] == (None, None) and not size_given:
        size = converter_size(model) or size
    channels = fixed[2] if len(fixed) > 2 and fixed[2] is not None else planned[2]
    if size != planned[:2] and size_given:
        raise ModelError(_size_message(model_fn, fixed, planned))
    reasons = []
    if size != planned[:2]:
        reasons.append(f"the model's input size {size[0]}x{size[1]}")
    if channels != planned[2]:
        reasons.append(f"the model's {channels} input channels")
    return ModelInputs(model, built, size, channels, " and ".join(reasons), inspect_model(model),
                       size_given)


def converter_size(model):
    """The (height, width) a KerasHub image converter of `model` resizes to, or None."""
    converter = _stem(model).converter
    size = None if converter is None else getattr(converter, "image_size", None)
    return None if size is None else tuple(int(d) for d in size)


def _build(model_fn, shape, num_classes, *, size_given) -> tuple:
    """(model, shape): `call_model_fn` at `shape`; a nested backbone that refuses it names the
    shape it takes (Keras' "expected shape=..."), used instead when no size was given."""
    try:
        return call_model_fn(model_fn, shape, num_classes, kt.HyperParameters()), shape
    except ModelError as error:
        match = _EXPECTED_SHAPE.search(str(error))
        if match is None:
            raise
        wanted = tuple(int(d) for d in match.groups())
        if size_given or wanted == shape:
            raise ModelError(_size_message(model_fn, wanted, shape)) from error
    return call_model_fn(model_fn, wanted, num_classes, kt.HyperParameters()), wanted


def _size_message(model_fn, fixed, planned) -> str:
    name = getattr(model_fn, "__name__", repr(model_fn))
    wanted = "x".join("?" if d is None else str(d) for d in fixed)
    height, width = (f if f is not None else p for f, p in zip(fixed[:2], planned[:2]))
    return (f"The model from `model_fn` {name} takes {wanted} images only (its input shape is "
            f"fixed), but image_size={tuple(planned[:2])!r} was given. Pass "
            f"image_size=({height}, {width}) (--image-size {height}x{width}), or build the model "
            "on `input_shape`.")


# -- the search space ------------------------------------------------------------------------
def fit_space(space, convention: InputConvention, model=None):
    """The search space with its normalization fixed to what the model expects.

    A normalization the user gave in `space` (anything but the default candidates) wins; when
    it contradicts the model, an `InputConventionWarning` says so. With `model`, what the
    pipeline will feed it is checked too (`contradictions`): such problems are recorded in
    the convention and warned about instead.

    Returns:
        (space, convention): the space to search and the convention with `search`, `given`
        and `problems`.
    """
    # Imported here: `space` imports the doctor's thresholds, whose model checks import this.
    from autoprep.search.space import SearchSpace

    chosen = space.dimensions["normalization"]
    given = None if chosen == list(SELECTOR.dimension().values) else (
        tuple(chosen) if isinstance(chosen, list) else (chosen,))
    if given is not None:
        convention = dataclasses.replace(convention, search=GIVEN, given=given)
    elif convention.normalization is not None:
        config = dict(space.get_config(), normalization=convention.normalization)
        space = SearchSpace.from_config(config)
        convention = dataclasses.replace(convention, search=FIXED)
    problems = () if model is None else _problems(model, given or [convention.normalization])
    convention = dataclasses.replace(convention, problems=problems)
    if not problems and convention.contradicted:
        problems = (convention.describe() + ".",)
    for problem in problems:
        warnings.warn(problem, InputConventionWarning, stacklevel=3)
    return space, convention


def _problems(model, names) -> tuple:
    """The contradictions of feeding `model` each of these normalizations, as sentences."""
    problems = []
    for name in names:
        # A normalization with learned constants is judged by its name alone.
        if name is not None and NORMALIZATIONS.get(name)().fitted:
            problems += [p.sentence() for p in contradictions(model, name)
                         if p.sentence() not in problems]
    return tuple(problems)
