"""Augmentation ops: Keras preprocessing layers applied to training batches only.

Each op is one class naming its Keras layer(s) and their arguments (`layer_specs`).
`build_layers()` makes the live layers for a trial; `sources()` writes the same constructor
calls for the exported module.
Ops run on float32 pixels in [0, 255], before normalization, so no op depends on the
normalization method. An intensity of 0 switches an op off.
"""

import keras
import tensorflow as tf

from autoprep._registry import Registry
from autoprep.choices.base import Choice, Dimension, Selector, function_source
from autoprep.errors import ArgumentError

AUGMENTATIONS = Registry("augmentation")
FLIP_MODES = ("none", "horizontal", "vertical", "horizontal_and_vertical")
VALUE_RANGE = (0, 255)
# The `policy` search dimension: "none" or one registered policy (an op with `policy = True`).
# Policies are rare in the prior: "none" 4 times in 5.
POLICY_SELECTOR = Selector(
    "policy", AUGMENTATIONS, default="none", members=lambda cls: cls.policy, off="none",
    off_prior=0.8,
)
# The prior of an op's levels (off, light, medium, strong): most ops off, strength grows from
# light, so a random configuration has about two light ops on (not five strong ones).
OP_PRIOR = (0.7, 0.18, 0.08, 0.04)
# The prior of a policy's strength levels (light, medium, strong), once the policy is picked.
POLICY_STRENGTH_PRIOR = (0.6, 0.3, 0.1)


def augment(images, labels, layers, mix=None):
    """Applies the augmentation layers to a float32 batch; a mixing layer also mixes labels."""
    for layer in layers:
        images = layer(images, training=True)
    if mix is not None:
        mixed = mix({"images": images, "labels": labels}, training=True)
        images, labels = mixed["images"], mixed["labels"]
    return images, labels


class TracedAugmentation:
    """Plain augmentation layers called through one `tf.function`, for the datasets of a trial.

    `dataset.map` traces its function anew for every dataset, and tracing Keras' random
    layers is most of the cost of building a training dataset (about 0.03 s per layer on two
    CPU cores). Called through this object, the layers are traced once and the folds of a
    trial reuse the trace; the layers' seed generators carry on from one dataset to the next.

    It stands in `augment`'s list of layers: `TracedAugmentation(layers)(images,
    training=True)` is `augment(images, labels, layers)[0]`.
    """

    def __init__(self, layers):
        self.layers = list(layers)
        as_is = tf.autograph.experimental.do_not_convert  # the layers call no Python branch
        self._traced = tf.function(as_is(self._apply), reduce_retracing=True)

    def _apply(self, images):
        return augment(images, None, self.layers)[0]

    def __call__(self, images, training=True):
        return self._traced(images) if training else images


class AugmentationOp(Choice):
    """Base class: one Keras layer, on when its intensity is above 0.

    An op declares its search dimension (named after the op, setting `intensity`) through
    `levels` (light, medium, strong; 0 = off comes first, with prior `OP_PRIOR`) or, without
    levels, `search_range`; `search_step` is the step of ranges. A policy (`policy = True`) is
    picked by the `policy` dimension, and its strength dimension is conditional on it.
    `light_seed` ops are on, at their light level, in the data-seeded light configuration.

    Args:
        intensity: Strength of the op (the layer's `factor` unless a subclass says otherwise).
    """

    layer_name = None
    mixes_labels = False  # MixUp and CutMix need one-hot labels
    policy = False  # a policy is picked by the `policy` dimension, at most one per pipeline
    max_intensity = 1.0
    levels = None  # (light, medium, strong): the search's candidates (after 0 = off for ops)
    search_range = (0.0, 0.2)  # the search's default range for an op without `levels`
    search_step = 0.05  # the step of a range (also of a range a user gives)
    light_seed = False  # on (light) in the seeded light-augmentation configuration

    def __init__(self, *, intensity: float = 0.0):
        self.intensity = intensity
        self.validate()

    @classmethod
    def search_dimensions(cls):
        values, prior = cls.search_range, None
        if cls.levels is not None:  # a policy is off through the `policy` dimension
            values = list(cls.levels) if cls.policy else [0.0, *cls.levels]
            prior = POLICY_STRENGTH_PRIOR if cls.policy else OP_PRIOR
        limits = (0.0, float(cls.max_intensity))
        return (
            Dimension(cls.name, values, param="intensity", step=cls.search_step,
                      limits=limits, prior=prior),
        )

    def validate(self):
        if not 0 <= self.intensity <= self.max_intensity:
            raise ArgumentError(
                f"`{self.name}` intensity must be in [0, {self.max_intensity}]. "
                f"Received: {self.name}={self.intensity!r}"
            )
        return self

    @property
    def active(self) -> bool:
        return self.intensity > 0

    def layer_kwargs(self) -> dict:
        return {"factor": float(self.intensity)}

    def layer_specs(self) -> list:
        """(Keras layer class name, constructor kwargs) of each layer this op applies."""
        return [(self.layer_name, self.layer_kwargs())]

    def build_layers(self) -> list:
        """The live Keras layers of this op."""
        return [getattr(keras.layers, name)(**kwargs) for name, kwargs in self.layer_specs()]

    def sources(self) -> list:
        """The same layers as constructor calls in the exported module."""
        return [
            f"tf.keras.layers.{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
            for name, kwargs in self.layer_specs()
        ]


@AUGMENTATIONS.register("flip")
class Flip(AugmentationOp):
    """Random flips: `mode` is one of none, horizontal, vertical, horizontal_and_vertical."""

    layer_name = "RandomFlip"
    dimensions = (
        Dimension("flip", list(FLIP_MODES), param="mode", prior=(0.7, 0.2, 0.05, 0.05)),
    )

    def __init__(self, *, mode: str = "none"):
        self.mode = mode
        self.validate()

    @classmethod
    def search_dimensions(cls):
        return cls.dimensions

    def validate(self):
        if self.mode not in FLIP_MODES:
            raise ArgumentError(
                f"`flip` must be one of {', '.join(FLIP_MODES)}. Received: flip={self.mode!r}"
            )
        return self

    @property
    def active(self):
        return self.mode != "none"

    def layer_specs(self):
        # Keras' RandomFlip("horizontal_and_vertical") draws one flag for both axes (a 180
        # degree turn); two layers flip each axis independently.
        both = self.mode == "horizontal_and_vertical"
        modes = ["horizontal", "vertical"] if both else [self.mode]
        return [(self.layer_name, {"mode": mode}) for mode in modes]


@AUGMENTATIONS.register("rotation")
class Rotation(AugmentationOp):
    """Random rotation by up to `intensity` x 360 degrees either way."""

    layer_name = "RandomRotation"
    levels = (0.05, 0.1, 0.2)
    search_step = 0.05
    max_intensity = 0.5

    def layer_kwargs(self):
        return {"factor": float(self.intensity), "fill_mode": "constant"}


@AUGMENTATIONS.register("zoom")
class Zoom(AugmentationOp):
    """Random zoom in or out by up to `intensity` of the image size."""

    layer_name = "RandomZoom"
    light_seed = True
    levels = (0.05, 0.1, 0.2)
    search_step = 0.05

    def layer_kwargs(self):
        return {"height_factor": float(self.intensity), "fill_mode": "constant"}


@AUGMENTATIONS.register("translation")
class Translation(AugmentationOp):
    """Random shift by up to `intensity` of the height and width."""

    layer_name = "RandomTranslation"
    light_seed = True
    levels = (0.05, 0.1, 0.2)
    search_step = 0.05

    def layer_kwargs(self):
        factor = float(self.intensity)
        return {"height_factor": factor, "width_factor": factor, "fill_mode": "constant"}


@AUGMENTATIONS.register("contrast")
class Contrast(AugmentationOp):
    """Random contrast change by up to `intensity`."""

    layer_name = "RandomContrast"
    levels = (0.1, 0.2, 0.4)
    search_step = 0.1

    def layer_kwargs(self):
        # (lower, upper): Keras 3 turns a single float f into [1, 1 + f], never less contrast.
        factor = float(self.intensity)
        return {"factor": (factor, factor), "value_range": VALUE_RANGE}


@AUGMENTATIONS.register("brightness")
class Brightness(AugmentationOp):
    """Random brightness shift by up to `intensity` of the value range."""

    layer_name = "RandomBrightness"
    levels = (0.1, 0.2, 0.3)
    search_step = 0.1

    def layer_kwargs(self):
        return {"factor": float(self.intensity), "value_range": VALUE_RANGE}


@AUGMENTATIONS.register("rand_augment")
class RandAugment(AugmentationOp):
    """Keras' RandAugment policy: two random ops per image at magnitude `intensity`."""

    layer_name = "RandAugment"
    levels = (0.2, 0.5, 0.8)
    search_step = 0.2
    policy = True

    def layer_kwargs(self):
        return {"value_range": VALUE_RANGE, "num_ops": 2, "factor": float(self.intensity)}


@AUGMENTATIONS.register("mixup")
class MixUp(AugmentationOp):
    """MixUp: blends image pairs and their labels; `intensity` is the Beta distribution's alpha."""

    layer_name = "MixUp"
    levels = (0.1, 0.2, 0.4)
    search_step = 0.1
    policy = True
    mixes_labels = True

    def layer_kwargs(self):
        return {"alpha": float(self.intensity)}


@AUGMENTATIONS.register("cutmix")
class CutMix(AugmentationOp):
    """CutMix: pastes a patch of another image, mixing labels by area (`intensity`: factor)."""

    layer_name = "CutMix"
    levels = (0.5, 0.75, 1.0)
    search_step = 0.25
    policy = True
    mixes_labels = True

    def layer_kwargs(self):
        return {"factor": float(self.intensity)}



class TrivialAugmentLayer(tf.keras.layers.Layer):
    """TrivialAugment (Muller & Hutter 2021): each image gets one op, picked uniformly (the
    identity included), at a strength drawn uniformly up to `strength` (1 = the full range)."""

    def __init__(self, strength=1.0, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(**kwargs)
        self.strength, self.value_range, self.seed = float(strength), tuple(value_range), seed
        s, layers = self.strength, tf.keras.layers
        self.ops = [
            layers.RandomRotation(s * 30 / 360, fill_mode="constant", seed=seed),
            layers.RandomShear(x_factor=s * 0.3, y_factor=s * 0.3, fill_mode="constant", seed=seed),
            layers.RandomTranslation(s * 0.3, s * 0.3, fill_mode="constant", seed=seed),
            layers.RandomContrast((s * 0.9, s * 0.9), value_range=value_range, seed=seed),
            layers.RandomBrightness(s * 0.3, value_range=value_range, seed=seed),
            layers.RandomSharpness((0.0, s * 0.9), value_range=value_range, seed=seed),
            layers.Solarization(threshold_factor=(1.0 - s, 1.0), value_range=value_range,
                                seed=seed),
            layers.AutoContrast(value_range=value_range),
            layers.Equalization(value_range=value_range),
        ]

    def build(self, input_shape):
        for op in self.ops:
            op.build(input_shape)
        self.built = True

    def call(self, images, training=True):
        if not training:
            return images
        candidates = tf.stack([images] + [op(images, training=True) for op in self.ops], axis=1)
        picks = tf.random.uniform(
            tf.shape(images)[:1], 0, len(self.ops) + 1, dtype=tf.int32, seed=self.seed
        )
        return tf.gather(candidates, picks, axis=1, batch_dims=1)

    def get_config(self):
        return {**super().get_config(), "strength": self.strength,
                "value_range": self.value_range, "seed": self.seed}


@AUGMENTATIONS.register("trivial_augment")
class TrivialAugment(AugmentationOp):
    """TrivialAugment as a policy: one random op per image at a uniformly random strength; a
    zero-search reference (its one strength, 1.0, is TrivialAugment's full range)."""

    layer_name = "TrivialAugmentLayer"
    levels = (1.0,)
    policy = True

    def layer_kwargs(self):
        return {"strength": float(self.intensity), "value_range": VALUE_RANGE}

    def build_layers(self):
        return [TrivialAugmentLayer(**self.layer_kwargs())]

    def sources(self):
        kwargs = ", ".join(f"{k}={v!r}" for k, v in self.layer_kwargs().items())
        return [f"TrivialAugmentLayer({kwargs})"]

    def module_sources(self):
        return [function_source(TrivialAugmentLayer)]
