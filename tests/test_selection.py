"""Choosing the winner: top-k re-evaluation and the one-standard-error rule."""

import pytest

from autoprep.run.trial import TrialRecord
from autoprep.search.selection import Candidate, candidates, complexity, one_standard_error

PLAIN = {"normalization": {"name": "rescale_01"}, "augmentation": [],
         "imbalance": {"name": "none"}}
RICH = {"normalization": {"name": "per_channel"},
        "augmentation": [{"name": "rotation", "intensity": 0.1},
                         {"name": "mixup", "intensity": 0.2}],
        "imbalance": {"name": "oversample"}}


def test_complexity_is_the_space_s_count():
    assert complexity(PLAIN) == 0 and complexity(RICH) == 3  # rotation, mixup, oversample


def test_the_simplest_configuration_within_one_standard_error_wins():
    rich = Candidate("1", RICH, 0.95, scores=[0.90, 0.80])  # mean 0.85, SE 0.05
    plain = Candidate("0", PLAIN, 0.80, scores=[0.82, 0.80])  # mean 0.81: within 1 SE
    winner, reason = one_standard_error([rich, plain], direction="max")
    assert winner is plain and "simplest" in reason and "trial 1" in reason


def test_a_difference_beyond_one_standard_error_keeps_the_best():
    rich = Candidate("1", RICH, 0.95, scores=[0.86, 0.84])  # mean 0.85, SE 0.01
    plain = Candidate("0", PLAIN, 0.80, scores=[0.82, 0.80])
    winner, _ = one_standard_error([rich, plain], direction="max")
    assert winner is rich
    low_loss = Candidate("1", RICH, 0.1, scores=[0.10, 0.12])
    high_loss = Candidate("0", PLAIN, 0.3, scores=[0.30, 0.31])
    assert one_standard_error([low_loss, high_loss], direction="min")[0] is low_loss


def test_the_reason_names_trials_by_the_numbers_the_log_shows():
    # Keras Tuner's trial id "13" is the 14th trial: the log prints it as "trial 14/16".
    best = Candidate("13", RICH, 0.95, scores=[0.95, 0.94])
    first = Candidate("0", PLAIN, 0.70, scores=[0.70, 0.71], default=True)
    winner, reason = one_standard_error([best, first], direction="max")
    assert winner is best and reason.startswith("trial 14: ") and "(trial 1, " in reason
    assert "trial 13" not in reason and best.to_dict()["number"] == 14


def test_candidates_are_the_top_distinct_configurations_and_the_default():
    def record(trial_id, config, score, status="COMPLETED"):
        return TrialRecord(trial_id, status, score, config)

    other = {**PLAIN, "imbalance": {"name": "oversample"}}
    records = [record("0", PLAIN, 0.5), record("1", RICH, 0.9), record("2", RICH, 0.8),
               record("3", other, 0.7), record("4", RICH, None, "FAILED")]
    pool = candidates(records, top=2, direction="max", default_config=PLAIN)
    assert [(c.trial_id, c.default) for c in pool] == [("1", False), ("3", False), ("0", True)]


def _paired(per_class: int):
    """Labels of 4 classes x `per_class` images and two prediction patterns that differ on
    some images: in class 0, each is right where the other is wrong; in class 1,
    the first is right on a third of the images the second gets wrong."""
    import numpy as np

    labels = np.repeat(np.arange(4), per_class)
    a = np.ones(4 * per_class, bool)
    b = np.ones(4 * per_class, bool)
    third = per_class // 3
    a[:third] = False  # class 0: a wrong on its first third, b on its second
    b[third:2 * third] = False
    b[per_class:per_class + third] = False  # class 1: b wrong on a third
    return labels, a, b


@pytest.mark.parametrize("per_class, simple_wins", [(3, True), (30, False)])
def test_the_validation_sample_s_noise_comes_from_paired_predictions(per_class, simple_wins):
    labels, a, b = _paired(per_class)
    mean_a, mean_b = 1 - 1 / 12, 1 - 2 / 12  # balanced accuracies: 1/12 apart
    rich = Candidate("1", RICH, 0.9, scores=[mean_a, mean_a], labels=[labels, labels],
                     correct=[a, a])
    plain = Candidate("0", PLAIN, 0.8, scores=[mean_b, mean_b], labels=[labels, labels],
                      correct=[b, b])
    # Equal re-evaluations: no training noise; 3 images a class leave the 1/12 within noise.
    winner, _ = one_standard_error([rich, plain], direction="max", objective="balanced_accuracy")
    assert (winner is plain) == simple_wins
    assert plain.noise == pytest.approx(0.1667 if per_class == 3 else 0.0438, abs=1e-3)
    # Without the images there is no noise at all: the best mean wins.
    bare = [Candidate("1", RICH, 0.9, scores=[mean_a] * 2), Candidate("0", PLAIN, 0.8,
                                                                       scores=[mean_b] * 2)]
    assert one_standard_error(bare, direction="max")[0].trial_id == "1"


def test_the_first_configuration_wins_within_noise_even_over_a_simpler_one():
    first = {**PLAIN, "imbalance": {"name": "inverse_frequency"}}  # complexity 1
    weighted = Candidate("0", first, 0.80, scores=[0.82, 0.86], default=True)
    unweighted = Candidate("3", PLAIN, 0.82, scores=[0.83, 0.85])  # complexity 0
    rich = Candidate("5", RICH, 0.90, scores=[0.86, 0.84])  # the best mean, 0.85
    winner, reason = one_standard_error([rich, unweighted, weighted], direction="max")
    # Trials are named by their number, as in the log and `show`: trial id "5" is trial 6.
    assert winner is weighted and "first configuration" in reason and "trial 6)" in reason
    assert reason.startswith("trial 1 ")
    far = Candidate("0", first, 0.70, scores=[0.70, 0.71], default=True)
    winner, reason = one_standard_error([rich, unweighted, far], direction="max")
    assert winner is unweighted  # the first one is beyond the noise: the simplest near the best
    assert "simplest" in reason
    equal = Candidate("3", RICH, 0.82, scores=[0.83, 0.85])  # as complex as the best
    winner, reason = one_standard_error([rich, equal, far], direction="max")
    assert winner is rich and reason.startswith("trial 6: the best mean")
    assert "first configuration (trial 1, 0.7050) is beyond the noise" in reason
    assert "none within the noise is simpler" in reason
