"""What every preprocessing choice shares: a registered name, JSON configs, and source rendering.

A choice is defined once. The same definition builds the live stage of a trial's tf.data
pipeline and writes its own source into the exported module: TensorFlow functions are exported
with `inspect.getsource`, Keras layers as a constructor call with the same arguments.
"""

import inspect
import textwrap

import numpy as np


def function_source(function, name=None) -> str:
    """The source of a module-level TF function, optionally renamed, without decorators."""
    source = textwrap.dedent(inspect.getsource(function))
    lines = source.splitlines()
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


class Choice:
    """Base of every registered choice.

    `__init__` takes keyword-only parameters and stores them; values learned from the training
    split end with an underscore and are part of the config once fitted, so that a fitted
    choice round-trips through JSON.
    """

    name = None  # set by the registry
    _learned = ()  # names of learned attributes, without the trailing underscore

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
    def from_config(cls, config: dict):
        config = dict(config)
        config.pop("name", None)
        learned = {k: config.pop(k) for k in list(config) if k.endswith("_")}
        choice = cls(**config)
        for key, value in learned.items():
            setattr(choice, key, value)
        return choice

    def validate(self):
        """Checks the parameters; returns self. Subclasses with parameters override it."""
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items() if k != "name")
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()
