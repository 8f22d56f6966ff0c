"""The search-cost benchmark (benchmarks/search_cost.py): its clock, and a smoke run."""

import json
import time

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def search_cost():
    return load_benchmark("search_cost")


class Work:
    def search(self):
        time.sleep(0.02)
        self.train()
        self.save()

    def train(self):
        time.sleep(0.05)

    def save(self):
        time.sleep(0.01)
        self.train()  # called while saving: charged to saving


def test_clock_charges_the_innermost_part_and_only_inside_the_search(search_cost):
    clock = search_cost.Clock()
    for attribute, part in (("search", "search loop"), ("train", "training"),
                            ("save", "saving")):
        clock.install(Work, attribute, part)
    try:
        Work().train()  # outside the search: not counted
        Work().search()
    finally:
        clock.restore()
    assert Work.train.__qualname__ == "Work.train"  # restored
    seconds = clock.seconds  # sleeps last at least as asked; the bounds above allow for load
    assert 0.05 <= seconds["training"] < 0.05 + 0.3
    assert 0.06 <= seconds["saving"] < 0.06 + 0.3
    assert 0.02 <= seconds["search loop"] < 0.02 + 0.3
    assert clock.calls["training"] == 1 and clock.fit_seconds == 0.0


def test_smoke_run_writes_every_figure(search_cost, tmp_path):
    out = str(tmp_path / "search_cost")
    search_cost.main(["--smoke", "--out", out])
    result = json.loads(open(out + ".json", encoding="utf-8").read())
    run = result["search"][0]
    assert run["trials"] == 1 and run["ratio"] > 1
    assert sum(run["parts_seconds"].values()) == pytest.approx(run["search_seconds"])
    assert run["parts_seconds"]["training"] > 0 and run["parts_seconds"]["evaluation"] > 0
    probes = run["probes_seconds"]  # inside the parts: tracing maps, building the model
    assert probes["tf.data map tracing"] > 0 and probes["model_fn and compile"] > 0
    assert probes["tf.data map tracing"] <= run["parts_seconds"]["pipeline"]
    rates = result["throughput"][0]["best"]
    assert len(rates) >= 5 and all(first > 0 and steady > 0 for first, steady in rates.values())
    assert result["time_to_95"][run["tuner"]]["trials"] == 1
    page = open(out + ".md", encoding="utf-8").read()
    assert "search / (training + evaluation)" in page and "Command:" in page
    assert "What the overhead is made of" in page


def test_bayesian_proposals_are_made_again_by_both_optimizers(search_cost, tmp_path):
    import keras_tuner as kt
    import numpy as np

    from autoprep.search import tuners
    from autoprep.search.space import SearchSpace

    space, hyperparameters = SearchSpace(), kt.HyperParameters()
    space.declare(hyperparameters)
    objective = kt.Objective("score", "max")
    oracle = tuners.BayesianOptimizationOracle(objective=objective, max_trials=20, seed=1,
                                               num_initial_points=3)
    oracle.hyperparameters = hyperparameters
    oracle._set_project_dir(str(tmp_path), "bayesian")
    for number, score in enumerate(np.random.default_rng(0).uniform(size=6)):
        values = hyperparameters.copy()
        values.values = space.random_values(hyperparameters, number)
        trial = kt.engine.trial.Trial(values, trial_id=str(number), status="COMPLETED")
        trial.score = float(score)
        oracle.trials[trial.trial_id] = trial
        oracle._save_trial(trial)
    oracle.save()
    replayed = search_cost.replay_proposals(str(tmp_path / "bayesian"), [5, 6],
                                            objective=objective, max_trials=20)
    assert [row["trials"] for row in replayed] == [5, 6]
    for row in replayed:
        assert row["batched_predicts"] < row["keras_tuner_predicts"]
        assert np.isfinite([row["keras_tuner_acquisition"], row["batched_acquisition"]]).all()
    page = search_cost.proposal_section([{"proposal_replay": replayed}])
    assert "| 5 |" in page and "In all:" in page


def test_the_page_compares_with_an_earlier_run(search_cost):
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "results", "search_cost.json"), encoding="utf-8") as handle:
        result = json.load(handle)
    result["before"] = {key: result[key] for key in ("commit", "search", "best_score",
                                                     "time_to_95", "load_average_start")}
    section = search_cost.before_section(result)
    for run in result["search"]:
        assert f"| {run['tuner']} | before | **{run['ratio']:.3f}** |" in section
        assert f"| {run['tuner']} | now | **{run['ratio']:.3f}** |" in section
    assert search_cost.before_section({**result, "before": None}) == ""
