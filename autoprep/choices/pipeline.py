"""A pipeline: one normalization, a list of augmentation ops and one imbalance strategy.

`build_train_dataset` and `build_eval_dataset` are written in TensorFlow only and are copied
verbatim into the exported module, so a trial and the exported code assemble their datasets
with the same function; only the source of the images differs (memory here, files there).
Their map functions run with AutoGraph off (`do_not_convert`): every choice branches on tensors
with `tf.cond` only, and AutoGraph cannot read a lambda of a module imported with importlib.
"""

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from autoprep.choices.augmentation import AUGMENTATIONS, TracedAugmentation, augment
from autoprep.choices.base import MAX_NAME_LENGTH, Choice
from autoprep.choices.imbalance import (
    IMBALANCE_STRATEGIES,
    DeferredReweighting,
    add_sample_weights,
)
from autoprep.choices.normalization import NORMALIZATIONS
from autoprep.data.subset import Subset
from autoprep.errors import ArgumentError, ConfigError, short


def build_train_dataset(
    class_datasets, *, sampler, batch_size, seed, normalize, layers, mix, num_classes,
    class_weights=None, gate=None, load=None,
):
    """Samples, batches, augments (training only) and normalizes (image, label) pairs.

    With `load`, the class datasets hold (index, label) pairs and `load` reads a batch of
    images from a batch of indices; with `normalize` None, batches of indices are left as they
    are (a layer reads them on the device: `autoprep.search.device_input`).
    """
    as_is = tf.autograph.experimental.do_not_convert  # no Python branch on tensors: no AutoGraph
    dataset = sampler(class_datasets, seed)
    if mix is not None:
        dataset = dataset.map(as_is(lambda image, label: (image, tf.one_hot(label, num_classes))))
    dataset = dataset.batch(batch_size)
    if load is not None:
        dataset = dataset.map(as_is(lambda indices, labels: (load(indices), labels)),
                              num_parallel_calls=tf.data.AUTOTUNE)

    @as_is
    def augment_and_normalize(images, labels):
        images, labels = augment(tf.cast(images, tf.float32), labels, layers, mix)
        return normalize(images), labels

    # Random layers advance one shared seed state per call: with a seed, batches are augmented
    # in order (a parallel map would advance it in thread order, changing the draws per run).
    # Without random layers the map draws nothing: it runs in parallel, keeping the order.
    draws = bool(layers) or mix is not None
    parallel = tf.data.AUTOTUNE if seed is None or not draws else None
    if normalize is not None:
        dataset = dataset.map(augment_and_normalize, num_parallel_calls=parallel)
    if gate is not None:
        dataset = dataset.map(as_is(
            lambda images, labels: add_sample_weights(images, labels, class_weights, gate)
        ))
    return dataset.prefetch(tf.data.AUTOTUNE)


def build_eval_dataset(dataset, *, batch_size, normalize, load=None):
    """Batches and normalizes images (or (image, label) pairs) without augmentation; with
    `load`, the dataset holds indices (or (index, label) pairs) and `load` reads the images."""
    as_is = tf.autograph.experimental.do_not_convert  # no Python branch on tensors: no AutoGraph
    dataset = dataset.batch(batch_size)
    load = load or (lambda images: images)
    if isinstance(dataset.element_spec, tuple):
        dataset = dataset.map(
            as_is(lambda images, labels: (normalize(load(images)), labels)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(as_is(lambda images: normalize(load(images))),
                              num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


class Pipeline:
    """The data side of one trial: normalization, augmentation ops and imbalance strategy.

    Args:
        normalization: A registered normalization (name or config dict).
        augmentation: Augmentation op configs or instances; inactive ops (intensity 0) are dropped.
        imbalance: A registered imbalance strategy (name or config dict).

    Example:
        >>> pipeline = Pipeline(normalization="per_channel", imbalance="oversample")
        >>> pipeline.fit(train_images, train_labels, num_classes=3)
        >>> train_ds, fit_kwargs = pipeline.train_dataset(train_images, train_labels,
        ...                                               num_classes=3, batch_size=32, epochs=10)
    """

    def __init__(self, *, normalization="rescale_01", augmentation=(), imbalance="none"):
        self.normalization = _make(NORMALIZATIONS, normalization)
        ops = [_make(AUGMENTATIONS, op) for op in augmentation]
        self.augmentation = [op for op in ops if op.active]
        mixers = [op.name for op in self.augmentation if op.mixes_labels]
        if len(mixers) > 1:
            raise ArgumentError(
                f"At most one label-mixing augmentation per pipeline. Received: {mixers}"
            )
        self.imbalance = _make(IMBALANCE_STRATEGIES, imbalance)

    # -- configuration -------------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "normalization": self.normalization.get_config(),
            "augmentation": [op.get_config() for op in self.augmentation],
            "imbalance": self.imbalance.get_config(),
        }

    @classmethod
    def from_config(cls, config: dict) -> "Pipeline":
        """Rebuilds a pipeline from `get_config()`; refuses keys and values no choice declares.

        Raises:
            ConfigError: naming the offending key.
        """
        keys = ("normalization", "augmentation", "imbalance")
        if not isinstance(config, dict) or not set(config) <= set(keys):
            extra = sorted(map(str, set(config) - set(keys))) if isinstance(config, dict) else []
            raise ConfigError(
                f"A pipeline config must be a dict with keys {', '.join(keys)}. "
                f"Received: {short(extra[0]) if extra else short(config)}"
            )
        augmentation = config.get("augmentation", [])
        if not isinstance(augmentation, list):
            raise ConfigError(
                f"`augmentation` must be a list of op configs. Received: {short(augmentation)}"
            )
        return cls(**config)

    def check_sizes(self, *, channels: int, num_classes: int) -> "Pipeline":
        """Checks that learned values have one item per channel or per class.

        Raises:
            ConfigError: naming the learned value.
        """
        for choice in self.choices:
            choice.check_sizes(channels=channels, classes=num_classes)
        return self

    def clone(self) -> "Pipeline":
        """A copy of this pipeline's choices, without learned values."""
        return Pipeline.from_config(_unfitted(self.get_config()))

    @property
    def choices(self) -> list:
        """Every choice of this pipeline: normalization, augmentation ops, imbalance strategy."""
        return [self.normalization, *self.augmentation, self.imbalance]

    @property
    def mix_op(self):
        """The label-mixing op (MixUp or CutMix), or None."""
        return next((op for op in self.augmentation if op.mixes_labels), None)

    @property
    def plain_ops(self) -> list:
        return [op for op in self.augmentation if not op.mixes_labels]

    def augmentation_layers(self) -> list:
        """Fresh Keras layers of the ops that do not mix labels."""
        return [layer for op in self.plain_ops for layer in op.build_layers()]

    def traced_augmentation(self):
        """The ops that do not mix labels as one `TracedAugmentation` (fresh layers), to share
        between the training datasets of one trial; None without such ops."""
        layers = self.augmentation_layers()
        return TracedAugmentation(layers) if layers else None

    # -- learning from the training split ------------------------------------------------
    def fit(self, images, labels, num_classes: int) -> "Pipeline":
        """Learns normalization statistics and class weights from the training split only.

        `images` may be an array or a `Subset` of one (read in chunks, not copied)."""
        self.normalization.fit(Subset.of(images))
        self.imbalance.fit(labels, num_classes)
        return self

    # -- live datasets -------------------------------------------------------------------
    def fit_arguments(self, epochs: int) -> dict:
        """What `model.fit` gets beside the data, described once for both renderings.

        Values are literals or `Call`s; `GATE` stands for the deferred re-weighting gate
        (the live `tf.Variable` in a trial, `CLASS_WEIGHT_GATE` in the exported module).
        """
        # The dataset shuffles itself (its sampler): Keras' own `shuffle=True`, the default,
        # does nothing to a dataset but warn that it does nothing.
        arguments = {"shuffle": False}
        class_weight = self.imbalance.fit_class_weight()
        if class_weight is not None:
            arguments["class_weight"] = class_weight
        elif self.imbalance.deferred:
            start = self.imbalance.start_epoch(epochs)
            arguments["callbacks"] = [Call(DeferredReweighting, (GATE,), {"start_epoch": start})]
        return arguments

    def fit_kwargs(self, epochs: int, gate=None) -> dict:
        """Keyword arguments for `model.fit` (no shuffle; class weights, or the re-weighting
        callback)."""
        return _render(self.fit_arguments(epochs), lambda call: call.build(gate))

    def fit_kwargs_source(self, epochs: int) -> str:
        """`fit_kwargs` as Python source for the exported module."""
        return repr(_render(self.fit_arguments(epochs), lambda call: _Source(call.source())))

    def train_dataset(self, images, labels, *, num_classes, batch_size, epochs, seed=None,
                      indices_only=False, augmentation=None):
        """The training `tf.data.Dataset` and the `fit` kwargs that go with it.

        The dataset samples indices of `images` (an array or a `Subset` of one) and reads
        each batch of images from the array: the images are not copied. With `indices_only`,
        it yields the batches of indices (positions in the full array) and labels, for
        `autoprep.search.device_input.DeviceBatches` to read, augment and normalize.
        `augmentation` is this pipeline's `traced_augmentation()` when another dataset
        already traced it (fresh layers otherwise).
        """
        images, labels = Subset.of(images), np.asarray(labels)
        class_datasets = [
            tf.data.Dataset.from_tensor_slices((images.indices[labels == c], labels[labels == c]))
            for c in range(num_classes)
        ]
        gate = tf.Variable(0.0, trainable=False) if self.imbalance.deferred else None
        mix = self.mix_op
        if indices_only and mix is not None:
            raise ArgumentError(f"`indices_only` yields the labels as sampled, and {mix.name} "
                                "mixes them with the images: read this pipeline's images here.")
        dataset = build_train_dataset(
            [d for d in class_datasets if int(d.cardinality()) > 0],
            sampler=self.imbalance.sampler,
            batch_size=batch_size,
            seed=seed,
            normalize=None if indices_only else self.normalization,
            layers=_augmentation_layers(self, augmentation, indices_only),
            mix=None if mix is None else mix.build_layers()[0],
            num_classes=num_classes,
            class_weights=self.imbalance.dataset_class_weights(),
            gate=gate,
            load=None if indices_only else images.load_batch,
        )
        return dataset, self.fit_kwargs(epochs, gate)

    def eval_dataset(self, images, labels=None, *, batch_size=32):
        """Batches of normalized images (with labels when given); no augmentation. `images`
        may be an array or a `Subset` of one: each batch is read from the array, not copied."""
        images = Subset.of(images)
        elements = images.indices if labels is None else (images.indices, np.asarray(labels))
        return build_eval_dataset(
            tf.data.Dataset.from_tensor_slices(elements),
            batch_size=batch_size,
            normalize=self.normalization,
            load=images.load_batch,
        )

    def __repr__(self):
        return f"Pipeline({self.get_config()})"


def _augmentation_layers(pipeline, augmentation, indices_only) -> list:
    if indices_only:
        return []
    return pipeline.augmentation_layers() if augmentation is None else [augmentation]


GATE = "CLASS_WEIGHT_GATE"  # the gate's name in the exported module


class Call(NamedTuple):
    """A constructor call described once: built live in a trial, written as source on export."""

    function: object
    args: tuple
    kwargs: dict

    def build(self, gate):
        args = [gate if arg is GATE else arg for arg in self.args]
        return self.function(*args, **self.kwargs)

    def source(self) -> str:
        args = [arg if arg is GATE else repr(arg) for arg in self.args]
        args += [f"{key}={value!r}" for key, value in self.kwargs.items()]
        return f"{self.function.__name__}({', '.join(args)})"


class _Source(str):
    """Source text that `repr` writes as is."""

    def __repr__(self):
        return str(self)


def _render(value, call):
    """`value` with every `Call` replaced by `call(it)`."""
    if isinstance(value, Call):
        return call(value)
    if isinstance(value, dict):
        return {key: _render(item, call) for key, item in value.items()}
    if isinstance(value, list):
        return [_render(item, call) for item in value]
    return value


def _make(registry, value):
    """A choice instance from a name, a config dict, or an instance."""
    if isinstance(value, str):
        value = {"name": value}
    if isinstance(value, dict):
        name = value.get("name")
        if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
            raise ConfigError(
                f"A {registry.kind} config needs a `name`. Received: {short(value)}"
            )
        value = registry.get(name).from_config(value)
    if not isinstance(value, Choice) or value.name not in registry:
        raise ArgumentError(f"Expected a {registry.kind}. Received: {value!r}")
    return value.validate()


def _unfitted(config):
    if isinstance(config, dict):
        return {k: _unfitted(v) for k, v in config.items() if not str(k).endswith("_")}
    if isinstance(config, list):
        return [_unfitted(v) for v in config]
    return config
