"""One clock times the trials and estimates the ETA for `tune(verbose=1)` and the CLI."""

import inspect

import pytest

import autoprep
from autoprep.cli.progress import Progress
from autoprep.run import progress
from autoprep.run.progress import TrialClock, clock


@pytest.fixture
def now(monkeypatch):
    """A fake monotonic clock: `now.time` is the current time, in seconds."""

    class Now:
        time = 1000.0

    monkeypatch.setattr(progress.time, "monotonic", lambda: Now.time)
    return Now


def _result(trials, best=None, data=None, epochs=1):
    return autoprep.TuneResult(best_config=None, best_score=best, objective="accuracy",
                               trials=trials, data=data or {}, epochs=epochs, state="running")


def _record(trial_id, score):
    config = {"normalization": {"name": "per_channel"}, "augmentation": [],
              "imbalance": {"name": "oversample"}}
    return {"trial_id": trial_id, "status": "COMPLETED", "score": score, "config": config,
            "model_hyperparameters": {}, "message": None}


def test_clock():
    assert clock(3725.4) == "1:02:05" and clock(-3) == "0:00:00"


def test_eta_is_the_mean_trial_duration_times_the_trials_left(now):
    timer = TrialClock(max_trials=5)
    assert timer.mean_duration() is None and timer.eta(0) == 0
    now.time += 30  # the first trial: timed from the clock's start
    timer.trial_ended()
    timer.trial_started()
    now.time += 5  # between trials: not counted
    timer.trial_started()
    now.time += 10
    timer.trial_ended()
    assert timer.durations == [30, 10] and timer.mean_duration() == 20
    assert timer.eta(2) == 60 and timer.eta(7) == 0
    assert timer.elapsed() == 45


def test_eta_never_exceeds_the_time_left_in_the_budget(now):
    timer = TrialClock(max_trials=10, time_budget=100)
    now.time += 40
    timer.trial_ended()
    assert timer.eta(1) == 60  # not 9 x 40
    now.time += 70
    assert timer.eta(1) == 0


def test_library_and_cli_print_the_same_line(now, tmp_path, capsys):
    trials = [_record("0", 0.5), _record("1", 0.75)]
    result = _result(trials, best=0.75)
    timer = TrialClock(max_trials=4)
    (tmp_path / "autoprep.json").write_text('{"settings": null}')  # a run directory
    cli = Progress(str(tmp_path), max_trials=4)
    now.time += 61
    timer.trial_ended()
    cli.trial_ended(result, trials[1])
    line = timer.line(result, trials[1])
    assert line == ("trial 2/4  per_channel | no augmentation | oversample  accuracy=0.7500  "
                    "best=0.7500  elapsed 0:01:01  ETA 0:02:02")
    assert capsys.readouterr().out == line + "\n"
    assert (tmp_path / "autoprep.log").read_text().endswith(f"  {line}\n")


def test_the_line_names_the_trial_by_its_number_not_by_how_many_ended(now):
    # In a distributed search trials end out of order: Keras Tuner's trial id "13" ending
    # as the second one is still trial 14, the number `show`, the report and trials.csv use.
    trials = [_record("0", 0.5), _record("13", 0.75)]
    line = TrialClock(max_trials=16).line(_result(trials, best=0.75), trials[1])
    assert line.startswith("trial 14/16  ")


def test_the_cli_writes_no_log_into_a_folder_without_the_run_marker(now, tmp_path, capsys):
    cli = Progress(str(tmp_path), max_trials=4)
    cli.say("a line")
    cli.flush()
    assert not (tmp_path / "autoprep.log").exists()
    (tmp_path / "autoprep.json").write_text('{"settings": null}')
    cli.flush()
    assert (tmp_path / "autoprep.log").read_text().endswith("  a line\n")


def test_a_failed_trial_shows_its_reason(now):
    record = {**_record("0", None), "status": "FAILED",
              "message": "Traceback...\nValueError: loss is NaN"}
    line = TrialClock(max_trials=2).line(_result([record]), record)
    assert "failed (ValueError: loss is NaN)  best=-" in line


def test_the_first_trial_line_says_what_a_trial_costs_and_what_half_the_size_saves(now):
    trials = [_record("0", 0.5), _record("1", 0.75)]
    photos = _result(trials, best=0.75, data={"image_size": [192, 256], "folds": 1}, epochs=8)
    timer = TrialClock(max_trials=4)
    now.time += 190
    timer.trial_ended()
    first = timer.line(photos, trials[0])
    assert first.splitlines()[1] == (
        "  a trial (8 epochs) took 0:03:10 at 192x256; image_size=(96, 128) (--image-size "
        "96x128) would take about a quarter of that")
    timer.trial_started()
    now.time += 150
    timer.trial_ended()
    assert "\n" not in timer.line(photos, trials[1])  # said once
    folds = _result(trials, data={"image_size": [40, 56], "folds": 3}, epochs=1)
    small = TrialClock(max_trials=4)
    small.trial_ended()
    # Too small to halve; a cross-validated trial trains once per fold.
    assert small.line(folds, trials[0]).splitlines()[1] == (
        "  a trial (1 epoch on 3 folds) took 0:00:00 at 40x56")


def test_the_cli_times_the_first_trial_from_the_first_model_built_after_decoding(now, tmp_path,
                                                                                  capsys):
    from autoprep.data.decode import DecodePlan

    cli = Progress(str(tmp_path), max_trials=4)

    def build(input_shape, num_classes, hp=None):
        return (input_shape, num_classes, hp)

    timed = cli.timed(build)
    assert timed((8, 8, 1), 2, hp="hp") == ((8, 8, 1), 2, "hp")  # the probe, before the plan
    assert "hp" in inspect.signature(timed).parameters  # autoprep passes `hp` only if taken
    now.time += 10
    cli.planned(DecodePlan(count=4, image_size=(8, 8), channels=1, size_reason="as given",
                           memory_limit=2**30))
    assert capsys.readouterr().out.startswith("data: 4 images at 8x8x1 (as given)")
    now.time += 100  # decoding
    timed((8, 8, 1), 2)  # the first trial's model
    now.time += 30
    timed((8, 8, 1), 2)  # its second fold
    now.time += 30
    cli.trial_ended(_result([_record("0", 0.5)]), _record("0", 0.5))
    assert cli.clock.durations == [60]
