"""The examples run: the model file builds for the CLI, and an exported module trains a model."""

import importlib.util
import os

import keras_tuner as kt
import pytest
from helpers import write_folder

import autoprep

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", f"{EXAMPLES}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_model_builds_with_and_without_hp():
    build_model = load("model").build_model
    assert build_model((8, 8, 1), 3).output_shape == (None, 3)
    hp = kt.HyperParameters()
    build_model((8, 8, 1), 3, hp)
    assert set(hp.values) == {"width", "learning_rate"}


@pytest.mark.slow
def test_training_with_an_exported_pipeline(tmp_path):
    data_dir = write_folder(tmp_path / "data", [10, 10, 5])
    space = autoprep.SearchSpace(normalization="per_channel", imbalance="deferred_reweighting",
                                 flip="horizontal", policy="mixup")
    result = autoprep.tune(load("model").build_model, data_dir, max_trials=1, epochs=1,
                           space=space, directory=tmp_path / "runs", test_split=0, verbose=0)
    module_path = result.export(tmp_path / "pipeline.py")
    history = load("train_with_exported_pipeline").main(module_path, data_dir, epochs=2)
    assert len(history.history["loss"]) == 2


@pytest.mark.slow
def test_tune_digits_runs_with_a_smaller_budget(tmp_path, monkeypatch):
    tune = autoprep.tune
    budgets = []

    def small_tune(*args, **kwargs):  # the example's own call, with fewer trainings
        budgets.append((kwargs["max_trials"], kwargs["epochs"]))
        return tune(*args, **{**kwargs, "max_trials": 1, "epochs": 1, "final_repeats": 1,
                              "baseline": False, "verbose": 0})

    monkeypatch.setattr(autoprep, "tune", small_tune)
    monkeypatch.chdir(tmp_path)
    load("tune_digits").main()
    assert budgets == [(10, 8)]
    assert (tmp_path / "autoprep_runs" / "example_pipeline.py").exists()
    result = autoprep.load_result(tmp_path / "autoprep_runs" / "example")
    assert result.state == "finished" and result.test_score is not None
