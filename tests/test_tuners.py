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


def _space_and_hyperparameters():
    import keras_tuner as kt

    from autoprep.search.space import SearchSpace

    space = SearchSpace()
    hyperparameters = kt.HyperParameters()
    space.declare(hyperparameters)
    return space, hyperparameters


def _bayesian_after(trials, *, seed=1):
    """Autoprep's Bayesian oracle past its random start: `trials` finished draws of the prior
    with scores that hold no signal (its Gaussian process's length scale hits its bound)."""
    import keras_tuner as kt
    import numpy as np

    from autoprep.search.tuners import BayesianOptimizationOracle

    space, hyperparameters = _space_and_hyperparameters()
    oracle = BayesianOptimizationOracle(objective=kt.Objective("score", "max"), max_trials=20,
                                        seed=seed, num_initial_points=3)
    oracle.hyperparameters = hyperparameters
    oracle.prior = space.random_values
    scores = np.random.default_rng(0).uniform(size=trials)
    for number, score in enumerate(scores):
        values = hyperparameters.copy()
        values.values = space.random_values(hyperparameters, number)
        trial = kt.engine.trial.Trial(values, trial_id=str(number), status="COMPLETED")
        trial.score = float(score)
        oracle.trials[trial.trial_id] = trial
    return oracle


def test_a_bayesian_proposal_is_one_batch_of_predictions_then_a_short_polish(monkeypatch):
    from sklearn.gaussian_process import GaussianProcessRegressor

    from autoprep.search import tuners

    predicted = []
    original = GaussianProcessRegressor.predict
    monkeypatch.setattr(GaussianProcessRegressor, "predict", lambda self, x, **kwargs: (
        predicted.append(len(x)) or original(self, x, **kwargs)))
    oracle = _bayesian_after(8)
    proposal = oracle.populate_space("8")
    assert proposal["status"] == "RUNNING"
    assert proposal["values"]["autoprep/normalization"] in (
        oracle.hyperparameters.space[0].values)
    candidates = tuners.UNIFORM_CANDIDATES + tuners.PRIOR_CANDIDATES
    assert predicted[0] == candidates
    dimensions = len(oracle._nonfixed_space())
    assert set(predicted[1:]) <= {dimensions + 1}  # the polish: value and gradient at once
    # Keras Tuner's optimizer: 50 starts, a predict call per point, d + 1 per gradient.
    assert len(predicted) < 50 * (dimensions + 1)


def test_bayesian_proposals_repeat_for_the_same_seed_and_trials_even_resumed():
    oracle = _bayesian_after(8)
    first = oracle.populate_space("8")["values"]
    assert oracle.populate_space("8")["values"] == first  # the same oracle, asked again
    assert _bayesian_after(8).populate_space("8")["values"] == first  # a resumed search
    assert _bayesian_after(8, seed=2).populate_space("8")["values"] != first


def test_the_gaussian_process_fit_reaches_scikit_learn_s_optimum_with_a_third_of_its_gradients(
    monkeypatch,
):
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Matern

    from autoprep.search import tuners

    gradients = []
    original = GaussianProcessRegressor.log_marginal_likelihood

    def counted(self, theta=None, eval_gradient=False, clone_kernel=True):
        gradients.append(eval_gradient)
        return original(self, theta, eval_gradient, clone_kernel)

    monkeypatch.setattr(GaussianProcessRegressor, "log_marginal_likelihood", counted)
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(60, 12))
    y = -np.exp(-8 * ((x[:, :3] - 0.3) ** 2).sum(axis=1)) + 0.05 * rng.normal(size=60)

    def keras_tuner_s():  # BayesianOptimizationOracle._make_gpr, with alpha's default
        return GaussianProcessRegressor(kernel=Matern(nu=2.5), n_restarts_optimizer=20,
                                        normalize_y=True, alpha=1e-4, random_state=0)

    reference = keras_tuner_s().fit(x, y)
    theirs, gradients[:] = sum(gradients), []
    template = keras_tuner_s()
    fitted = tuners._fit(template, x, y)
    assert sum(gradients) * 3 < theirs
    assert np.isclose(fitted.kernel_.length_scale, reference.kernel_.length_scale, rtol=1e-4)
    assert fitted.log_marginal_likelihood_value_ >= reference.log_marginal_likelihood_value_ - 1e-6
    candidates = rng.uniform(size=(500, 12))
    np.testing.assert_allclose(fitted.predict(candidates), reference.predict(candidates),
                               rtol=1e-4, atol=1e-6)
    assert fitted.get_params() == template.get_params()  # Keras Tuner's settings, as they came


def test_the_likelihood_grid_is_scikit_learn_s_log_marginal_likelihood():
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import Matern

    from autoprep.search import tuners

    rng = np.random.default_rng(3)
    x = rng.uniform(size=(80, 6))
    x[:8] = x[0]  # repeated points, as a search's staged trials are
    y = np.sin(4 * x[:, 0]) + 0.3 * rng.normal(size=80)
    fitted = GaussianProcessRegressor(kernel=Matern(nu=2.5), normalize_y=True, alpha=1e-4,
                                      optimizer=None).fit(x, y)
    grid = np.linspace(*Matern(nu=2.5).bounds[0], 41)
    expected = [fitted.log_marginal_likelihood([theta]) for theta in grid]
    np.testing.assert_allclose(tuners._likelihoods(fitted, grid), expected, rtol=1e-9)
    # Not positive definite (no jitter, the longest length scale): -inf, as scikit-learn's.
    singular = GaussianProcessRegressor(kernel=Matern(nu=2.5), alpha=0.0, optimizer=None)
    singular.fit(x[8:], y[8:])
    assert tuners._likelihoods(singular, grid[-1:])[0] == -np.inf
    assert singular.log_marginal_likelihood(grid[-1:]) == -np.inf


def test_the_prior_s_candidates_are_drawn_once_per_search_and_again_when_the_space_grows():
    from autoprep.search import tuners

    oracle = _bayesian_after(8)
    space_prior, draws = oracle.prior, []
    oracle.prior = lambda hyperparameters, seed: draws.append(seed) or space_prior(
        hyperparameters, seed)
    first = oracle.populate_space("8")["values"]
    oracle.populate_space("8")
    assert len(draws) == tuners.PRIOR_POOL  # not PRIOR_CANDIDATES per proposal
    assert _bayesian_after(8).populate_space("8")["values"] == first  # drawn again, the same
    oracle.hyperparameters.Int("width", 8, 64)  # the user's model adds a hyperparameter
    oracle.populate_space("8")
    assert len(draws) == 2 * tuners.PRIOR_POOL
    assert len(oracle._prior_pool()[0]) == len(oracle._nonfixed_space())


def test_the_gaussian_process_fit_is_quiet_and_leaves_the_warning_filters_as_they_were():
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning

    from autoprep.search import kt_adapter

    oracle = _bayesian_after(8)
    x, y = kt_adapter.gp_observations(oracle)
    with warnings.catch_warnings(record=True) as plain:
        warnings.simplefilter("always")
        oracle._make_gpr().fit(x, y)  # Keras Tuner's own fit warns on these trials
    assert any(issubclass(w.category, ConvergenceWarning) for w in plain)
    filters = list(warnings.filters)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        oracle.populate_space("8")
        warnings.warn("the user's own", ConvergenceWarning, stacklevel=1)
    assert [str(w.message) for w in ours] == ["the user's own"]
    assert warnings.filters == filters
    assert np.isfinite(y).all()


def test_hyperband_starts_from_stage_one_s_points_then_draws_from_the_prior():
    import types

    import keras_tuner as kt

    from autoprep.search.tuners import HyperbandOracle, default_values

    space, hyperparameters = _space_and_hyperparameters()
    oracle = HyperbandOracle(objective=kt.Objective("score", "max"), max_epochs=8, seed=1)
    oracle.hyperparameters = hyperparameters
    seeds = []
    oracle.prior = lambda hp, seed: seeds.append(seed) or space.random_values(hp, seed)
    oracle.first_points = [{"autoprep/normalization": "per_channel",
                            "autoprep/imbalance": "oversample"}]
    picked = []
    for number in range(4):
        values = oracle.populate_space(str(number))["values"]
        oracle.trials[str(number)] = types.SimpleNamespace(
            status="RUNNING", score=None, hyperparameters=types.SimpleNamespace(values=values))
        picked.append(values)
    assert [values["tuner/round"] for values in picked] == [0] * 4  # the first bracket's start
    configurations = [{k: v for k, v in values.items() if not k.startswith("tuner/")}
                      for values in picked]
    assert (configurations[0]["autoprep/normalization"], configurations[0]["autoprep/imbalance"]
            ) == ("per_channel", "oversample")
    assert configurations[0]["autoprep/policy"] == "none"
    assert configurations[1] == default_values(hyperparameters).values
    assert configurations[2:] == [space.random_values(hyperparameters, seed) for seed in seeds]
    assert len(seeds) == 2


def test_a_search_leaves_the_objects_that_existed_before_it_out_of_collections(tmp_path,
                                                                               monkeypatch):
    import gc

    import keras_tuner as kt

    from autoprep.search import tuners

    gc.unfreeze()  # the suite's own freeze (conftest) is not part of this test
    before = []  # tracked by the collector
    assert any(o is before for o in gc.get_objects())
    seen = []

    def search(self, *args, **kwargs):
        seen.append((gc.get_freeze_count(), any(o is before for o in gc.get_objects())))

    monkeypatch.setattr(kt.engine.base_tuner.BaseTuner, "search", search)
    oracle = tuners.RandomSearchOracle(objective=kt.Objective("score", "max"), max_trials=1)
    tuner = tuners.Tuner(oracle=oracle, hypermodel=lambda hp: None, directory=str(tmp_path))
    tuner.search()
    assert seen[0][0] > 0 and not seen[0][1]  # frozen: not among the collected objects
    assert gc.get_freeze_count() == 0
    gc.freeze()  # something else froze objects: not ours to thaw
    try:
        frozen = gc.get_freeze_count()
        with tuners.startup_objects_frozen():
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
