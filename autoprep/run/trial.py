"""Trial records: what one finished trial of a search was, as stored in results.json."""

import dataclasses
import enum


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
        trial_id: Keras Tuner's id of the trial.
        status: A `TrialStatus`.
        score: The validation objective (None when the trial failed).
        config: The pipeline config (unfitted), or None when the space was changed by hand.
        model_hyperparameters: The user's own hyperparameters of the trial.
        message: Keras Tuner's traceback of a failed trial, or None.
        worker: The Keras Tuner id of the distributed worker that ran the trial (`tuner1` for
            `--worker 1`), or None in a search of one process (and in runs of older versions).
    """

    trial_id: str
    status: TrialStatus
    score: float = None
    config: dict = None
    model_hyperparameters: dict = dataclasses.field(default_factory=dict)
    message: str = None
    worker: str = None

    def __post_init__(self):
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
        state = dataclasses.asdict(self)
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
