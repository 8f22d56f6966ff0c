"""Search space: what a search may choose, declared as Keras Tuner hyperparameters.

The space knows nothing of the tuner that samples it: `declare(hp)` registers (and reads) every
dimension on a `keras_tuner.HyperParameters`, and `pipeline(hp)` turns the values into a
`Pipeline`. Each dimension is fixed (one value), a choice (a list) or a range (a 2-tuple).

The space holds no table of its own: the dimensions come from the registries. Three selectors
pick one registered choice each (`normalization`, `policy`, `imbalance`); every augmentation op
that is not a policy declares its own unconditional dimension; a dimension declared by a
choice that a selector picks (a policy's strength, `beta`, `reweight_start`) is conditional on
that choice. Registering a new choice is enough for it to appear here.

What a staged or expert-like search needs is here too, independent of the tuner:
`SearchSpace.random_values` draws a random point from the space's prior (most ops off, light
strengths first, policies rare); `data_facts` + `SearchSpace.seed_configurations` give the
first configurations to try, chosen from cheap statistics of the training split; `complexity`
counts what a configuration switches on, for "prefer the simpler one within noise".
"""

import numbers
import random
from typing import NamedTuple

import numpy as np

from autoprep.choices import augmentation, imbalance, normalization
from autoprep.choices.augmentation import AUGMENTATIONS
from autoprep.choices.base import Dimension
from autoprep.choices.pipeline import Pipeline
from autoprep.data import stats
from autoprep.errors import ArgumentError, UnknownChoiceError

PREFIX = "autoprep/"
# Seeding preferences (registered names; those the space excludes are skipped).
# Color images are standardized per channel first: on each of 5 color folders (photos and small
# tiles) per-channel z-score scored at least [0, 1] trained alone, up to 0.14 above it; on gray
# folders neither won everywhere (results/first_configuration.md), so [0, 1] stays first there
# unless the pixels look raw.
_STANDARDIZED = ["per_channel", "rescale_01", "per_image", "robust"]
_RESCALED = ["rescale_01", "per_channel", "rescale_pm1", "per_image"]
_REBALANCED = ["inverse_frequency", "oversample", "effective_number", "deferred_reweighting",
               "sqrt_inverse", "undersample"]
_MILDLY_WEIGHTED = ["sqrt_inverse", "none", "inverse_frequency", "effective_number"]
_UNWEIGHTED = ["none", "sqrt_inverse"]
_FLIP_EVIDENCE = 10  # images a class needs for its mean image to tell whether it is symmetric


class Declared(NamedTuple):
    """A dimension of the space and, when conditional, its parent and the parent's values."""

    dimension: Dimension
    parent: str = None
    parent_values: tuple = ()


def selectors() -> list:
    """The dimensions that pick one registered choice, in declaration order."""
    return [normalization.SELECTOR, augmentation.POLICY_SELECTOR, imbalance.SELECTOR]


def declared_dimensions() -> dict:
    """{name: Declared} of every dimension, in the order they are declared, from the registries.

    Raises:
        ArgumentError: when two choices declare different dimensions under one name.
    """
    top = [normalization.SELECTOR.dimension()]
    for name in AUGMENTATIONS:
        op = AUGMENTATIONS.get(name)
        if not op.policy:
            top += op.search_dimensions()
    top += [augmentation.POLICY_SELECTOR.dimension(), imbalance.SELECTOR.dimension()]
    found = {dimension.name: Declared(dimension) for dimension in top}
    for selector in selectors():
        for cls in selector.classes():
            for dimension in cls.search_dimensions():
                known = found.get(dimension.name)
                if known is not None and (known.dimension != dimension or not known.parent):
                    raise ArgumentError(
                        f"The search dimension `{dimension.name}` is declared twice, "
                        f"differently (by {cls.__name__}). Give it another name."
                    )
                values = (known.parent_values if known else ()) + (cls.name,)
                found[dimension.name] = Declared(dimension, selector.name, values)
    return found


class SearchSpace:
    """The preprocessing choices a search may make; every argument fixes or narrows one dimension.

    Each argument is None (the default range), a single value (fixed), a list (choose among
    these), or for numbers a `(low, high)` tuple (a range). Intensities of 0 switch an op off;
    by default each op is searched among its levels (0, light, medium, strong).
    The arguments are the dimensions the registered choices declare (`declared_dimensions()`);
    those of the built-in choices are:

    Args:
        normalization: Names from `autoprep.NORMALIZATIONS`: searched by default none,
            rescale_01, rescale_pm1, per_channel, per_image, robust; also valid when given,
            a backbone's own convention: caffe_bgr, torch_imagenet, rescale_128. By
            default `tune` fixes it to what the model expects when the model says
            (`autoprep.search.model_inputs`).
        flip: none, horizontal, vertical or horizontal_and_vertical.
        rotation, zoom, translation, contrast, brightness: Augmentation intensities.
        policy: none, rand_augment, mixup, cutmix or trivial_augment: a policy used on top.
        rand_augment, mixup, cutmix, trivial_augment: The policy's strength (RandAugment
            factor, MixUp alpha, CutMix factor; TrivialAugment's is fixed at 1.0).
        imbalance: Names from `autoprep.IMBALANCE_STRATEGIES` (none, inverse_frequency,
            sqrt_inverse, effective_number, oversample, undersample, deferred_reweighting,
            logit_adjusted_loss, posthoc_logit_adjustment).
        beta: Beta of the effective-number weights.
        reweight_start: Fraction of the epochs after which deferred re-weighting starts.
        loss_tau: tau of the logit-adjusted loss (1 = Balanced Softmax).

    Raises:
        UnknownChoiceError: for an unknown name, listing the valid ones.
        ArgumentError: for a value out of range, or an unknown dimension.

    Example:
        >>> space = autoprep.SearchSpace(normalization=["rescale_01", "per_channel"],
        ...                              flip="none", rotation=(0.0, 0.1), policy="none")
    """

    def __init__(self, **dimensions):
        self.declared = declared_dimensions()
        unknown = sorted(set(dimensions) - set(self.declared))
        if unknown:
            raise ArgumentError(
                f"Unknown search dimension {unknown[0]!r}. "
                f"Expected one of: {', '.join(self.declared)}."
            )
        self.dimensions = {}
        for name, declared in self.declared.items():
            value = dimensions.get(name)
            self.dimensions[name] = _validate(
                declared.dimension, declared.dimension.values if value is None else value
            )

    def get_config(self) -> dict:
        """JSON-ready dimensions; a range is written as {"min": low, "max": high}."""
        return {
            name: {"min": value[0], "max": value[1]} if isinstance(value, tuple) else value
            for name, value in self.dimensions.items()
        }

    @classmethod
    def from_config(cls, config: dict) -> "SearchSpace":
        return cls(**config)

    # -- Keras Tuner -------------------------------------------------------------------
    def declare(self, hp) -> dict:
        """Declares every dimension on `hp` and returns the values of this trial."""
        values = {}
        for name, declared in self.declared.items():
            if declared.parent is None:
                values[name] = self._declare(hp, declared.dimension)
            else:
                values[name] = self._declare_if(hp, declared)
        return values

    def pipeline(self, hp) -> Pipeline:
        """The (unfitted) `Pipeline` of the trial whose hyperparameters are `hp`."""
        return pipeline_from_values(self.declare(hp))

    # -- priors and seeds -----------------------------------------------------------------
    def random_values(self, hyperparameters, seed) -> dict:
        """One random point of the space drawn from its prior: {hyperparameter name: value}.

        A dimension the user left at its declared candidates is drawn with its declared
        prior (an op is off with probability `OP_PRIOR[0]`, strength grows from light, a
        policy is picked 1 time in 5); narrowed dimensions and the user's own
        hyperparameters are drawn uniformly, as Keras Tuner does. Only active (conditional)
        hyperparameters get a value. The same seed gives the same point.

        Args:
            hyperparameters: The `keras_tuner.HyperParameters` whose `space` to fill.
            seed: An int.
        """
        rng = random.Random(seed)
        filled = type(hyperparameters)()  # is_active(hp) reads hp's conditions and the values
        for hp in hyperparameters.space:
            if filled.is_active(hp):
                filled.values[hp.name] = self._draw(hp, rng)
        return filled.values

    def _draw(self, hp, rng):
        declared = self.declared.get(hp.name[len(PREFIX):]) if hp.name.startswith(PREFIX) else None
        dimension = declared.dimension if declared else None
        if dimension is not None and dimension.prior is not None and (
            self.dimensions[dimension.name] == list(dimension.values)
        ):
            return rng.choices(list(dimension.values), weights=dimension.prior)[0]
        return hp.random_sample(rng.randrange(2**31))

    def values(self, **chosen) -> dict:
        """A full point of the space: `chosen` values where the space allows them, else defaults.

        Every dimension gets a value (None when its parent does not pick it); a chosen value
        that the space excludes falls back to the dimension's first-trial value (or the
        nearest end of a range). `pipeline_from_values(space.values(...))` builds it.
        """
        values = {}
        for name, declared in self.declared.items():
            parent = values.get(declared.parent)
            if declared.parent is not None and parent not in declared.parent_values:
                values[name] = None
            else:
                values[name] = self._allowed(declared.dimension, chosen.get(name))
        return values

    def _allowed(self, dimension, value):
        allowed = self.dimensions[dimension.name]
        if isinstance(allowed, tuple):
            wanted = allowed[0] if value is None else value
            return _round(min(max(float(wanted), allowed[0]), allowed[1]))
        if not isinstance(allowed, list):
            return allowed
        if value in allowed:
            return value
        return dimension.first if dimension.first in allowed else allowed[0]

    def seed_configurations(self, facts: "DataFacts") -> list:
        """The first configurations to try on this data, best bets first, as full points.

        From `data_facts` of the training split: color images, or a raw-looking pixel range
        (dark, low contrast or never bright), put standardization (`per_channel`) before
        rescaling ([0, 1] first for other gray images); an
        imbalance ratio of 4 or more puts inverse-frequency weights then oversampling first
        (1.5-4: square-root weights, then none; below 1.5: none first); flips are proposed
        only for axes along which each class's mean image is mirror-symmetric. The points are:
        the two best bets without augmentation, the second normalization, the second imbalance
        strategy, then the best bet with light augmentation (the sensible flip and the
        `light_seed` ops at their light level). Each respects the space (a fixed dimension
        stays fixed); duplicates are dropped.

        Returns:
            A list of value dicts like `declare` returns (one value per dimension); turn one
            into a pipeline with `pipeline_from_values`, into Keras Tuner values with
            `hyperparameter_values`.
        """
        standardize = not facts.gray or facts.mean < stats.DARK_MEAN or facts.high < 128 or (
            facts.median_std < stats.LOW_CONTRAST_STD
        )
        norms = self._ranked("normalization", _STANDARDIZED if standardize else _RESCALED)
        if facts.imbalance_ratio >= stats.IMBALANCE_RATIO:
            strategies = self._ranked("imbalance", _REBALANCED)
        else:
            mild = facts.imbalance_ratio >= 1.5
            strategies = self._ranked("imbalance", _MILDLY_WEIGHTED if mild else _UNWEIGHTED)
        off = {name: 0.0 for name in self._op_names()}
        off.update(flip="none", policy=augmentation.POLICY_SELECTOR.off)
        light = dict(off, flip=facts.flip)
        for name in self._op_names():
            op = AUGMENTATIONS.get(name)
            if op.light_seed and op.levels:
                light[name] = op.levels[0]
        points = [
            dict(off, normalization=norms[0], imbalance=strategies[0]),
            dict(off, normalization=norms[1], imbalance=strategies[0]),
            dict(off, normalization=norms[0], imbalance=strategies[1]),
            dict(light, normalization=norms[0], imbalance=strategies[0]),
        ]
        unique = []
        for point in (self.values(**chosen) for chosen in points):
            if point not in unique:
                unique.append(point)
        return unique

    def _ranked(self, name, preference) -> list:
        """The values the space allows for `name`, in order of `preference` (at least two)."""
        allowed = self.dimensions[name]
        allowed = allowed if isinstance(allowed, list) else [allowed]
        ranked = [v for v in preference if v in allowed]
        ranked += [v for v in allowed if v not in ranked]
        return ranked + ranked[:1]

    def _op_names(self) -> list:
        ops = [AUGMENTATIONS.get(name) for name in AUGMENTATIONS]
        return [op.name for op in ops if not op.policy and op.name in self.declared]

    @staticmethod
    def hyperparameter_values(values: dict) -> dict:
        """{hyperparameter name: value} of a full point, for Keras Tuner (inactive left out)."""
        return {PREFIX + name: value for name, value in values.items() if value is not None}

    def _declare_if(self, hp, declared):
        parent_value = self.dimensions[declared.parent]
        possible = parent_value if isinstance(parent_value, list) else [parent_value]
        active = [v for v in declared.parent_values if v in possible]
        if not active:
            return None
        with hp.conditional_scope(PREFIX + declared.parent, active):
            return self._declare(hp, declared.dimension)

    def _declare(self, hp, dimension):
        return _round(self._declare_raw(hp, dimension))

    def _declare_raw(self, hp, dimension):
        value = self.dimensions[dimension.name]
        key = PREFIX + dimension.name
        if isinstance(value, list):
            if len(value) == 1:
                return hp.Fixed(key, value[0])
            default = dimension.first if dimension.first in value else value[0]
            return hp.Choice(key, value, default=default)
        if isinstance(value, tuple):
            low, high = value
            if low == high:
                return hp.Fixed(key, low)
            step = dimension.step
            return hp.Float(key, low, high, step=None if step is None else min(step, high - low))
        return hp.Fixed(key, value)


def _round(value):
    """Rounds floats from Keras Tuner's stepped ranges (0.15000000000000002 -> 0.15)."""
    return round(value, 6) if isinstance(value, float) else value


def _choice_config(cls, values: dict) -> dict:
    """The config of a registered choice with the parameters its dimensions took."""
    config = {"name": cls.name}
    for dimension in cls.search_dimensions():
        if values.get(dimension.name) is not None:
            config[dimension.argument] = values[dimension.name]
    return config


def pipeline_from_values(values: dict) -> Pipeline:
    """The `Pipeline` described by one set of search-space values (as `declare` returns)."""
    ops = [AUGMENTATIONS.get(name) for name in AUGMENTATIONS]
    augmentation_ = [_choice_config(op, values) for op in ops if not op.policy]
    policy = values["policy"]
    if policy != augmentation.POLICY_SELECTOR.off:
        augmentation_.append(_choice_config(AUGMENTATIONS.get(policy), values))
    return Pipeline(
        normalization=_choice_config(
            normalization.NORMALIZATIONS.get(values["normalization"]), values
        ),
        augmentation=augmentation_,
        imbalance=_choice_config(
            imbalance.IMBALANCE_STRATEGIES.get(values["imbalance"]), values
        ),
    )


class DataFacts(NamedTuple):
    """Cheap statistics of a training split that decide the seeded configurations.

    Attributes:
        mean: Mean pixel value (0-255).
        high: 99th percentile pixel value.
        median_std: Median of the per-image pixel standard deviations.
        imbalance_ratio: Largest over smallest class count.
        gray: One channel, or three nearly equal ones.
        flip: The flip mode that keeps each class's mean image (none, horizontal, vertical
            or horizontal_and_vertical).
    """

    mean: float
    high: float
    median_std: float
    imbalance_ratio: float
    gray: bool
    flip: str


def data_facts(images, labels, num_classes: int, *, max_images: int = stats.STATS_IMAGES,
               seed: int = 0):
    """`DataFacts` of uint8 training images (n, h, w, c), on at most `max_images` of them.

    `images` may be an array, a memory map or a lazy `Subset`: they are read in chunks of
    `stats.CHUNK_VALUES` pixel values, never copied whole. An axis counts as symmetric when
    the mirror difference of the class mean images (in units of the typical pixel std) exceeds
    what averaging n noisy images leaves (sqrt(2 / n)) by less than 0.15, averaged over the
    classes with at least 10 images (the mean of 3 images is mirror-symmetric within its own
    noise whatever they show); with no such class, no flip is proposed.
    """
    from autoprep.data.subset import Subset

    images, labels = Subset.of(images), np.asarray(labels)
    if len(labels) > max_images:
        keep = stats.subsample(np.arange(len(labels)), seed, limit=max_images)
        images, labels = images[keep], labels[keep]
    counts = np.bincount(labels, minlength=num_classes)
    class_sums = np.zeros((num_classes, *images.shape[1:]), np.float64)
    histogram = np.zeros(256, np.int64)
    stds, channel_gap = [], 0.0
    step = max(1, stats.CHUNK_VALUES // max(1, int(np.prod(images.shape[1:]))))
    for start in range(0, len(labels), step):
        chunk = np.asarray(images[start:start + step])
        part = labels[start:start + step]
        histogram += np.bincount(chunk.ravel(), minlength=256)
        pixels = chunk.astype(np.float32)
        stds.extend(pixels.reshape(len(pixels), -1).std(axis=1))
        if pixels.shape[-1] > 1:
            channel_gap += float(np.abs(np.diff(pixels, axis=-1)).sum())
        np.add.at(class_sums, part, pixels)
    scale = max(float(np.median(stds)), 1.0)
    present = counts[counts > 0]
    if images.shape[-1] > 1:
        channel_gap /= len(labels) * int(np.prod(images.shape[1:-1])) * (images.shape[-1] - 1)

    def symmetric(axis):
        excess = []
        for c in np.flatnonzero(counts >= _FLIP_EVIDENCE):
            mean_image = class_sums[c] / counts[c]
            gap = np.sqrt(np.mean((mean_image - np.flip(mean_image, axis=axis)) ** 2)) / scale
            excess.append(gap - np.sqrt(2.0 / counts[c]))
        return bool(excess) and float(np.mean(excess)) < 0.15

    flips = [mode for mode, axis in (("horizontal", 1), ("vertical", 0)) if symmetric(axis)]
    mean, _ = stats.histogram_mean_std(histogram[None])
    return DataFacts(
        mean=float(mean[0]),
        high=float(stats.histogram_percentiles(histogram[None], [99])[0, 0]),
        median_std=float(np.median(stds)),
        imbalance_ratio=float(present.max() / present.min()),
        gray=bool(channel_gap < 2.0),
        flip="horizontal_and_vertical" if len(flips) == 2 else (flips or ["none"])[0],
    )


def complexity(pipeline) -> int:
    """How much a configuration switches on: augmentation ops on (a policy counts as one)
    plus 1 for an imbalance strategy other than "none".

    The one-standard-error rule picks, among configurations within noise of the best, one of
    least complexity. Normalization is not counted: every configuration has one.

    Args:
        pipeline: A `Pipeline` or its config (as in trial records and `best_config`).
    """
    if not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.from_config(pipeline)
    return len(pipeline.augmentation) + (pipeline.imbalance.name != "none")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _validate(dimension: Dimension, value):
    """Checks a dimension's value; returns it as list (choice), tuple (range) or scalar (fixed)."""
    name = dimension.name
    if dimension.limits is None:
        return _validate_names(dimension, value)
    low_limit, high_limit = dimension.limits
    if isinstance(value, dict) and set(value) == {"min", "max"}:
        value = (value["min"], value["max"])
    if isinstance(value, tuple):
        if len(value) != 2 or not all(_is_number(v) for v in value):
            raise ArgumentError(f"`{name}` range must be (low, high). Received: {name}={value!r}")
        numbers_ = value
    else:
        numbers_ = value if isinstance(value, list) else [value]
        if not numbers_ or not all(_is_number(v) for v in numbers_):
            raise ArgumentError(
                f"`{name}` must be a number, a list of numbers or a (low, high) tuple. "
                f"Received: {name}={value!r}"
            )
    if isinstance(value, tuple) and value[0] > value[1]:
        raise ArgumentError(f"`{name}` range must have low <= high. Received: {name}={value!r}")
    if min(numbers_) < low_limit or max(numbers_) > high_limit:
        raise ArgumentError(
            f"`{name}` values must lie in [{low_limit}, {high_limit}]. Received: {name}={value!r}"
        )
    if isinstance(value, list):
        return value if len(value) > 1 else value[0]
    return tuple(float(v) for v in value) if isinstance(value, tuple) else value


def _validate_names(dimension: Dimension, value):
    name, valid = dimension.name, [*dimension.values, *dimension.accepted]
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not names:
        raise ArgumentError(
            f"`{name}` must be a name or a non-empty list of names. Received: {name}={value!r}"
        )
    for item in names:
        if item not in valid:
            raise UnknownChoiceError(
                f"Unknown {name} {item!r}. Expected one of: {', '.join(map(str, valid))}."
            )
    return list(dict.fromkeys(names)) if len(names) > 1 else names[0]
