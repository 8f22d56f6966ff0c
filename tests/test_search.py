"""`autoprep.tune` end to end on tiny folders: results, folds, seeds, errors (the loop's counting,
resume, crash retry, budget and selection without training: test_loop.py)."""

import csv
import json
import os

import keras
import numpy as np
import pytest
from helpers import tiny_model

import autoprep
from autoprep.errors import ArgumentError, ModelError, RunDirectoryError, UnknownChoiceError

# One validation split and no re-evaluation: the automatic cross-validation and the
# re-evaluation of the top configurations have their own tests below and in test_selection.py.
FAST = {"epochs": 1, "tuner": "random", "seed": 0, "verbose": 0, "validation_split": 0.25,
        "reevaluate": 0}
PLAIN = autoprep.SearchSpace(flip="none", policy="none")


@pytest.fixture
def folder(make_folder):
    return make_folder([12, 12, 6])


@pytest.mark.slow
def test_tune_writes_results_and_scores_the_best_on_the_test_split(folder, tmp_path):
    seen = []
    result = autoprep.tune(
        tiny_model,
        folder,
        max_trials=2,
        final_repeats=2,
        directory=tmp_path / "runs",
        on_trial_end=lambda partial, trial: seen.append(trial),
        **FAST,
    )
    run_dir = tmp_path / "runs" / "data0"
    assert result.state == "finished" and len(result.trials) == 2 and len(seen) == 2
    scores = [t["score"] for t in result.trials]
    assert result.best_score == max(scores)
    assert 0 <= result.test_score <= 1 and 0 <= result.baseline_score <= 1
    assert len(result.test_scores) == 2 and len(result.baseline_scores) == 2
    assert result.test_score == pytest.approx(np.mean(result.test_scores))
    assert result.baseline_score == pytest.approx(np.mean(result.baseline_scores))
    assert result.best_config["normalization"]["name"] in autoprep.NORMALIZATIONS
    json.dumps(result.best_config)
    on_disk = json.loads((run_dir / "results.json").read_text())
    assert on_disk["best_config"] == result.best_config
    assert on_disk["test_score"] == result.test_score
    rows = list(csv.DictReader(open(run_dir / "trials.csv")))
    assert [int(r["trial"]) for r in rows] == [t.number for t in result.trials] == [1, 2]
    assert (run_dir / "best_pipeline.py").exists()
    assert not list(run_dir.glob("trial_*/checkpoint*"))  # no weights written per epoch
    # The first trial is the first data-seeded configuration: no augmentation.
    assert result.trials[0]["config"]["augmentation"] == []
    loaded = autoprep.load_result(tmp_path / "runs")
    assert loaded.best_config == result.best_config and loaded.trials == result.trials


@pytest.mark.slow
def test_cv_scores_pooled_folds_and_model_hp_is_cotuned(folder, tmp_path):
    def model_fn(input_shape, num_classes, hp):
        units = hp.Choice("units", [4, 8])
        return keras.Sequential(
            [
                keras.Input(input_shape),
                keras.layers.Flatten(),
                keras.layers.Dense(units, activation="relu"),
                keras.layers.Dense(num_classes),
            ]
        )  # logits

    space = autoprep.SearchSpace(
        normalization="rescale_01",
        flip="none",
        policy="none",
        imbalance="oversample",
        rotation=0.0,
        zoom=0.0,
        translation=0.0,
        contrast=0.0,
        brightness=0.0,
    )
    result = autoprep.tune(
        model_fn,
        folder,
        max_trials=2,
        cv=2,
        test_split=0,
        directory=tmp_path / "runs",
        space=space,
        **FAST,
    )
    assert result.data["folds"] == 2 and result.validation["method"] == "cv"
    assert result.validation["pooled"]
    assert {t["model_hyperparameters"]["units"] for t in result.trials} <= {4, 8}
    assert all(t["config"]["imbalance"]["name"] == "oversample" for t in result.trials)


@pytest.mark.slow
def test_small_validation_splits_become_pooled_cross_validation(folder, tmp_path, capsys):
    settings = {**FAST, "verbose": 1}
    del settings["validation_split"]
    result = autoprep.tune(tiny_model, folder, max_trials=1, test_split=0, space=PLAIN,
                           directory=tmp_path / "runs", **settings)
    assert result.validation["method"] == "auto_cv" and result.data["folds"] == 3
    assert "class_2" in result.validation["reason"]
    assert "pooled out-of-fold predictions of 3-fold" in capsys.readouterr().err
    on_disk = json.loads((tmp_path / "runs" / "data0" / "results.json").read_text())
    assert on_disk["validation"] == result.validation


@pytest.mark.slow
def test_the_same_seed_gives_the_same_search(make_folder, tmp_path):
    """Two short searches with augmentation: the same trials.csv scores.

    test_pipeline.py's `test_a_seeded_training_dataset_draws_the_same_augmentation` shows
    the cause this guards against (augmentation drawn in thread order).
    """
    data = make_folder([30, 20, 8], size=(12, 12))
    space = autoprep.SearchSpace(normalization=["rescale_01", "per_channel"], imbalance="none",
                                 flip="horizontal", rotation=0.2, zoom=0.2, contrast=(0.3, 0.5),
                                 policy="none")

    def scores(name):
        autoprep.tune(tiny_model, data, max_trials=3, batch_size=4, project_name=name,
                      test_split=0, space=space, directory=tmp_path / "runs",
                      **{**FAST, "epochs": 2})
        rows = csv.DictReader(open(tmp_path / "runs" / name / "trials.csv"))
        return [(row["pipeline"], row["score"]) for row in rows]

    first = scores("a")
    assert len(first) == 3 and all("rotation=0.2" in pipeline for pipeline, _ in first)
    assert scores("b") == first


@pytest.mark.slow
def test_a_diverging_trial_is_recorded_as_failed(folder, tmp_path):
    def exploding(input_shape, num_classes):
        inputs = keras.Input(input_shape)
        x = keras.layers.Flatten()(inputs)
        x = keras.layers.Lambda(lambda t: t * float("nan"))(x)
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))

    result = autoprep.tune(
        exploding, folder, max_trials=1, directory=tmp_path / "runs", space=PLAIN, **FAST
    )
    (trial,) = result.trials
    assert trial["status"] == "FAILED" and "diverges" in trial["message"]
    assert result.best_config is None and result.test_score is None


def test_a_run_directory_inside_the_data_is_refused(folder):
    with pytest.raises(RunDirectoryError, match="inside the data directory"):
        autoprep.tune(tiny_model, folder, directory=os.path.dirname(folder))


def test_model_fn_that_raises(folder, tmp_path):
    def broken(input_shape, num_classes):
        raise RuntimeError("no GPU memory left")

    with pytest.raises(ModelError, match="`model_fn` broken.*no GPU memory left"):
        autoprep.tune(broken, folder, directory=tmp_path / "runs")


def test_wrong_number_of_output_units(folder, tmp_path):
    def five_units(input_shape, num_classes):
        return tiny_model(input_shape, 5)

    with pytest.raises(ModelError, match="has 5 output units but the data has 3 classes"):
        autoprep.tune(five_units, folder, directory=tmp_path / "runs")


def test_model_fn_must_return_a_model(folder, tmp_path):
    with pytest.raises(ModelError, match="must return a keras.Model. Received: str"):
        autoprep.tune(lambda shape, n: "model", folder, directory=tmp_path / "runs")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"objective": "f2"}, ArgumentError, "`objective` must be one of balanced_accuracy"),
        ({"tuner": "grid"}, ArgumentError, "`tuner` must be one of bayesian, random"),
        ({"max_trials": 0}, ArgumentError, "`max_trials` must be an int >= 1"),
        ({"epochs": 1.5}, ArgumentError, "`epochs` must be an int >= 1"),
        ({"final_repeats": 0}, ArgumentError, "`final_repeats` must be an int >= 1"),
        ({"time_budget": -1}, ArgumentError, "`time_budget` must be None or seconds"),
        ({"space": {"flip": "none"}}, ArgumentError, "`space` must be an autoprep.SearchSpace"),
    ],
)
def test_bad_arguments_fail_before_any_training(folder, tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", **kwargs)


def test_unknown_names_fail_at_space_construction():
    with pytest.raises(UnknownChoiceError, match="Unknown normalization 'zscore'.*per_channel"):
        autoprep.SearchSpace(normalization="zscore")


def test_load_result_errors(tmp_path):
    with pytest.raises(RunDirectoryError, match="No autoprep results"):
        autoprep.load_result(tmp_path)
    for name in ("a", "b"):
        os.makedirs(tmp_path / name)
        (tmp_path / name / "results.json").write_text("{}")
    with pytest.raises(RunDirectoryError, match="holds several searches"):
        autoprep.load_result(tmp_path)


def test_a_finished_trial_s_record_is_made_once_unless_the_trial_changes(tmp_path,
                                                                         monkeypatch):
    """Every record is read after each trial: a pipeline per record would be quadratic."""
    import types

    import keras_tuner as kt

    from autoprep.search import loop
    from autoprep.search.space import SearchSpace

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    built = []
    pipeline = space.pipeline
    monkeypatch.setattr(space, "pipeline", lambda hp: built.append(1) or pipeline(hp))
    trials = {}
    for number in range(3):
        values = hyperparameters.copy()
        values.values = space.random_values(hyperparameters, number)
        trials[str(number)] = kt.engine.trial.Trial(values, trial_id=str(number),
                                                    status="COMPLETED")
        trials[str(number)].score = 0.5
    search = types.SimpleNamespace(oracle=types.SimpleNamespace(trials=trials))
    recorder = loop._Recorder(None, None, space, objective="accuracy", epochs=1,
                              run_dir=str(tmp_path), data_dir=str(tmp_path), seed=0)
    first = recorder.records(search)
    assert recorder.records(search) == first and len(built) == 3
    trials["1"].score = 0.75  # a changed trial is recorded again
    assert [r.score for r in recorder.records(search)] == [0.5, 0.75, 0.5]
    assert len(built) == 4


def test_records_are_in_trial_order_whatever_order_the_oracle_reloaded_them(tmp_path):
    """A resumed Keras Tuner oracle reloads its trials in the order the file system lists
    their folders; results.json, trials.csv, show and the report list them by number."""
    import types

    import keras_tuner as kt

    from autoprep.search import loop
    from autoprep.search.space import SearchSpace

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    trials = {}
    for trial_id in ("10", "02", "00", "01"):
        values = hyperparameters.copy()
        values.values = space.random_values(hyperparameters, int(trial_id))
        trials[trial_id] = kt.engine.trial.Trial(values, trial_id=trial_id, status="COMPLETED")
        trials[trial_id].score = 0.5
    search = types.SimpleNamespace(oracle=types.SimpleNamespace(trials=trials))
    recorder = loop._Recorder(None, None, space, objective="accuracy", epochs=1,
                              run_dir=str(tmp_path), data_dir=str(tmp_path), seed=0)
    assert [r.number for r in recorder.records(search)] == [1, 2, 3, 11]


def test_the_best_pipeline_module_is_written_again_only_when_the_best_changes(tmp_path):
    import types

    from autoprep.search import loop

    written = []

    def result(best_trial_id, best_score, state="running"):
        return types.SimpleNamespace(
            best_trial_id=best_trial_id, best_score=best_score, state=state,
            save=lambda run_dir, module: written.append(module))

    reporter = loop._Reporter(str(tmp_path), verbose=0, on_trial_end=None)
    for saved in [result("0", 0.5), result("0", 0.5), result("2", 0.7), result("2", 0.7),
                  result("2", 0.7, state="finished")]:
        reporter.save(saved)
    assert written == [True, False, True, False, True]
