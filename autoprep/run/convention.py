"""The model's input convention as a search records it: what the model expects of its pixels.

`autoprep.search.model_inputs` reads it from the built model before the first trial; the search
fixes its normalization to it, and results.json keeps it under `data["input_convention"]` for
`show`, the report and the progress lines. This module imports neither TensorFlow nor Keras.
"""

import dataclasses

SEARCHED, FIXED, GIVEN = "searched", "fixed", "given"


@dataclasses.dataclass(frozen=True)
class InputConvention:
    """What a model expects of its input pixels, and what the search did with it.

    Attributes:
        kind: "converter" (a KerasHub image converter), "in_model" (preprocessing layers
            before the first layer with weights), "backbone" (a known Keras Applications
            family without its own preprocessing layers) or "none".
        normalization: The registered normalization the model expects ("none": raw 0-255
            pixels), or None when the model says nothing (the normalization is searched).
        source: What it was read from, e.g. "MobileNetV2 backbone 'mobilenetv2_1.00_224'".
        reason: What the model does with its input, in a few words.
        search: "fixed" (the search's normalization was fixed to it), "given" (the user's
            `SearchSpace` chose the normalization) or "searched" (no convention).
        given: The normalization names the user's `SearchSpace` gave (None when not given).
        problems: Contradictions found, each a sentence with its fix (e.g. a backbone fed
            [0, 1] by the model's own `Rescaling` layer while it expects [-1, 1]).
    """

    kind: str
    normalization: str = None
    source: str = ""
    reason: str = ""
    search: str = SEARCHED
    given: tuple = None
    problems: tuple = ()

    @property
    def contradicted(self) -> bool:
        """Whether the user's normalization differs from the one the model expects."""
        return (self.normalization is not None and self.given is not None
                and any(name != self.normalization for name in self.given))

    def describe(self) -> str:
        """One line for a terminal or the report: the normalization and why."""
        given = ", ".join(self.given or ())
        if self.normalization is None:  # nothing to fix (a backbone variant may be unknown)
            why = (f"{self.source}: {self.reason}" if self.source else
                   "the model shows no input convention"
                   + (f" ({self.reason})" if self.reason else ""))
            return (f"normalization {given} as given; " if self.given
                    else "normalization searched: ") + why
        expects = f"{self.source}: {self.reason}" if self.reason else self.source
        if self.search == FIXED:
            return (f"normalization fixed to {self.normalization} by the model ({expects}); "
                    "the trials search augmentation and class imbalance")
        if self.contradicted:
            return (f"normalization {given} as given in the search space, although the model "
                    f"expects {self.normalization} ({expects})")
        return f"normalization {given} as given, as the model expects ({expects})"

    def to_dict(self) -> dict:
        state = dataclasses.asdict(self)
        state["given"] = None if self.given is None else list(self.given)
        state["problems"] = list(self.problems)
        return state

    @classmethod
    def from_dict(cls, state: dict) -> "InputConvention":
        """Rebuilds a record from `to_dict()`, ignoring keys of other versions."""
        names = {field.name for field in dataclasses.fields(cls)}
        state = {key: value for key, value in dict(state).items() if key in names}
        if state.get("given") is not None:
            state["given"] = tuple(state["given"])
        state["problems"] = tuple(state.get("problems") or ())
        return cls(**state)


def recorded(data) -> "InputConvention":
    """The convention a results.json's `data` holds, or None (runs of older versions)."""
    state = (data or {}).get("input_convention")
    if not isinstance(state, dict) or "kind" not in state:
        return None
    try:
        return InputConvention.from_dict(state)
    except (TypeError, ValueError):  # edited by hand
        return None
