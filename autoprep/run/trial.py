"""Trial records: what one finished trial of a search was, as stored in results.json, and the
text that shows one (its configuration, the reason it failed) in the log, `show` and the report.
"""

import copy
import dataclasses
import enum
import re

from autoprep._text import summarize


class TrialStatus(str, enum.Enum):
    """How a trial ended (Keras Tuner's names; a str, so JSON and comparisons see the name)."""

    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    INVALID = "INVALID"

    def __str__(self):
        return self.value


FINISHED = tuple(TrialStatus)


@dataclasses.dataclass
class TrialRecord:
    """One finished trial.

    Attributes:
        trial_id: Keras Tuner's id of the trial (0-based, "00"): the key of its state files.
        status: A `TrialStatus`.
        score: The validation objective (None when the trial failed).
        config: The pipeline config (unfitted), or None when the space was changed by hand.
        model_hyperparameters: The user's own hyperparameters of the trial.
        message: Keras Tuner's traceback of a failed trial, or None.
        worker: The Keras Tuner id of the distributed worker that ran the trial (`tuner1` for
            `--worker 1`), or None in a search of one process (and in runs of older versions).
        number: The trial's number (1-based, in the order trials started), the one shown
            everywhere: the log, `autoprep show`, the report, trials.csv. Default: from
            `trial_id` (runs of older versions did not store it).
    """

    trial_id: str
    status: TrialStatus
    score: float = None
    config: dict = None
    model_hyperparameters: dict = dataclasses.field(default_factory=dict)
    message: str = None
    worker: str = None
    number: int = None

    def __post_init__(self):
        if self.number is None:
            self.number = trial_number(self.trial_id)
        try:
            self.status = TrialStatus(str(self.status))
        except ValueError:
            raise ValueError(
                f"trial {str(self.trial_id)[:40]!r} has the status {str(self.status)[:40]!r}; "
                f"expected one of {', '.join(TrialStatus)}"
            ) from None

    @property
    def completed(self) -> bool:
        """True for a completed trial with a score."""
        return self.status is TrialStatus.COMPLETED and self.score is not None

    @classmethod
    def from_dict(cls, state: dict) -> "TrialRecord":
        fields = {field.name for field in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in state.items() if k in fields})

    def to_dict(self) -> dict:
        return copy.deepcopy(self.as_json())

    def as_json(self) -> dict:
        """The record's fields as JSON values, sharing its own dicts (not copies): to write out
        at once, not to keep (`to_dict` copies; `dataclasses.asdict` took half of the time of
        writing results.json after each trial of a 200-trial search)."""
        state = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        state["status"] = self.status.value
        return state

    # Mapping-style reads, for callers (on_trial_end callbacks) written for the former dicts.
    def __getitem__(self, key):
        try:
            return getattr(self, key)
        except AttributeError:
            raise KeyError(key) from None

    def get(self, key, default=None):
        return getattr(self, key, default)


def trial_number(trial_id):
    """The 1-based number of the trial with Keras Tuner's (0-based) id, or None for an id
    that is not a number."""
    text = str(trial_id)
    return int(text) + 1 if text.isdigit() else None


def number_of(trial):
    """The number of a trial record (or its dict); its trial id when it has none."""
    number = trial.get("number") or trial_number(trial.get("trial_id"))
    return number if number is not None else trial.get("trial_id")


def trial_name(trial) -> str:
    """`trial 14` for a record (or its dict) of number 14."""
    return f"trial {number_of(trial)}"


def trial_text(trial) -> str:
    """A trial's configuration on one line: its pipeline ("?" when not recorded) and the values
    of the model's own hyperparameters, e.g. `per_channel | flip=horizontal | none, units=32`."""
    config = summarize(trial["config"]) if trial.get("config") else "?"
    return config + "".join(f", {k}={v}"
                            for k, v in trial.get("model_hyperparameters", {}).items())


def failure_text(trial) -> str:
    """Why a trial has no score: the reason of its traceback, else its status."""
    return failure_reason(trial.get("message")) or trial.get("status", "")


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Failure)\b.*?:")


def failure_reason(message) -> str:
    """The reason of a failed trial from its traceback: the exception line, unwrapped.

    Keras wraps an error raised inside a layer as `Exception encountered when calling X.call().`
    followed by the original message; the reason is then that message.
    """
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in (message or "").splitlines()]
    lines = [line for line in lines if line]
    exception_lines = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not exception_lines:
        return lines[-1] if lines else ""
    index = exception_lines[-1]
    reason = lines[index]
    if "Exception encountered when calling" in reason and index + 1 < len(lines):
        reason = reason.split(":", 1)[0] + ": " + lines[index + 1]
    return reason
