"""What every preprocessing choice shares: a registered name, JSON configs, and source rendering.

A choice is defined once. The same definition builds the live stage of a trial's tf.data
pipeline and writes its own source into the exported module: TensorFlow functions are exported
with `inspect.getsource`, Keras layers as a constructor call with the same arguments.
"""

import dataclasses
import inspect
import re
import textwrap

import numpy as np

from autoprep.errors import ConfigError, NotFittedError, short

MAX_NAME_LENGTH = 100  # longer strings are never a parameter: refused from configs
MAX_LEARNED_LENGTH = 10_000  # per-channel or per-class values


_MODULE_NAME_MARK = re.compile(r"\s*# noqa: F821\b.*$")


def function_source(function, name=None) -> str:
    """The source of a module-level TF function, optionally renamed, without decorators.

    A name that only the exported module defines (e.g. its `preprocess`) is marked
    `# noqa: F821` in autoprep; the mark is dropped from the copy, where the name exists.
    """
    source = textwrap.dedent(inspect.getsource(function))
    lines = [_MODULE_NAME_MARK.sub("", line) for line in source.splitlines()]
    while lines[0].startswith("@"):
        lines.pop(0)
    if name is not None:
        lines[0] = lines[0].replace(f"def {function.__name__}(", f"def {name}(", 1)
    return "\n".join(lines) + "\n"


def to_json(value):
    """Converts numpy scalars and arrays inside `value` to plain Python for JSON."""
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, int) else k: to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One search dimension, declared by the choice it configures.

    `SearchSpace` derives its arguments, hyperparameters, validation and error messages from
    these declarations; a dimension declared by a choice that a selector picks (a policy, an
    imbalance strategy) is conditional on that choice being picked.

    Attributes:
        name: The `SearchSpace` argument and the hyperparameter (`autoprep/<name>`).
        values: The default candidates: a list (a choice) or a `(low, high)` tuple (a range).
        param: The constructor argument of the choice it sets (None: `name`).
        default: The value of the search's first trial (None: the first candidate or `low`).
        step: The step of a range (also of a range a user gives).
        limits: `(low, high)` that every number must lie in; None for a dimension of names.
        prior: The probability of each candidate of a list when the space samples its prior
            (None: uniform). For an op whose first candidate is 0, `prior[0]` is the
            probability that the op is off.
        accepted: Names valid when given that are not candidates by default (a choice kept
            for one kind of model, e.g. a backbone's own normalization).
    """

    name: str
    values: object
    param: str = None
    default: object = None
    step: float = None
    limits: tuple = None
    prior: tuple = None
    accepted: tuple = ()

    @property
    def argument(self) -> str:
        """The constructor argument this dimension sets."""
        return self.param or self.name

    @property
    def first(self):
        """The value of the first trial."""
        return self.values[0] if self.default is None else self.default


class Selector:
    """The dimension that picks one registered choice of a registry (e.g. `imbalance`).

    Args:
        name: The `SearchSpace` argument.
        registry: The registry whose names are the candidates.
        default: The first trial's choice.
        members: Which registered classes it picks among (None: all).
        off: A candidate meaning "none of them" (e.g. policy "none"), put first.
        off_prior: The prior probability of `off` (the rest is shared equally).
        searched: Which of its classes are candidates by default (None: all); the others
            are valid when given.
    """

    def __init__(self, name, registry, *, default, members=None, off=None, off_prior=None,
                 searched=None):
        self.name, self.registry, self.default = name, registry, default
        self._members, self.off, self.off_prior = members, off, off_prior
        self._searched = searched

    def classes(self) -> list:
        """The registered classes this selector picks among."""
        entries = [self.registry.get(name) for name in self.registry]
        return [cls for cls in entries if self._members is None or self._members(cls)]

    def dimension(self) -> Dimension:
        classes = self.classes()
        names = [cls.name for cls in classes if self._searched is None or self._searched(cls)]
        accepted = tuple(cls.name for cls in classes if cls.name not in names)
        values = names if self.off is None else [self.off, *names]
        prior = None
        if self.off_prior is not None:
            rest = (1.0 - self.off_prior) / max(len(names), 1)
            prior = (self.off_prior, *[rest] * len(names))
        return Dimension(self.name, values, default=self.default, prior=prior, accepted=accepted)


def is_finite_number(value) -> bool:
    """True for an int or float that is not a bool, NaN or infinite."""
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and bool(np.isfinite(value))
    )


def _checked_parameter(choice, key, value, annotation):
    if annotation is str:
        ok = isinstance(value, str) and len(value) <= MAX_NAME_LENGTH
        expected = f"a name of at most {MAX_NAME_LENGTH} characters"
    else:
        ok = is_finite_number(value)
        expected = "a finite number"
    if not ok:
        raise ConfigError(
            f"`{choice}` parameter `{key}` must be {expected}. Received: {short(value)}"
        )
    return value


def _checked_learned(choice, key, value):
    items = value if isinstance(value, list) else [value]
    if not (0 < len(items) <= MAX_LEARNED_LENGTH and all(map(is_finite_number, items))):
        raise ConfigError(
            f"`{choice}` learned value `{key}` must be a finite number or a list of at most "
            f"{MAX_LEARNED_LENGTH} finite numbers. Received: {short(value)}"
        )
    return value


class Choice:
    """Base of every registered choice.

    `__init__` takes keyword-only parameters, stores them and validates them (as `validate`
    does for the registry); values learned from the training split end with an underscore and
    are part of the config once fitted, so that a fitted choice round-trips through JSON.
    A choice declares its search dimensions in `dimensions`.
    """

    name = None  # set by the registry
    _learned = ()  # names of learned attributes, without the trailing underscore
    dimensions = ()  # the `Dimension`s of its parameters
    learned_size = None  # what learned lists have one item per ("channels", "classes")

    @classmethod
    def search_dimensions(cls) -> tuple:
        """The `Dimension`s this choice declares (its `dimensions` unless a base derives them)."""
        return tuple(cls.dimensions)

    @property
    def fitted(self) -> bool:
        """Whether every learned attribute is set (always true for a choice that learns none)."""
        return all(getattr(self, attr + "_", None) is not None for attr in self._learned)

    def check_fitted(self):
        """Raises `NotFittedError` when this choice learns values and has not learned them."""
        if not self.fitted:
            learned = ", ".join(attr + "_" for attr in self._learned)
            raise NotFittedError(
                f"This {type(self).__name__} ({self.name!r}) is not fitted yet: call `fit` "
                f"with the training split first (or rebuild it from a config holding {learned})."
            )
        return self

    def get_config(self) -> dict:
        params = inspect.signature(type(self).__init__).parameters
        config = {"name": self.name}
        config.update(
            {
                name: getattr(self, name)
                for name, param in params.items()
                if name != "self" and param.kind == param.KEYWORD_ONLY
            }
        )
        for attr in self._learned:
            value = getattr(self, attr + "_", None)
            if value is not None:
                config[attr + "_"] = value
        return to_json(config)

    @classmethod
    def parameters(cls) -> dict:
        """{name: annotated type} of the keyword-only constructor parameters."""
        params = inspect.signature(cls.__init__).parameters.values()
        return {p.name: p.annotation for p in params if p.kind == p.KEYWORD_ONLY}

    @classmethod
    def from_config(cls, config: dict):
        """Rebuilds a choice from `get_config()`, accepting only what the choice declares.

        Parameters must have their annotated type; learned values must be finite numbers or
        non-empty lists of them, all of one length. A config is data read from files that
        anyone may edit: nothing else in it becomes an attribute.

        Raises:
            ConfigError: naming the first key that is not declared or has a wrong value.
        """
        if not isinstance(config, dict):
            raise ConfigError(f"A {cls.name} config must be a dict. Received: {short(config)}")
        if config.get("name", cls.name) != cls.name:
            raise ConfigError(f"`name` must be {cls.name!r}. Received: {short(config['name'])}")
        parameters = cls.parameters()
        learned_keys = [attr + "_" for attr in cls._learned]
        kwargs, learned = {}, {}
        for key, value in config.items():
            if key in parameters:
                kwargs[key] = _checked_parameter(cls.name, key, value, parameters[key])
            elif key in learned_keys:
                learned[key] = _checked_learned(cls.name, key, value)
            elif key != "name":
                allowed = ", ".join(["name", *parameters, *learned_keys])
                raise ConfigError(
                    f"`{cls.name}` has no parameter or learned value {short(key)}. "
                    f"Expected keys: {allowed}."
                )
        lengths = {key: len(v) for key, v in learned.items() if isinstance(v, list)}
        if len(set(lengths.values())) > 1:
            raise ConfigError(f"`{cls.name}` learned values differ in length: {lengths}.")
        choice = cls(**kwargs)
        for key, value in learned.items():
            setattr(choice, key, value)
        return choice

    def check_sizes(self, **sizes):
        """Checks that learned lists have `sizes[self.learned_size]` items (e.g. channels).

        Raises:
            ConfigError: naming the learned value and both lengths.
        """
        expected = sizes.get(self.learned_size)
        for attr in self._learned:
            value = getattr(self, attr + "_", None)
            if expected is not None and isinstance(value, list) and len(value) != expected:
                raise ConfigError(
                    f"`{self.name}` learned value `{attr}_` must have as many items as there "
                    f"are {self.learned_size} ({expected}). Received: {len(value)} items"
                )
        return self

    def module_sources(self) -> list:
        """Definitions (constants, functions, classes) this choice adds to the exported module."""
        return []

    def validate(self):
        """Checks the parameters; returns self. Subclasses with parameters override it."""
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()
