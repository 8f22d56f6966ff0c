"""The Keras Tuner oracles and tuners autoprep runs: default-first trial, atomic state files."""

import json

import pytest
from helpers import tiny_model

import autoprep
import autoprep.search.kt_adapter


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_keras_tuner_state_files_are_written_atomically(make_folder, tmp_path, monkeypatch, tuner):
    written = []
    real = autoprep.search.kt_adapter.atomic_write

    def recording(path, text):
        written.append(str(path))
        real(path, text)

    monkeypatch.setattr(autoprep.search.kt_adapter, "atomic_write", recording)
    space = autoprep.SearchSpace(flip="none", policy="none")
    autoprep.tune(tiny_model, make_folder([6, 6, 4]), max_trials=1, epochs=2, tuner=tuner,
                  space=space, directory=tmp_path / "runs", test_split=0, verbose=0)
    names = {path.rsplit("/", 1)[-1] for path in written}
    assert {"oracle.json", "trial.json", "tuner0.json"} <= names
    for path in written:
        json.loads(open(path).read())
    assert not list(tmp_path.rglob("*.part"))


def test_the_search_is_staged_seeds_then_augmentation_on_the_best_then_everything():
    """Stage 1: the given first points, then the default; stage 2: the best one's
    normalization and imbalance with drawn ops and no policy; stage 3: Keras Tuner's."""
    import types

    import keras_tuner as kt

    from autoprep.search.space import SearchSpace
    from autoprep.search.tuners import RandomSearchOracle

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    oracle = RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=20, seed=0)
    oracle.hyperparameters = hyperparameters
    oracle.prior = space.random_values
    oracle.first_points = [{"autoprep/normalization": "per_channel",
                            "autoprep/imbalance": "oversample"}]
    oracle.stage_trials = 2
    picked = []

    def next_values(score):
        values = oracle.populate_space(str(len(oracle.trials)))["values"]
        trial = types.SimpleNamespace(status="COMPLETED", score=score,
                                      hyperparameters=types.SimpleNamespace(values=values))
        oracle.trials[str(len(oracle.trials))] = trial
        picked.append(values)
        return values

    first = next_values(0.9)
    assert (first["autoprep/normalization"], first["autoprep/imbalance"]) == (
        "per_channel", "oversample")
    default = next_values(0.5)
    assert default["autoprep/normalization"] == "rescale_01"
    for _ in range(2):  # stage 2: on top of the best (the first), ops drawn, no policy
        values = next_values(0.1)
        assert values["autoprep/normalization"] == "per_channel"
        assert values["autoprep/imbalance"] == "oversample"
        assert values["autoprep/policy"] == "none"
    assert len({str(sorted(v.items())) for v in picked}) == 4
    next_values(0.2)  # stage 3: Keras Tuner's own draw


def test_the_first_configuration_is_stage_one_s_first_point_else_the_default():
    import keras_tuner as kt

    from autoprep.search.space import SearchSpace
    from autoprep.search.tuners import RandomSearchOracle, first_values

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    oracle = RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=5, seed=0)
    oracle.hyperparameters = hyperparameters
    assert space.pipeline(first_values(oracle)).get_config() == space.pipeline(
        hyperparameters).get_config()  # no stage 1: the space's default
    oracle.first_points = [{"autoprep/normalization": "per_channel",
                            "autoprep/imbalance": "effective_number"}]
    first = space.pipeline(first_values(oracle)).get_config()
    assert first["normalization"] == {"name": "per_channel"}
    assert first["imbalance"]["name"] == "effective_number" and first["augmentation"] == []


def test_a_proposal_that_repeats_a_tried_point_is_replaced_by_an_untried_draw():
    """Stage 3: a repeated point would only repeat its (seeded) score and spend a trial."""
    import types

    import keras_tuner as kt

    from autoprep.search.space import SearchSpace
    from autoprep.search.tuners import BayesianOptimizationOracle

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    oracle = BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=20,
                                        seed=0)
    oracle.hyperparameters = hyperparameters
    oracle.prior = space.random_values
    tried = space.random_values(hyperparameters, 1)
    oracle.trials["0"] = types.SimpleNamespace(
        status="COMPLETED", score=0.9, hyperparameters=types.SimpleNamespace(values=tried))
    repeat = {"status": kt.engine.trial.TrialStatus.RUNNING, "values": dict(tried)}
    new = oracle._untried(repeat, [tried], started=1)
    assert new["values"] != tried and new["status"] == kt.engine.trial.TrialStatus.RUNNING
    fresh = {"status": kt.engine.trial.TrialStatus.RUNNING,
             "values": space.random_values(hyperparameters, 2)}
    assert oracle._untried(fresh, [tried], started=1) is fresh


def test_a_trial_s_evaluation_reaches_the_trial_end_hook(tmp_path):
    import keras
    import keras_tuner as kt

    from autoprep.search.hypermodel import Evaluation, TrialMetrics
    from autoprep.search.tuners import make_tuner

    class Stub(kt.HyperModel):
        def build(self, hp):
            hp.Choice("x", [1, 2])
            return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

        def fit(self, hp, model, *args, **kwargs):
            score = float(hp.values["x"])
            return TrialMetrics({"val_score": score},
                                Evaluation(score=score, folds=1, confusion=[[hp.values["x"]]]))

    ended = []
    search = make_tuner("random", Stub(), objective=kt.Objective("val_score", "max"),
                        max_trials=2, epochs=1, seed=0, directory=tmp_path, project_name="p",
                        on_trial_end=lambda tuner, trial, evaluation: ended.append(
                            (trial.hyperparameters.values["x"], trial.status, evaluation)))
    search.search(verbose=0)
    assert len(ended) == 2
    for x, status, evaluation in ended:
        assert status == "COMPLETED" and evaluation.confusion == [[x]]
