"""The errors autoprep raises: each message says what was expected, what was received, the fix."""


def short(value, limit=60) -> str:
    """`repr(value)`, cut to `limit` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class AutoprepError(Exception):
    """Base class of every error autoprep raises on purpose."""


class DataError(AutoprepError, ValueError):
    """The image directory cannot be used as given (missing, empty, too few images per class)."""


class ArgumentError(AutoprepError, ValueError):
    """An argument has a value autoprep cannot work with."""


class ConfigError(ArgumentError):
    """A pipeline config (e.g. a results.json `best_config`) holds a key or value that no
    choice declares: refused, since configs are files anyone can edit."""


class UnknownChoiceError(ArgumentError, KeyError):
    """A name that is not registered (a normalization, augmentation or imbalance strategy)."""

    def __str__(self):  # KeyError would quote the message.
        return str(self.args[0])


class ModelError(AutoprepError, ValueError):
    """The user's `model_fn` failed or built a model that does not fit the data."""


class RunDirectoryError(AutoprepError, ValueError):
    """A run directory holds a different search, or no search at all."""


class NotFittedError(AutoprepError, ValueError, AttributeError):
    """A choice that learns from the training split was used before `fit` (scikit-learn style)."""


class InputConventionWarning(UserWarning):
    """The normalization contradicts what the model expects of its pixels (a pipeline that
    scales for a model that scales again, a backbone fed another range than its own)."""
