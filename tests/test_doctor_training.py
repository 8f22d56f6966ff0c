"""autoprep.doctor._training: judging a loss trace, and pinning a symptom on the cause whose
change cures it (with stub tests: no training), and how findings write numbers."""

import math
import types

import numpy as np
import pytest

from autoprep.doctor._training import (
    Change,
    Collapse,
    InitialLoss,
    OneBatch,
    TrainingTrend,
    attribute,
)
from autoprep.doctor.report import number

CHANCE = math.log(2)


def test_a_brief_spike_then_a_fit_is_healthy():
    trace = OneBatch([0.69, 12.0, 3.0, 0.9, 0.4, 0.1], CHANCE)
    assert trace.fits and not trace.sick and trace.spiked
    assert trace.describe() == "fits in 6 steps: loss 0.69 -> 0.1, peaking at 12"


def test_a_run_is_judged_by_where_it_ends_not_by_its_peak():
    recovering = [0.69, 40.0] + [0.5] * 98
    assert not OneBatch(recovering, CHANCE).diverged
    assert OneBatch(recovering, CHANCE).describe().startswith("does not fit: loss 0.69 -> 0.5")
    ending_high = [0.69, 0.6] + [3.0] * 98
    assert OneBatch(ending_high, CHANCE).diverged
    one_high_step = [0.69] * 99 + [50.0]  # the median of the last steps ignores one jump
    assert not OneBatch(one_high_step, CHANCE).diverged


def test_a_non_finite_loss_is_divergence():
    trace = OneBatch([0.69, 80.0, float("nan")], CHANCE)
    assert trace.diverged and trace.sick
    assert trace.describe() == "diverges: the loss turns NaN at step 3 (from 0.69)"


def test_runs_that_fit_rank_before_those_that_do_not():
    fast, slow = OneBatch([0.7] * 9 + [0.1], CHANCE), OneBatch([0.7] * 59 + [0.1], CHANCE)
    stuck = OneBatch([0.7] * 100, CHANCE)
    assert sorted([stuck, slow, fast], key=lambda t: t.badness) == [fast, slow, stuck]


def test_training_trend_spikes_are_normal_divergence_is_not():
    assert not TrainingTrend([0.7, 9.0, 2.0] + [0.6] * 57, CHANCE).sick
    trend = TrainingTrend([0.7, 90.0] + [8.0] * 58, CHANCE)
    assert trend.sick and trend.describe().startswith("diverges: loss 0.7 -> 8 (median")


def test_collapse_is_to_the_majority_class_only():
    names = ["a", "b"]
    assert Collapse(np.array([0.95, 0.05]), 0, names).sick
    assert not Collapse(np.array([0.05, 0.95]), 0, names).sick  # to a minority: not this one
    assert not Collapse(np.array([0.6, 0.4]), 0, names).sick
    assert not Collapse(np.array([np.nan, np.nan]), 0, names).sick


def test_initial_loss_near_chance_is_healthy():
    assert not InitialLoss(0.7, CHANCE).sick
    assert InitialLoss(13.3, CHANCE).sick and InitialLoss(0.01, CHANCE).sick


SCALE = Change(("unscaled_input",), "with inputs scaled", inputs="unit")
LOWER = Change(("learning_rate_too_high",), "with a 10x smaller rate", learning_rate_factor=0.1)
LOWEST = Change(("learning_rate_too_high",), "with a 100x smaller rate", learning_rate_factor=0.01)


def _stub(results):
    """A test whose outcome per change is given; records the changes it ran."""
    ran = []

    def test(change):
        ran.append(change)
        sick, badness = results[change]
        return types.SimpleNamespace(sick=sick, badness=badness)

    return test, ran


def _evidence(*causes):
    return lambda change: any(cause in causes for cause in change.causes)


def test_a_cure_with_evidence_stops_the_search_for_causes_without():
    test, ran = _stub({SCALE: (False, 40)})
    tried, cures = attribute(test, [[LOWER, LOWEST], [SCALE]], _evidence("unscaled_input"))
    assert ran == [SCALE] and [c for c, _ in cures] == [SCALE]


def test_when_the_suspect_with_evidence_fails_the_others_are_tried_and_ranked():
    test, ran = _stub({SCALE: (True, 3.0), LOWER: (True, 2.0), LOWEST: (False, 20)})
    tried, cures = attribute(test, [[SCALE], [LOWER, LOWEST]], _evidence("unscaled_input"))
    assert ran == [SCALE, LOWER, LOWEST] and [c for c, _ in cures] == [LOWEST]


def test_cures_are_ranked_by_evidence_then_by_how_well_they_cured():
    test, _ = _stub({SCALE: (False, 40), LOWER: (False, 10)})
    both = _evidence("unscaled_input", "learning_rate_too_high")
    assert [c for c, _ in attribute(test, [[SCALE], [LOWER]], both)[1]] == [LOWER, SCALE]
    test, _ = _stub({SCALE: (False, 40), LOWER: (False, 10)})
    assert [c for c, _ in attribute(test, [[LOWER], [SCALE]], _evidence())[1]] == [LOWER, SCALE]


def test_when_nothing_cures_alone_the_most_helpful_changes_are_tried_together():
    together = SCALE + LOWER
    test, ran = _stub({SCALE: (True, 3.0), LOWER: (True, 2.0), LOWEST: (True, 2.5),
                       together: (False, 30)})
    tried, cures = attribute(test, [[SCALE], [LOWER, LOWEST]], _evidence("unscaled_input"))
    assert ran == [SCALE, LOWER, LOWEST, together]
    assert cures[0][0].causes == ("unscaled_input", "learning_rate_too_high")
    assert together.inputs == "unit" and together.learning_rate_factor == 0.1
    assert together.text == "with inputs scaled and a 10x smaller rate"


def test_when_nothing_cures_the_verdict_has_no_cause():
    test, ran = _stub({SCALE: (True, 3.0)})
    tried, cures = attribute(test, [[SCALE]], _evidence())
    assert cures == [] and [c for c, _ in tried] == [SCALE]


@pytest.mark.parametrize("value, text", [
    (0.0010000000474974513, "1e-3"), (1e-4, "1e-4"), (0.005, "5e-3"), (0.05, "0.05"),
    (0.693147, "0.693"), (17.8, "17.8"), (4790.0, "4790"), (12345, "1.23e4"), (1.0, "1"),
    (10, "10"), (0.25, "0.25"), (-3.2, "-3.2"), (0, "0"), (9999.9, "1e4"), (2.5e-8, "2.5e-8"),
    (float("nan"), "NaN"), (float("inf"), "inf"),
])
def test_numbers_are_written_as_a_person_writes_them(value, text):
    assert number(value) == text


def test_number_digits():
    assert number(127.456, 4) == "127.5" and number(4.0, 2) == "4"
