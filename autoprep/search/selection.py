"""Choosing the winner: re-evaluate the top configurations, then the one-standard-error rule.

A search's best trial score is the maximum of many noisy scores, so it is biased upwards and
on small data often a lucky draw. Before declaring the winner, the top configurations (and the
default configuration) are trained again on reshuffled folds with fresh seeds; the simplest
configuration whose mean re-evaluated score lies within one standard error of the best mean
wins (Hastie, Tibshirani & Friedman, "The Elements of Statistical Learning", 7.10).
This module is pure: it ranks and chooses, and never trains.
"""

import dataclasses
import json
import math

import numpy as np

from autoprep.search.space import complexity

REPEATS = 2  # re-evaluations of each candidate


@dataclasses.dataclass
class Candidate:
    """A configuration re-evaluated before the winner is declared.

    Attributes:
        trial_id: The trial that ran it.
        config: Its (unfitted) pipeline config.
        search_score: Its trial's score.
        scores: Its re-evaluation scores.
        default: True for the space's default configuration.
    """

    trial_id: str
    config: dict
    search_score: float
    scores: list = dataclasses.field(default_factory=list)
    default: bool = False

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std(self) -> float:
        """Sample standard deviation of the re-evaluations (0 for one)."""
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else 0.0

    @property
    def standard_error(self) -> float:
        return self.std / math.sqrt(len(self.scores))

    def to_dict(self) -> dict:
        return {"trial_id": self.trial_id, "default": self.default, "config": self.config,
                "search_score": self.search_score, "scores": self.scores,
                "mean": self.mean, "std": self.std, "complexity": complexity(self.config)}


def candidates(records, *, top: int, direction: str, default_config=None) -> list:
    """The `top` best-scoring distinct configurations, and the default one if it was tried."""
    sign = -1 if direction == "max" else 1
    scored = sorted((r for r in records if r.completed and r.config is not None),
                    key=lambda r: sign * r.score)
    chosen, seen = [], set()
    for record in scored:
        key = _key(record.config)
        is_default = default_config is not None and key == _key(default_config)
        if key in seen or (len(chosen) >= top and not is_default):
            continue
        if is_default or len(chosen) < top:
            seen.add(key)
            chosen.append(Candidate(record.trial_id, record.config, record.score,
                                    default=is_default))
    return chosen


def one_standard_error(candidates, *, direction: str):
    """The simplest candidate whose mean is within one standard error of the best mean.

    Returns:
        (winner, reason): the chosen `Candidate` and a sentence saying why.
    """
    sign = 1 if direction == "max" else -1
    best = max(candidates, key=lambda c: sign * c.mean)
    near = [c for c in candidates if sign * (best.mean - c.mean) <= best.standard_error]
    winner = min(near, key=lambda c: (complexity(c.config), -sign * c.mean))
    if winner is best:
        reason = (f"trial {best.trial_id}: the best mean of {len(best.scores)} re-evaluations "
                  f"({best.mean:.4f} ± {best.std:.4f})")
    else:
        reason = (f"trial {winner.trial_id} ({winner.mean:.4f}): the simplest configuration "
                  f"within one standard error ({best.standard_error:.4f}) of the best mean "
                  f"({best.mean:.4f}, trial {best.trial_id})")
    return winner, reason


def _key(config) -> str:
    return json.dumps(config, sort_keys=True)
