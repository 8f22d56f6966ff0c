"""Class-imbalance strategies: how often each class is seen, and how much its loss counts.

A strategy names a sampler (a TF function over one dataset per class, exported verbatim) and may
learn class weights from the training labels. Class weights go to `fit(class_weight=...)`;
deferred re-weighting switches them on later in training through sample weights in the dataset.
"""

import math

import numpy as np
import tensorflow as tf

from autoprep._registry import Registry
from autoprep.choices.base import Choice, Dimension, Selector
from autoprep.errors import ArgumentError

IMBALANCE_STRATEGIES = Registry("imbalance strategy")
# The `imbalance` search dimension: every registered strategy, inverse-frequency weights first.
SELECTOR = Selector("imbalance", IMBALANCE_STRATEGIES, default="inverse_frequency")
BETA = Dimension("beta", [0.9, 0.99, 0.999, 0.9999], limits=(1e-9, 1 - 1e-9))
REWEIGHT_START = Dimension(
    "reweight_start", (0.3, 0.8), param="start", step=0.1, limits=(0.0, 0.95)
)


def natural_sampler(class_datasets, seed):
    """Every training image once per epoch, shuffled."""
    dataset = class_datasets[0]
    for other in class_datasets[1:]:
        dataset = dataset.concatenate(other)
    size = int(dataset.cardinality())
    return dataset.shuffle(size, seed=seed, reshuffle_each_iteration=True)


def oversample(class_datasets, seed):
    """Draws every class with equal probability; an epoch keeps the training set's size."""
    size = sum(int(d.cardinality()) for d in class_datasets)
    endless = [
        d.shuffle(int(d.cardinality()), seed=seed, reshuffle_each_iteration=True).repeat()
        for d in class_datasets
    ]
    balanced = tf.data.Dataset.sample_from_datasets(
        endless, seed=seed, rerandomize_each_iteration=True
    )
    return balanced.take(size)


def undersample(class_datasets, seed):
    """Each epoch takes as many images of every class as the smallest class has."""
    smallest = min(int(d.cardinality()) for d in class_datasets)
    subsets = [
        d.shuffle(int(d.cardinality()), seed=seed, reshuffle_each_iteration=True).take(smallest)
        for d in class_datasets
    ]
    balanced = tf.data.Dataset.sample_from_datasets(
        subsets, seed=seed, rerandomize_each_iteration=True
    )
    # A known epoch length lets Keras count steps (and not warn that data ran out).
    return balanced.apply(tf.data.experimental.assert_cardinality(smallest * len(subsets)))


def add_sample_weights(images, labels, class_weights, gate):
    """Adds per-example class weights, scaled by `gate` (0 = all ones, 1 = class weights)."""
    index = labels if labels.shape.rank == 1 else tf.argmax(labels, axis=-1)
    weights = tf.gather(tf.constant(class_weights, tf.float32), index)
    return images, labels, gate * weights + (1.0 - gate)


class DeferredReweighting(tf.keras.callbacks.Callback):
    """Switches class weights on from `start_epoch` on (deferred re-weighting, Cao et al. 2019)."""

    def __init__(self, gate, start_epoch):
        super().__init__()
        self.gate = gate
        self.start_epoch = start_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.gate.assign(1.0 if epoch >= self.start_epoch else 0.0)


def _normalized(raw_weights, counts):
    """Scales weights so that their mean over the training images is 1."""
    raw_weights = np.asarray(raw_weights, np.float64)
    return raw_weights * counts.sum() / float((raw_weights * counts).sum())


class ImbalanceStrategy(Choice):
    """Base class: a sampler; `WeightedStrategy` adds class weights learned from the labels."""

    sampler = staticmethod(natural_sampler)
    deferred = False

    def fit(self, labels, num_classes: int):
        """Learns from the training labels (a no-op for sampling strategies)."""
        return self

    def fit_class_weight(self):
        """The `class_weight` argument of `fit()`, or None."""
        return None

    def dataset_class_weights(self):
        """Class weights applied as sample weights inside the dataset (deferred), or None."""
        return None

    def start_epoch(self, epochs: int):
        """For deferred strategies, the first epoch with class weights; else None."""
        return None


class WeightedStrategy(ImbalanceStrategy):
    """Base class: class weights learned from the training labels, with mean 1 per image.

    Attributes:
        class_weight_: One weight per class (label order), scaled so that their mean over the
            training images is 1.
    """

    _learned = ("class_weight",)
    learned_size = "classes"

    def fit(self, labels, num_classes: int):
        """Learns the class weights from the training labels."""
        counts = np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)
        raw = self.raw_weights(np.maximum(counts, 1))
        self.class_weight_ = [round(float(w), 6) for w in _normalized(raw, counts)]
        return self

    def raw_weights(self, counts):
        """Unnormalized per-class weights."""
        raise NotImplementedError

    def fit_class_weight(self):
        if self.deferred:
            return None
        self.check_fitted()
        return {i: w for i, w in enumerate(self.class_weight_)}

    def dataset_class_weights(self):
        return self.check_fitted().class_weight_ if self.deferred else None


@IMBALANCE_STRATEGIES.register("none")
class NoBalancing(ImbalanceStrategy):
    """Every image once per epoch, every loss counted equally."""


@IMBALANCE_STRATEGIES.register("inverse_frequency")
class InverseFrequency(WeightedStrategy):
    """Class weights proportional to 1 / class count.

    Attributes:
        class_weight_: One weight per class (label order), mean 1 per training image.
    """

    def raw_weights(self, counts):
        return 1.0 / counts


@IMBALANCE_STRATEGIES.register("sqrt_inverse")
class SqrtInverseFrequency(WeightedStrategy):
    """Class weights proportional to 1 / sqrt(class count): gentler than inverse frequency.

    Attributes:
        class_weight_: One weight per class (label order), mean 1 per training image.
    """

    def raw_weights(self, counts):
        return 1.0 / np.sqrt(counts)


def _check_beta(beta):
    if not 0 < beta < 1:
        raise ArgumentError(f"`beta` must be in (0, 1). Received: beta={beta!r}")


@IMBALANCE_STRATEGIES.register("effective_number")
class EffectiveNumber(WeightedStrategy):
    """Weights from the effective number of samples, (1 - beta) / (1 - beta^n) (Cui et al. 2019).

    Attributes:
        class_weight_: One weight per class (label order), mean 1 per training image.
    """

    dimensions = (BETA,)

    def __init__(self, *, beta: float = 0.999):
        self.beta = beta
        self.validate()

    def validate(self):
        _check_beta(self.beta)
        return self

    def raw_weights(self, counts):
        return (1.0 - self.beta) / (1.0 - np.power(self.beta, counts))


@IMBALANCE_STRATEGIES.register("oversample")
class Oversample(ImbalanceStrategy):
    """Minority classes repeated so that batches are balanced in expectation."""

    sampler = staticmethod(oversample)


@IMBALANCE_STRATEGIES.register("undersample")
class Undersample(ImbalanceStrategy):
    """Every class cut to the size of the smallest one, with a new draw each epoch."""

    sampler = staticmethod(undersample)


@IMBALANCE_STRATEGIES.register("deferred_reweighting")
class DeferredReweightingStrategy(EffectiveNumber):
    """Effective-number class weights switched on after `start` of the epochs (Cao et al. 2019).

    Attributes:
        class_weight_: One weight per class (label order), mean 1 per training image, given to
            the dataset as sample weights from the start epoch on.
    """

    deferred = True
    dimensions = (BETA, REWEIGHT_START)

    def __init__(self, *, beta: float = 0.999, start: float = 0.5):
        self.beta = beta
        self.start = start
        self.validate()

    def validate(self):
        _check_beta(self.beta)
        if not 0 <= self.start < 1:
            raise ArgumentError(f"`start` must be in [0, 1). Received: start={self.start!r}")
        return self

    def start_epoch(self, epochs):
        return int(math.floor(self.start * epochs))
