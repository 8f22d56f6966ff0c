"""Choosing the winner: re-evaluate the top configurations, then keep the first one unless
another beats it by more than the noise.

A search's best trial score is the maximum of many noisy scores, so it is biased upwards and on
small data often a lucky draw. Before declaring the winner, the top configurations and the
search's first configuration (the data-seeded best bet: normalization from the images,
imbalance handling chosen from the class counts, no augmentation) are trained again on
reshuffled folds with fresh seeds, every candidate on the same folds. The noise of a difference
between two candidates has two parts: training noise (seeds, folds: the spread of the
re-evaluations, pooled over the candidates) and the finite validation sample (the same images
decide both; a class with 4 validation images moves balanced accuracy in steps of 1/(4 x
classes)), estimated image by image from the two candidates' paired predictions. Every
candidate whose mean lies within one standard error of that difference from the best mean is
"within noise"; among them the first configuration wins if it is one of them, else the simplest
one (fewest ops switched on) wins: the one-standard-error rule (Hastie, Tibshirani & Friedman,
"The Elements of Statistical Learning", 7.10) with the search's prior as the simplest model.
This module is pure: it ranks and chooses, and never trains.
"""

import dataclasses
import json
import math

import numpy as np

from autoprep import objectives
from autoprep.run.trial import trial_number
from autoprep.search.space import complexity

REPEATS = 2  # re-evaluations of each candidate


@dataclasses.dataclass
class Candidate:
    """A configuration re-evaluated before the winner is declared.

    Attributes:
        trial_id: Keras Tuner's id of the trial that ran it.
        config: Its (unfitted) pipeline config.
        search_score: Its trial's score.
        scores: Its re-evaluation scores.
        default: True for the search's first configuration (the data-seeded best bet).
        labels, correct: Per re-evaluation, the pooled validation labels and whether this
            candidate predicted each image right (see `Evaluation`); not saved.
        noise: The standard error of its difference from the best mean (set by `choose`).
        number: The number of the trial that ran it, as the log and `show` name it.
    """

    trial_id: str
    config: dict
    search_score: float
    scores: list = dataclasses.field(default_factory=list)
    default: bool = False
    labels: list = dataclasses.field(default_factory=list, repr=False)
    correct: list = dataclasses.field(default_factory=list, repr=False)
    noise: float = None
    number: int = None

    def __post_init__(self):
        if self.number is None:
            self.number = trial_number(self.trial_id)

    def add(self, evaluation):
        """Records one re-evaluation (an `Evaluation`)."""
        self.scores.append(evaluation.score)
        self.labels.append(evaluation.labels)
        self.correct.append(evaluation.correct)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Sample standard deviation of the re-evaluations (0 for one)."""
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0

    def to_dict(self) -> dict:
        return {"trial_id": self.trial_id, "number": self.number, "default": self.default,
                "config": self.config,
                "search_score": self.search_score, "scores": self.scores,
                "mean": self.mean, "std": self.std, "complexity": complexity(self.config),
                "noise": self.noise}


def candidates(records, *, top: int, direction: str, default_config=None) -> list:
    """The `top` best-scoring distinct configurations, and the default one if it was tried."""
    scored = objectives.ranked((r for r in records if r.completed and r.config is not None),
                               direction, key=lambda r: r.score)
    chosen, seen = [], set()
    for record in scored:
        key = _key(record.config)
        is_default = default_config is not None and key == _key(default_config)
        if key in seen or (len(chosen) >= top and not is_default):
            continue
        if is_default or len(chosen) < top:
            seen.add(key)
            chosen.append(Candidate(record.trial_id, record.config, record.score,
                                    default=is_default, number=record.number))
    return chosen


def one_standard_error(candidates, *, direction: str, objective: str = "accuracy"):
    """The winner among re-evaluated candidates: the first configuration when its mean is
    within noise of the best mean, else the simplest candidate within noise (module docstring).

    Args:
        candidates: `Candidate`s with their re-evaluation scores (and, for the image-by-image
            part of the noise, their `labels` and `correct`).
        direction: "max" or "min".
        objective: The objective's name: "balanced_accuracy" and "macro_f1" weigh each class
            equally in the validation-sample noise, "accuracy" each image; "loss" has no
            validation-sample part.

    Returns:
        (winner, reason): the chosen `Candidate` and a sentence saying why.
    """
    sign = objectives.sign(direction)
    best = objectives.best(candidates, direction, key=lambda c: c.mean)
    training = pooled_variance(candidates)
    for candidate in candidates:
        candidate.noise = difference_noise(best, candidate, training, objective)
    near = [c for c in candidates if sign * (best.mean - c.mean) <= c.noise]
    first = next((c for c in near if c.default), None)
    winner = first or min(near, key=lambda c: (complexity(c.config), -sign * c.mean))
    if winner is best:
        reason = (f"trial {best.number}: the best mean of {len(best.scores)} re-evaluations "
                  f"({best.mean:.4f} ± {best.std:.4f})")
        beaten = next((c for c in candidates if c.default and c is not best), None)
        if beaten is not None:
            reason += (f"; the search's first configuration (trial {beaten.number}, "
                       f"{beaten.mean:.4f}) is beyond the noise ({beaten.noise:.4f})")
        if any(c is not best for c in near):
            reason += "; none within the noise is simpler"
    else:
        which = ("the search's first configuration" if winner is first
                 else "the simplest configuration")
        reason = (f"trial {winner.number} ({winner.mean:.4f}): {which}, within the noise "
                  f"({winner.noise:.4f}) of the best mean ({best.mean:.4f}, trial {best.number})")
    return winner, reason


def pooled_variance(candidates) -> float:
    """The training noise: the variance of one re-evaluation score, pooled over candidates."""
    spreads = [(len(c.scores) - 1, np.var(c.scores, ddof=1)) for c in candidates
               if len(c.scores) > 1]
    freedom = sum(df for df, _ in spreads)
    return float(sum(df * v for df, v in spreads) / freedom) if freedom else 0.0


def difference_noise(best, other, training_variance, objective) -> float:
    """Standard error of `best.mean - other.mean` as an estimate of their difference on new
    images: training noise of two means (unpaired, so on the safe side) plus the validation
    sample's part, from the two candidates' paired image-by-image predictions."""
    if other is best:
        return 0.0
    repeats = max(1, min(len(best.scores), len(other.scores)))
    variance = 2 * training_variance / repeats
    if objective != "loss":
        samples = [_sample_variance(labels, a, b, objective)
                   for labels, a, b in zip(best.labels, best.correct, other.correct)
                   if labels is not None and a is not None and b is not None]
        # The same images decide every repeat: their part does not shrink with repeats.
        variance += float(np.mean(samples)) if samples else 0.0
    return math.sqrt(variance)


def _sample_variance(labels, correct_a, correct_b, objective) -> float:
    """Variance, over new validation samples of the same class sizes, of the difference in
    the objective between two classifiers that were right on `correct_a` and `correct_b`."""
    labels = np.asarray(labels)
    diff = np.asarray(correct_a, np.float64) - np.asarray(correct_b, np.float64)
    if objective == "accuracy":
        return float(np.var(diff, ddof=1) / len(diff)) if len(diff) > 1 else float(diff @ diff)
    classes = np.unique(labels)
    total = 0.0
    for k in classes:
        part = diff[labels == k]
        # One image: its squared difference is the only (upward) estimate there is.
        total += (np.var(part, ddof=1) if len(part) > 1 else float(part @ part)) / len(part)
    return total / len(classes) ** 2


def _key(config) -> str:
    return json.dumps(config, sort_keys=True)
