"""The doctor's training tests, and how a symptom is pinned on a cause.

A symptom (a batch the model cannot fit, a loss that diverges over a short run, a collapse to
the majority class, a far-off initial loss) is blamed on a cause only when changing that cause,
and nothing else, makes the symptom go: the same test runs again with the inputs scaled, a
smaller or larger learning rate, or the classes weighted (`Change`). `attribute` tries the
suspects and ranks the changes that cured it.
"""

import dataclasses
import functools
import math
import operator

import numpy as np

from autoprep.doctor.report import number

OVERFIT_STEPS = 100  # steps of the one-batch overfit test
OVERFIT_TARGET = 0.25  # the loss must fall below this fraction of ln(num_classes)
END_WINDOW = 10  # the last steps whose median loss says where a run ended
DIVERGENCE_FACTOR = 2  # ending above this many times max(start, ln K) is divergence
SPIKE_FACTOR = 10  # a peak this many times max(start, ln K): a spike (normal when brief)
COLLAPSE_SHARE = 0.9  # share of a class-balanced sample predicted as one class


@dataclasses.dataclass(frozen=True)
class Change:
    """A suspected cause, changed for a counterfactual re-run; `Change()` changes nothing.

    Attributes:
        causes: The finding ids this change tests (several for a combination).
        text: How evidence names it, e.g. "with inputs scaled to [0, 1]".
        inputs: "raw" (as the model gets them), "unit" (divided by 255) or "standard" (mean 0
            and std 1 per channel).
        learning_rate_factor: Multiplies the optimizer's learning rate.
        class_weights: Weights the loss by inverse class frequency.
    """

    causes: tuple = ()
    text: str = "as it is"
    inputs: str = "raw"
    learning_rate_factor: float = 1.0
    class_weights: bool = False

    def __add__(self, other):
        return Change(
            causes=self.causes + other.causes,
            text=f"{self.text} and {other.text.removeprefix('with ')}",
            inputs=other.inputs if other.inputs != "raw" else self.inputs,
            learning_rate_factor=self.learning_rate_factor * other.learning_rate_factor,
            class_weights=self.class_weights or other.class_weights,
        )


@dataclasses.dataclass
class LossTrace:
    """Per-step losses of a training test, judged by where they end, not by their peak: a
    brief spike is normal, a loss that ends far above where it started is divergence."""

    losses: list
    chance: float  # ln(num_classes), the loss of a model unsure of every class

    @property
    def end(self) -> float:
        """The median loss of the last `END_WINDOW` steps."""
        return float(np.median(self.losses[-END_WINDOW:]))

    @property
    def reference(self) -> float:
        return max(self.losses[0], self.chance) if math.isfinite(self.losses[0]) else self.chance

    @property
    def diverged(self) -> bool:
        return not math.isfinite(self.end) or self.end > DIVERGENCE_FACTOR * self.reference

    @property
    def spiked(self) -> bool:
        peak = max(self.losses)
        return not np.isfinite(self.losses).all() or peak > SPIKE_FACTOR * self.reference

    def _trend(self) -> str:
        start, steps = number(self.losses[0]), len(self.losses)
        if not math.isfinite(self.losses[-1]):
            return f"the loss turns {number(self.losses[-1])} at step {steps} (from {start})"
        ended = f"{number(self.end)} (median of the last {min(END_WINDOW, steps)} steps)"
        return f"loss {start} -> {ended} after {steps} steps{self._spike()}"

    def _spike(self) -> str:
        peak = max(self.losses)
        return f", peaking at {number(peak)}" if self.spiked and math.isfinite(peak) else ""


class OneBatch(LossTrace):
    """The one-batch overfit test: a fresh model trained on 16 images until the loss falls
    below `target` (it fits) or is not finite."""

    @property
    def target(self) -> float:
        return OVERFIT_TARGET * self.chance

    @property
    def fits(self) -> bool:
        return math.isfinite(self.losses[-1]) and self.losses[-1] < self.target

    @property
    def sick(self) -> bool:
        return not self.fits

    @property
    def badness(self) -> tuple:
        """Orders runs from best to worst: those that fit by their steps, then the others by
        where they end."""
        if self.fits:
            return 0, len(self.losses)
        return 1, self.end if math.isfinite(self.end) else math.inf

    def describe(self) -> str:
        if self.fits:
            return (f"fits in {len(self.losses)} steps: loss {number(self.losses[0])} -> "
                    f"{number(self.losses[-1])}{self._spike()}")
        return f"{'diverges' if self.diverged else 'does not fit'}: {self._trend()}"


class TrainingTrend(LossTrace):
    """The loss of each step of a short training run on changing batches."""

    @property
    def sick(self) -> bool:
        return self.diverged

    @property
    def badness(self) -> float:
        return self.end if math.isfinite(self.end) else math.inf

    def describe(self) -> str:
        verdict = ("diverges" if self.diverged else "learns" if self.end < self.reference
                   else "does not diverge")
        return f"{verdict}: {self._trend()}"


@dataclasses.dataclass
class Collapse:
    """After a short run: the share of a class-balanced sample predicted as each class."""

    share: np.ndarray  # share[k]: fraction of each class predicted as k, averaged over classes
    majority: int  # index of the largest class
    class_names: list

    @property
    def sick(self) -> bool:
        return bool(np.isfinite(self.share).all() and self.share.argmax() == self.majority
                    and self.share.max() >= COLLAPSE_SHARE)

    @property
    def badness(self) -> float:
        return float(self.share.max()) if np.isfinite(self.share).all() else math.inf

    def describe(self) -> str:
        if not np.isfinite(self.share).all():
            return "outputs NaN"
        winner = int(self.share.argmax())
        return (f"predicts {self.class_names[winner]!r} for {self.share.max():.0%} of a "
                "class-balanced sample")


@dataclasses.dataclass
class InitialLoss:
    """The loss of the freshly built model on one batch, against ln(num_classes)."""

    loss: float
    chance: float

    @property
    def sick(self) -> bool:
        return not (math.isfinite(self.loss) and 0.5 * self.chance <= self.loss
                    <= 2 * self.chance + 1)

    @property
    def badness(self) -> float:
        return abs(math.log(self.loss / self.chance)) if 0 < self.loss < math.inf else math.inf

    def describe(self) -> str:
        return f"starts at loss {number(self.loss)}"


@dataclasses.dataclass
class Verdict:
    """One symptom: the user's run, the changes tried and those that cured it (best first)."""

    symptom: str  # "one_batch", "trend", "collapse" or "initial_loss"
    severity: str
    baseline: object
    tried: list  # (Change, outcome) in the order run
    cures: list  # (Change, outcome), best first

    @property
    def causes(self) -> tuple:
        return self.cures[0][0].causes if self.cures else ()


def attribute(test, suspects, evidenced) -> tuple:
    """Re-runs `test(change)` for the suspects; returns (tried, cures ranked best first).

    Args:
        test: Runs the symptom's test with a `Change`; returns an outcome (`sick`, `badness`).
        suspects: One list of changes per suspected cause, mildest first; within a list, the
            next change is tried only when the previous one did not cure.
        evidenced: `evidenced(change)`: the cause is visible without training (raw pixels,
            an unusual learning rate, imbalanced classes). Such causes are tried first and
            outrank the others among cures; once one cured, causes without such evidence are
            not tried. Cures are then ranked by how well they cured (`badness`).

    When nothing cures alone and there are several suspects, the most helpful change of each
    is tried together, once.
    """
    tried, cures = [], []
    for group in sorted(suspects, key=lambda group: not evidenced(group[0])):
        if cures and evidenced(cures[0][0]) and not evidenced(group[0]):
            break
        for change in group:
            tried.append((change, test(change)))
            if not tried[-1][1].sick:
                cures.append(tried[-1])
                break
    if not cures and len(suspects) > 1:
        best = [min((t for t in tried if t[0] in group), key=lambda t: t[1].badness)[0]
                for group in suspects]
        combined = functools.reduce(operator.add, best)
        tried.append((combined, test(combined)))
        cures = [tried[-1]] if not tried[-1][1].sick else []
    cures.sort(key=lambda cure: (not evidenced(cure[0]), cure[1].badness))
    return tried, cures
