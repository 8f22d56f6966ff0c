"""Class-imbalance strategies: how often each class is seen, and how much its loss counts.

A strategy names a sampler (a TF function over one dataset per class, exported verbatim) and may
learn class weights from the training labels. Class weights go to `fit(class_weight=...)`;
deferred re-weighting switches them on later in training through sample weights in the dataset.
"""

import math

import numpy as np
import tensorflow as tf

from autoprep._registry import Registry
from autoprep.choices.base import Choice, Dimension, Selector, function_source
from autoprep.errors import ArgumentError
from autoprep.objectives import OBJECTIVES, score_predictions

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
    # What a training script does differently with the exported module `{module}` (see
    # `autoprep.export.module.usage`): the loss to compile with (None: the user's own), and
    # how to predict class indices from `{images}` (None: argmax of the model's outputs).
    usage_loss = None
    usage_predict = None

    def fit(self, labels, num_classes: int):
        """Learns from the training labels (a no-op for sampling strategies)."""
        return self

    def fit_class_weight(self):
        """The `class_weight` argument of `fit()`, or None."""
        return None

    def dataset_class_weights(self):
        """Class weights applied as sample weights inside the dataset (deferred), or None."""
        return None

    def prepare_model(self, model, from_logits: bool):
        """Readies the compiled model for training (a strategy may change its loss)."""
        return model

    def adjust(self, outputs, labels=None, objective="balanced_accuracy"):
        """The scores to predict with from model outputs (post-hoc strategies adjust them)."""
        return outputs

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


# -- logit adjustment (Menon et al. 2020) --------------------------------------------------
LOSS_TAU = Dimension("loss_tau", [1.0, 0.5, 1.5], param="tau", limits=(0.0, 3.0))
TAU_GRID = tuple(round(0.25 * i, 2) for i in range(9))  # 0, 0.25, ..., 2.0


def _class_prior(labels, num_classes):
    """Class frequencies of the training labels (a class without images counts as one)."""
    counts = np.maximum(np.bincount(np.asarray(labels), minlength=num_classes), 1)
    return [round(float(p), 8) for p in counts / counts.sum()]


def _as_logits(outputs):
    """Logits from a model's outputs: log of probabilities (rows summing to 1), else as is."""
    outputs = tf.convert_to_tensor(outputs, tf.float32)
    probabilities = tf.logical_and(
        tf.reduce_all(outputs >= 0.0),
        tf.reduce_all(tf.abs(tf.reduce_sum(outputs, axis=-1) - 1.0) < 1e-3),
    )
    return tf.cond(probabilities, lambda: tf.math.log(tf.maximum(outputs, 1e-12)), lambda: outputs)


def adjust_logits(outputs, class_prior, tau):
    """Post-hoc logit adjustment: logits - tau * log(class prior); works on probabilities too."""
    return _as_logits(outputs) - tau * tf.math.log(tf.constant(class_prior, tf.float32))


class LogitAdjustedLoss(tf.keras.losses.Loss):
    """Cross-entropy of logits + tau * log(class prior) (Menon et al. 2020); tau = 1 is
    Balanced Softmax (Ren et al. 2020). Takes integer or one-hot labels, and logits
    (`from_logits=True`) or probabilities."""

    def __init__(self, class_prior, tau=1.0, from_logits=False, name="logit_adjusted_loss"):
        super().__init__(name=name)
        self.class_prior, self.tau, self.from_logits = list(class_prior), tau, from_logits

    def call(self, y_true, y_pred):
        logits = y_pred if self.from_logits else tf.math.log(tf.maximum(y_pred, 1e-7))
        logits = logits + self.tau * tf.math.log(tf.constant(self.class_prior, logits.dtype))
        if y_true.shape.rank == logits.shape.rank and y_true.shape[-1] == logits.shape[-1]:
            return tf.keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        return tf.keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)

    def get_config(self):
        return {"name": self.name, "class_prior": self.class_prior, "tau": self.tau,
                "from_logits": self.from_logits}


class _PriorStrategy(ImbalanceStrategy):
    """Base class: learns the class prior (frequencies) of the training labels."""

    _learned = ("class_prior",)
    learned_size = "classes"

    def fit(self, labels, num_classes: int):
        self.class_prior_ = _class_prior(labels, num_classes)
        return self


@IMBALANCE_STRATEGIES.register("logit_adjusted_loss")
class LogitAdjustedLossStrategy(_PriorStrategy):
    """Logit-adjusted cross-entropy as the training loss (Menon et al. 2020; tau = 1 is
    Balanced Softmax, Ren et al. 2020): the model's logits plus tau x log prior. The user's
    compiled loss keeps its `from_logits` and label form; batches are not resampled.

    Attributes:
        class_prior_: Class frequencies of the training labels (one per class, sum 1).
    """

    dimensions = (LOSS_TAU,)
    usage_loss = "{module}.make_loss(from_logits=False)"  # True for a model that outputs logits

    def __init__(self, *, tau: float = 1.0):
        self.tau = tau
        self.validate()

    def validate(self):
        if not 0 <= self.tau <= 3:
            raise ArgumentError(f"`tau` must be in [0, 3]. Received: tau={self.tau!r}")
        return self

    def adjusted_loss(self, from_logits: bool):
        """The training loss for a model whose outputs are logits or probabilities."""
        return LogitAdjustedLoss(self.check_fitted().class_prior_, self.tau, from_logits)

    def prepare_model(self, model, from_logits: bool):
        model.compile(optimizer=model.optimizer, loss=self.adjusted_loss(from_logits))
        return model

    def module_sources(self) -> list:
        return [
            function_source(LogitAdjustedLoss),
            f"CLASS_PRIOR = {self.check_fitted().class_prior_!r}\nLOSS_TAU = {float(self.tau)!r}",
            function_source(make_loss),
        ]


def make_loss(from_logits=False):
    """The logit-adjusted loss to compile the model with (`from_logits` as the model's)."""
    return LogitAdjustedLoss(CLASS_PRIOR, LOSS_TAU, from_logits)  # noqa: F821 (the module's constants)


def best_tau(outputs, labels, class_prior, objective="balanced_accuracy", grid=TAU_GRID):
    """The tau of `grid` whose adjusted outputs score best on `labels` (ties: closest to 1).

    A pure function of validation predictions: no training. `objective` names a score of
    `autoprep.objectives` (the loss objective uses balanced accuracy).

    Args:
        outputs: Model outputs (probabilities or logits), shape (n, classes).
        labels: Integer labels, shape (n,).
        class_prior: Class frequencies of the training split.
        objective: What to maximize.
        grid: The taus to try.
    """
    objective = objective if OBJECTIVES.get(objective, (None, None))[1] else "balanced_accuracy"
    logits = _as_logits(outputs).numpy()
    log_prior = np.log(np.asarray(class_prior, np.float64))
    scores = [score_predictions(objective, labels, logits - tau * log_prior) for tau in grid]
    best = max(scores)
    return min((abs(tau - 1.0), tau) for tau, s in zip(grid, scores) if s == best)[1]


@IMBALANCE_STRATEGIES.register("posthoc_logit_adjustment")
class PosthocLogitAdjustment(_PriorStrategy):
    """Post-hoc logit adjustment (Menon et al. 2020): train as usual, then predict with
    logits - tau x log prior. tau is tuned on each trial's validation predictions (no extra
    training; 1 until tuned); the exported module applies it in `adjust` and `predict`.

    Attributes:
        class_prior_: Class frequencies of the training labels (one per class, sum 1).
        tau_: The adjustment strength (tuned on validation predictions, else 1.0).
    """

    _learned = ("class_prior", "tau")
    usage_predict = "{module}.predict(model, {images})"

    def fit(self, labels, num_classes: int):
        super().fit(labels, num_classes)
        if getattr(self, "tau_", None) is None:
            self.tau_ = 1.0
        return self

    def adjust(self, outputs, labels=None, objective="balanced_accuracy"):
        """Adjusted logits of model outputs; given labels, tunes `tau_` on them first."""
        self.check_fitted()
        if labels is not None:
            self.tau_ = best_tau(outputs, labels, self.class_prior_, objective)
        return adjust_logits(outputs, self.class_prior_, self.tau_).numpy()

    def module_sources(self) -> list:
        self.check_fitted()
        return [
            function_source(_as_logits),
            function_source(adjust_logits),
            f"CLASS_PRIOR = {self.class_prior_!r}\nADJUSTMENT_TAU = {float(self.tau_)!r}",
            function_source(adjust),
            function_source(predict),
        ]


def adjust(outputs):
    """Logit-adjusted scores of the model's outputs (probabilities or logits): argmax them."""
    return adjust_logits(outputs, CLASS_PRIOR, ADJUSTMENT_TAU)  # noqa: F821 (the module's constants)


def predict(model, images, batch_size=32):
    """Class indices for uint8 images, with the post-hoc logit adjustment the search chose."""
    outputs = model.predict(preprocess(images), batch_size=batch_size, verbose=0)  # noqa: F821
    return tf.argmax(adjust(outputs), axis=-1).numpy()
