"""The search loop of `autoprep.tune` (search/loop.py, tuners.py and the hypermodel's trial)
without training: trial counting, resume, crash retry, the time budget, the choice of the
winner, and which images every learned constant sees.

Each test runs the real loop with Keras Tuner's oracles; only the model is scripted
(`fake_training`, see fake_training.py), so a search takes about a second.
"""

import ast
import json

import numpy as np
import pytest

import autoprep
from autoprep.errors import RunDirectoryError
from autoprep.search import selection

QUICK = {"epochs": 2, "tuner": "random", "seed": 0, "verbose": 0, "validation_split": 0.25,
         "reevaluate": 0, "test_split": 0}
# No conditional dimensions (Keras Tuner builds a model per condition when it starts) and
# enough points for every search here.
SMALL = autoprep.SearchSpace(normalization=["rescale_01", "per_channel"], policy="none",
                             imbalance=["none", "inverse_frequency"])


@pytest.fixture
def folder(make_folder):
    return make_folder([12, 12, 6])


def ranked(*scores):
    """A script: the n-th distinct configuration trained gets `scores[n]` (the last one after)."""
    order = []

    def score(config, phase=None):
        key = json.dumps(config, sort_keys=True)
        if key not in order:
            order.append(key)
        return scores[min(order.index(key), len(scores) - 1)]

    return score


def search(fake, folder, tmp_path, **settings):
    """`autoprep.tune` of the scripted model with QUICK settings, overridden by `settings`."""
    settings = {**QUICK, "space": SMALL, "directory": tmp_path / "runs", **settings}
    return autoprep.tune(fake.model_fn, folder, **settings)


# -- trial counting ---------------------------------------------------------------------------
@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_a_search_runs_exactly_max_trials(fake_training, folder, tmp_path, tuner):
    ended = []
    # Hyperband's own schedule ends a search (after 2 trials with 2 epochs): with 9 epochs it
    # plans more trials than max_trials.
    result = search(fake_training, folder, tmp_path, tuner=tuner, max_trials=3,
                    epochs=9 if tuner == "hyperband" else 2,
                    on_trial_end=lambda partial, trial: ended.append(trial))
    assert result.state == "finished"
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 3 and len(ended) == 3
    assert len(fake_training.by_phase("trial")) == 3  # one training a trial (one fold)
    # Hyperband's later rounds start from a trial's weights; other tuners keep none.
    checkpoints = list((tmp_path / "runs").glob("*/trial_*/checkpoint*"))
    assert bool(checkpoints) == (tuner == "hyperband")


def test_max_trials_counts_the_trials_and_the_test_trainings_follow(fake_training, folder,
                                                                    tmp_path, capsys):
    result = search(fake_training, folder, tmp_path, max_trials=2, test_split=0.2,
                    final_repeats=2, verbose=1)
    assert len(result.trials) == 2 and len(fake_training.by_phase("trial")) == 2
    tests = fake_training.by_phase("test")
    assert [t.config == result.pipeline.clone().get_config() for t in tests] == [True] * 2 + [
        False] * 2  # the chosen pipeline twice, then the baseline twice
    assert len(result.test_scores) == 2 and len(result.baseline_scores) == 2
    assert result.test_score == pytest.approx(np.mean(result.test_scores))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("trial ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all(" ETA " in line and "best=" in line for line in lines)


# -- resume -----------------------------------------------------------------------------------
def test_a_resumed_search_continues_at_its_count_without_redoing_trials(fake_training, folder,
                                                                        tmp_path):
    trials = fake_training.by_phase
    first = search(fake_training, folder, tmp_path, max_trials=2)
    assert len(trials("trial")) == 2
    second = search(fake_training, folder, tmp_path, max_trials=3)
    assert len(trials("trial")) == 3  # the resumed run trained its new trial only
    # (Keras Tuner reloads the trials in the order the file system lists their folders.)
    kept = {t.trial_id: t for t in second.trials}
    assert len(kept) == 3 and all(kept[t.trial_id] == t for t in first.trials)
    assert len(search(fake_training, folder, tmp_path, max_trials=3).trials) == 3
    assert len(trials("trial")) == 3  # nothing left to train
    assert second.test_score is None  # test_split=0: nothing held out
    with pytest.raises(RunDirectoryError, match="holds a different search.*epochs"):
        search(fake_training, folder, tmp_path, max_trials=3, epochs=3)
    fresh = search(fake_training, folder, tmp_path, max_trials=1, epochs=3, overwrite=True)
    assert len(fresh.trials) == 1 and len(trials("trial")) == 4


# -- crash retry ------------------------------------------------------------------------------
@pytest.mark.parametrize("cut", [0, 1], ids=["first-trial", "second-trial"])
def test_a_trial_cut_off_once_runs_again(fake_training, folder, tmp_path, cut):
    fake_training.crash_at = {cut}  # the process "dies" while training trial `cut`
    with pytest.raises(KeyboardInterrupt):
        search(fake_training, folder, tmp_path, max_trials=cut + 2)
    interrupted = autoprep.load_result(tmp_path / "runs")
    assert interrupted.state == "interrupted" and len(interrupted.trials) == cut
    result = search(fake_training, folder, tmp_path, max_trials=cut + 2)
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * (cut + 2)
    configs = [t.config for t in fake_training.by_phase("trial")]
    assert len(configs) == cut + 3 and configs[cut] == configs[cut + 1]  # run again, once
    assert result.state == "finished"


@pytest.mark.parametrize("cut", [0, 1], ids=["first-trial", "second-trial"])
def test_a_trial_cut_off_twice_is_marked_failed(fake_training, folder, tmp_path, cut):
    fake_training.crash_at = {cut, cut + 1}  # cut off, then cut off again when run once more

    def run():
        return search(fake_training, folder, tmp_path, max_trials=cut + 1)

    for cuts in (1, 2):
        with pytest.raises(KeyboardInterrupt):
            run()
        assert len(fake_training.trainings) == cut + cuts
    try:
        result = run()
    except KeyboardInterrupt:
        pytest.fail("the trial cut off twice ran a third time")
    assert len(fake_training.trainings) == cut + 2
    statuses = sorted(t["status"] for t in result.trials)
    assert statuses == ["COMPLETED"] * cut + ["FAILED"]
    (failed,) = [t for t in result.trials if t["status"] == "FAILED"]
    assert "died twice" in failed["message"]
    assert result.state == "finished"


# -- the time budget --------------------------------------------------------------------------
@pytest.mark.parametrize("settings, budget, trials, after", [
    ({}, 35, 3, 0),  # starts a trial while one more fits: 10 + 10, 20 + 10, then 30 + 10 > 35
    # keeps two test trainings in reserve: 10 + 30, 20 + 30, then 30 + 30 > 55
    ({"test_split": 0.2, "final_repeats": 1}, 55, 3, 2),
    # and the re-evaluation of 2 configurations (REPEATS each): 10 + 70, then 20 + 70 > 85
    ({"test_split": 0.2, "final_repeats": 1, "reevaluate": 1}, 85, 2, 2 + 2 * selection.REPEATS),
], ids=["trials", "test-trainings", "re-evaluation"])
def test_no_training_starts_that_the_time_budget_cannot_fit(fake_training, folder, tmp_path,
                                                            settings, budget, trials, after):
    fake_training.seconds = 10  # each training; nothing else takes time on this clock
    fake_training.score = ranked(0.3, 0.9)  # the first configuration is not the best
    start = fake_training.now
    result = search(fake_training, folder, tmp_path, max_trials=10, time_budget=budget,
                    **settings)
    assert result.state == "stopped" and len(result.trials) == trials
    assert len(fake_training.trainings) == trials + after
    assert fake_training.now - start <= budget


def test_the_first_trial_starts_whatever_the_budget(fake_training, folder, tmp_path):
    fake_training.seconds = 10
    result = search(fake_training, folder, tmp_path, max_trials=3, time_budget=5)
    assert len(result.trials) == 1 and result.state == "stopped"


# -- choosing the winner ----------------------------------------------------------------------
@pytest.mark.parametrize("within_noise", [True, False])
def test_the_first_configuration_is_re_evaluated_and_wins_within_noise(fake_training, folder,
                                                                       tmp_path, within_noise):
    """Four trials, the first one the worst; the two best and the first are re-evaluated."""
    rank = ranked(0, 1, 2, 3)

    def wrong(training, labels):
        first = np.flatnonzero(labels == 0)  # 3 validation images of class 0
        if training.phase == "trial":  # the first configuration is the worst, then in order
            return first[:max(0, 3 - rank(training.config))]
        if rank(training.config) == 0:  # re-evaluated: 2 of class 0 wrong, or all of them
            return first[:2] if within_noise else np.flatnonzero(labels != 2)
        if rank(training.config) == 3:  # the best trial: one other image of class 0 wrong
            return first[2:]
        return first  # the second best

    fake_training.wrong = wrong
    result = search(fake_training, folder, tmp_path, max_trials=4, reevaluate=2)
    trials = sorted(result.trials, key=lambda t: int(t.trial_id))
    first, runner_up, best = trials[0], trials[2], trials[3]
    assert first.score < min(t.score for t in trials[1:])
    pool = result.selection["candidates"]
    assert sorted((c["trial_id"], c["default"]) for c in pool) == sorted(
        [(first.trial_id, True), (best.trial_id, False), (runner_up.trial_id, False)])
    assert all(len(c["scores"]) == selection.REPEATS for c in pool)
    assert len(fake_training.by_phase("reevaluation")) == 3 * selection.REPEATS
    chosen = first if within_noise else best
    assert result.best_trial_id == chosen.trial_id
    assert unfitted(result.best_config) == chosen.config
    reason = result.selection["reason"]
    assert "first configuration" in reason
    assert ("within the noise" in reason, "beyond the noise" in reason) == (
        within_noise, not within_noise)
    (entry,) = [c for c in pool if c["trial_id"] == chosen.trial_id]
    assert result.best_score == pytest.approx(entry["mean"])
    assert result.best_score_std == pytest.approx(entry["std"])
    loaded = autoprep.load_result(tmp_path / "runs")
    assert loaded.selection == result.selection and "re-evaluations" in loaded.summary()


def unfitted(config):
    """A fitted config without its learned constants."""
    from autoprep.choices.pipeline import Pipeline

    return Pipeline.from_config(config).clone().get_config()


# -- objectives and the Bayesian oracle -------------------------------------------------------
@pytest.mark.parametrize("objective", ["macro_f1", "accuracy", "loss"])
def test_each_objective_picks_its_best_trial_and_scores_the_test_split(fake_training, folder,
                                                                       tmp_path, objective):
    result = search(fake_training, folder, tmp_path, max_trials=3, objective=objective,
                    test_split=0.2, final_repeats=1, baseline=False)
    assert result.objective == objective
    scores = [t["score"] for t in result.trials]
    assert len(scores) == 3 and len(set(scores)) > 1
    if objective == "loss":
        assert result.best_score == min(scores) and result.test_score > 0
    else:
        assert result.best_score == max(scores) and 0 <= result.test_score <= 1
        assert all(0 <= score <= 1 for score in scores)
    assert autoprep.load_result(tmp_path / "runs").objective == objective


def test_bayesian_search_past_its_random_start_minimizing_the_loss(fake_training, folder,
                                                                   tmp_path, monkeypatch):
    from sklearn.gaussian_process import GaussianProcessRegressor

    fitted = []
    original = GaussianProcessRegressor.fit
    monkeypatch.setattr(GaussianProcessRegressor, "fit",
                        lambda self, x, y: fitted.append(len(x)) or original(self, x, y))
    # The staged trials (the data-seeded points, then ops on top of the best), then at least
    # the last trial chosen by the Gaussian process fitted on all trials before it.
    space = autoprep.SearchSpace(flip="none", policy="none", normalization="rescale_01",
                                 imbalance="none")
    result = search(fake_training, folder, tmp_path, max_trials=6, space=space,
                    objective="loss", tuner="bayesian")
    assert [t["status"] for t in result.trials] == ["COMPLETED"] * 6
    assert fitted and fitted[-1] == 5
    scores = [t["score"] for t in result.trials]
    assert result.best_score == min(scores) > 0  # the loss is minimized


# -- which images each learned constant sees --------------------------------------------------
LEARNING = autoprep.SearchSpace(normalization=["per_channel", "robust"], policy="none",
                                flip="none", imbalance=["posthoc_logit_adjustment",
                                                        "inverse_frequency", "logit_adjusted_loss"])


def without_tau(config):
    config = json.loads(json.dumps(config))
    config["imbalance"].pop("tau_", None)
    return config


@pytest.mark.parametrize("validation", [{"validation_split": 0.25}, {"cv": 2}],
                         ids=["holdout", "cv"])
def test_learned_constants_see_only_the_images_their_split_allows(fake_training, folder,
                                                                  tmp_path, validation):
    """Trials and re-evaluations learn from their fold's training part, final trainings and
    the exported constants from the development split, and nothing from the test split."""
    fake_training.score = lambda config, phase: (
        0.9 if config["imbalance"]["name"] == "posthoc_logit_adjustment" else 0.3)
    settings = {**QUICK, "validation_split": None, **validation}
    result = autoprep.tune(fake_training.model_fn, folder, max_trials=4, space=LEARNING,
                           directory=tmp_path / "runs", **{**settings, "reevaluate": 2,
                                                           "test_split": 0.2,
                                                           "final_repeats": 1})
    fake = fake_training
    splits, labels = fake.splits, fake.labels
    test = set(splits.test.tolist())
    development = set(range(len(labels))) - test
    assert test and len(splits.folds) == validation.get("cv", 1)
    folds = [(set(train.tolist()), set(val.tolist())) for train, val in splits.folds]
    phases = [t.phase for t in fake.trainings]
    assert {"trial", "reevaluation", "test"} <= set(phases)

    for training in fake.trainings:
        (fit,) = [f for f in fake.fits if f.training is training]
        seen, evaluated = set(fit.indices.tolist()), set(training.evaluate.tolist())
        assert np.array_equal(fit.labels, labels[fit.indices])
        if training.phase == "test":
            allowed = development
            assert evaluated == test
        else:
            allowed = development - evaluated
            assert not evaluated & test
        if training.phase == "trial":
            assert (set(training.train.tolist()), evaluated) in folds
        assert seen == allowed, f"a {training.phase} training's constants saw other images"
        assert set(training.read.tolist()) == allowed  # and it trains on those only
        assert set(training.predicted.tolist()) == evaluated
        # The constants it used are those of its allowed images, however they were learned.
        assert training.used == fake.refit(training.config, sorted(allowed))

    # tau is tuned on pooled validation predictions, never on the test split.
    assert fake.tuned_tau and all(phase != "test" for phase, _, _ in fake.tuned_tau)
    for _, evaluation, tuned_on in fake.tuned_tau:
        pooled = np.concatenate([labels[t.evaluate] for t in fake.trainings
                                 if t.evaluation == evaluation])
        assert np.array_equal(tuned_on, np.tile(pooled, len(tuned_on) // len(pooled)))

    # The data-seeded first configurations come from fold 0's training part.
    assert fake.seed_images and all(set(s.tolist()) <= folds[0][0] for s in fake.seed_images)

    # The result's constants: learned on the development split, tau as chosen on validation.
    outside = [f for f in fake.fits if f.training is None]
    assert outside and all(set(f.indices.tolist()) == development for f in outside)
    best = result.best_config
    assert best["imbalance"]["name"] == "posthoc_logit_adjustment"  # so tau is checked
    chosen = next(t for t in result.trials if t.trial_id == result.best_trial_id)
    assert best["imbalance"]["tau_"] == chosen.config["imbalance"]["tau_"]
    assert without_tau(best) == without_tau(fake.refit(best, sorted(development)))
    run_dir = tmp_path / "runs" / "data0"
    saved = json.loads((run_dir / "results.json").read_text())
    assert saved["best_config"] == best
    assert exported_config(run_dir / "best_pipeline.py") == best


def exported_config(path) -> dict:
    """The CONFIG literal of an exported module (read without importing it)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "CONFIG":
            return ast.literal_eval(node.value)
    raise AssertionError(f"no CONFIG in {path}")
