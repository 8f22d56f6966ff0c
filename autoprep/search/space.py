"""Search space: what a search may choose, declared as Keras Tuner hyperparameters.

The space knows nothing of the tuner that samples it: `declare(hp)` registers (and reads) every
dimension on a `keras_tuner.HyperParameters`, and `pipeline(hp)` turns the values into a
`Pipeline`. Each dimension is fixed (one value), a choice (a list) or a range (a 2-tuple).
"""

import numbers

from autoprep.choices import (
    AUGMENTATIONS,
    FLIP_MODES,
    IMBALANCE_STRATEGIES,
    INTENSITY_OPS,
    NORMALIZATIONS,
    POLICIES,
)
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError, UnknownChoiceError

PREFIX = "autoprep/"
_BETAS = [0.9, 0.99, 0.999, 0.9999]
_WEIGHTED = ("effective_number", "deferred_reweighting")

# name: (default, step of a range)
_DIMENSIONS = {
    "normalization": (list(NORMALIZATIONS), None),
    "flip": (list(FLIP_MODES), None),
    "rotation": ((0.0, 0.2), 0.05),
    "zoom": ((0.0, 0.3), 0.05),
    "translation": ((0.0, 0.2), 0.05),
    "contrast": ((0.0, 0.5), 0.1),
    "brightness": ((0.0, 0.3), 0.1),
    "policy": (list(POLICIES), None),
    "rand_augment": ((0.2, 1.0), 0.2),
    "mixup": ((0.1, 0.4), 0.1),
    "cutmix": ((0.5, 1.0), 0.25),
    "imbalance": (list(IMBALANCE_STRATEGIES), None),
    "beta": (_BETAS, None),
    "reweight_start": ((0.3, 0.8), 0.1),
}
# The first trial of a random or Bayesian search (ranges default to their low end, 0 = off).
_PREFERRED_DEFAULTS = {
    "normalization": "rescale_01",
    "flip": "none",
    "policy": "none",
    "imbalance": "inverse_frequency",
}
_VALID_NAMES = {
    "normalization": NORMALIZATIONS.names(),
    "flip": list(FLIP_MODES),
    "policy": list(POLICIES),
    "imbalance": IMBALANCE_STRATEGIES.names(),
}


class SearchSpace:
    """The preprocessing choices a search may make; every argument fixes or narrows one dimension.

    Each argument is None (the default range), a single value (fixed), a list (choose among
    these), or for numbers a `(low, high)` tuple (a range). Intensities of 0 switch an op off.

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
        ArgumentError: for a value out of range.

    Example:
        >>> space = autoprep.SearchSpace(normalization=["rescale_01", "per_channel"],
        ...                              flip="none", rotation=(0.0, 0.1), policy="none")
    """

    def __init__(
        self, *, normalization=None, flip=None, rotation=None, zoom=None, translation=None,
        contrast=None, brightness=None, policy=None, rand_augment=None, mixup=None, cutmix=None,
        imbalance=None, beta=None, reweight_start=None,
    ):
        given = dict(locals())
        given.pop("self")
        self.dimensions = {}
        for name, value in given.items():
            default, _ = _DIMENSIONS[name]
            self.dimensions[name] = _validate(name, default if value is None else value)

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
        for name in ("normalization", "flip", *INTENSITY_OPS, "policy", "imbalance"):
            values[name] = self._declare(hp, name)
        for policy in ("rand_augment", "mixup", "cutmix"):
            values[policy] = self._declare_if(hp, policy, "policy", [policy])
        values["beta"] = self._declare_if(hp, "beta", "imbalance", list(_WEIGHTED))
        values["reweight_start"] = self._declare_if(
            hp, "reweight_start", "imbalance", ["deferred_reweighting"]
        )
        return values

    def pipeline(self, hp) -> Pipeline:
        """The (unfitted) `Pipeline` of the trial whose hyperparameters are `hp`."""
        return pipeline_from_values(self.declare(hp))

    def _declare_if(self, hp, name, parent, parent_values):
        parent_value = self.dimensions[parent]
        possible = parent_value if isinstance(parent_value, list) else [parent_value]
        active = [v for v in parent_values if v in possible]
        if not active:
            return None
        with hp.conditional_scope(PREFIX + parent, active):
            return self._declare(hp, name)

    def _declare(self, hp, name):
        value = _round(self._declare_raw(hp, name))
        return value

    def _declare_raw(self, hp, name):
        value = self.dimensions[name]
        _, step = _DIMENSIONS[name]
        key = PREFIX + name
        if isinstance(value, list):
            if len(value) == 1:
                return hp.Fixed(key, value[0])
            preferred = _PREFERRED_DEFAULTS.get(name)
            default = preferred if preferred in value else value[0]
            return hp.Choice(key, value, default=default)
        if isinstance(value, tuple):
            low, high = value
            if low == high:
                return hp.Fixed(key, low)
            return hp.Float(key, low, high, step=None if step is None else min(step, high - low))
        return hp.Fixed(key, value)


def _round(value):
    """Rounds floats from Keras Tuner's stepped ranges (0.15000000000000002 -> 0.15)."""
    return round(value, 6) if isinstance(value, float) else value


def pipeline_from_values(values: dict) -> Pipeline:
    """The `Pipeline` described by one set of search-space values (as `declare` returns)."""
    augmentation = [{"name": "flip", "mode": values["flip"]}]
    augmentation += [{"name": op, "intensity": values[op]} for op in INTENSITY_OPS]
    policy = values["policy"]
    if policy != "none":
        augmentation.append({"name": policy, "intensity": values[policy]})
    imbalance = {"name": values["imbalance"]}
    if values["imbalance"] in _WEIGHTED:
        imbalance["beta"] = values["beta"]
    if values["imbalance"] == "deferred_reweighting":
        imbalance["start"] = values["reweight_start"]
    return Pipeline(
        normalization=values["normalization"], augmentation=augmentation, imbalance=imbalance
    )


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _validate(name, value):
    """Checks a dimension's value; returns it as list (choice), tuple (range) or scalar (fixed)."""
    if name in _VALID_NAMES:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, (list, tuple)) or not names:
            raise ArgumentError(
                f"`{name}` must be a name or a non-empty list of names. Received: {name}={value!r}"
            )
        for item in names:
            if item not in _VALID_NAMES[name]:
                raise UnknownChoiceError(
                    f"Unknown {name} {item!r}. Expected one of: {', '.join(_VALID_NAMES[name])}."
                )
        return list(dict.fromkeys(names)) if len(names) > 1 else names[0]
    low_limit, high_limit = _numeric_limits(name)
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


def _numeric_limits(name):
    if name == "beta":
        return 1e-9, 1 - 1e-9
    if name == "reweight_start":
        return 0.0, 0.95
    return 0.0, AUGMENTATIONS.get(name).max_intensity
