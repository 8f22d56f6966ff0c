"""Search space: what a search may choose, declared as Keras Tuner hyperparameters.

The space knows nothing of the tuner that samples it: `declare(hp)` registers (and reads) every
dimension on a `keras_tuner.HyperParameters`, and `pipeline(hp)` turns the values into a
`Pipeline`. Each dimension is fixed (one value), a choice (a list) or a range (a 2-tuple).

The space holds no table of its own: the dimensions come from the registries. Three selectors
pick one registered choice each (`normalization`, `policy`, `imbalance`); every augmentation op
that is not a policy declares its own unconditional dimension; a dimension declared by a
choice that a selector picks (a policy's strength, `beta`, `reweight_start`) is conditional on
that choice. Registering a new choice is enough for it to appear here.
"""

import numbers
from typing import NamedTuple

from autoprep.choices import augmentation, imbalance, normalization
from autoprep.choices.augmentation import AUGMENTATIONS
from autoprep.choices.base import Dimension
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError, UnknownChoiceError

PREFIX = "autoprep/"


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
    these), or for numbers a `(low, high)` tuple (a range). Intensities of 0 switch an op off.
    The arguments are the dimensions the registered choices declare (`declared_dimensions()`);
    those of the built-in choices are:

    Args:
        normalization: Names from `autoprep.NORMALIZATIONS`
            (none, rescale_01, rescale_pm1, per_channel, per_image, robust).
        flip: none, horizontal, vertical or horizontal_and_vertical.
        rotation, zoom, translation, contrast, brightness: Augmentation intensities.
        policy: none, rand_augment, mixup or cutmix: a Keras policy layer used on top.
        rand_augment, mixup, cutmix: The policy's strength (RandAugment factor, MixUp alpha,
            CutMix factor).
        imbalance: Names from `autoprep.IMBALANCE_STRATEGIES` (none, inverse_frequency,
            sqrt_inverse, effective_number, oversample, undersample, deferred_reweighting).
        beta: Beta of the effective-number weights.
        reweight_start: Fraction of the epochs after which deferred re-weighting starts.

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
    name, valid = dimension.name, list(dimension.values)
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
