"""Name -> definition mappings for every extensible choice, filled by a decorator."""

from autoprep.errors import UnknownChoiceError, short


class Registry:
    """A plain name -> class mapping.

    Args:
        kind: What the registered classes are, used in error messages
            (e.g. ``"normalization"``).
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries = {}

    def register(self, name: str):
        """Class decorator that registers a class under `name` and sets `cls.name`."""

        def decorator(cls):
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice.")
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorator

    def unregister(self, name: str):
        """Removes `name` (for choices registered for a while, e.g. in a test)."""
        self.get(name)
        del self._entries[name]

    def get(self, name: str):
        """Returns the class registered as `name`, or fails listing the valid names."""
        if not isinstance(name, str) or name not in self._entries:
            raise UnknownChoiceError(
                f"Unknown {self.kind} {short(name)}. Expected one of: {', '.join(self.names())}."
            )
        return self._entries[name]

    def names(self) -> list:
        return list(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(self._entries)

