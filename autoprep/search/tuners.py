"""How to search: Keras Tuner's own oracles and tuners, with what autoprep adds.

Random and Bayesian search first run the space's default configuration (rescaled pixels, no
augmentation, inverse-frequency class weights), as SMAC and auto-sklearn start from their
defaults: a sane reference point before random exploration. The tuners get two hooks:
`on_trial_end` writes results after every trial; `should_stop` ends the search before a new
trial starts (trial count or time budget). Keras Tuner's state files (oracle.json,
trial.json, tuner0.json) are written through a temporary file and a rename, so a crash in the
middle of a write cannot break a resume (the Keras Tuner internals this needs are in
`kt_adapter`). Everything else, including Keras Tuner's distributed
mode and resuming from its project directory, is Keras Tuner's.
"""

import keras_tuner as kt

from autoprep.search import devices
from autoprep.search.kt_adapter import (
    AtomicOracleState,
    AtomicTunerState,
    GivenOracle,
    PriorRandomValues,
)
from autoprep.search.names import check_tuner


class StopSearch(Exception):
    """Raised before a trial starts when `should_stop` says the search is over."""


def default_values(hyperparameters) -> kt.HyperParameters:
    """Every active hyperparameter of a space at its default value."""
    values = kt.HyperParameters()
    for hp in hyperparameters.space:
        values.merge([hp])
        if values.is_active(hp):
            values.values[hp.name] = hp.default
    return values


class _DefaultsFirst:
    """An oracle mix-in whose first trial uses every hyperparameter's default value."""

    def populate_space(self, trial_id):
        if self.trials:
            return super().populate_space(trial_id)
        values = default_values(self.hyperparameters)
        return {"status": kt.engine.trial.TrialStatus.RUNNING, "values": values.values}


class RandomSearchOracle(
    AtomicOracleState, _DefaultsFirst, PriorRandomValues, kt.oracles.RandomSearchOracle
):
    pass


class BayesianOptimizationOracle(
    AtomicOracleState, _DefaultsFirst, PriorRandomValues, kt.oracles.BayesianOptimizationOracle
):
    pass


class HyperbandOracle(AtomicOracleState, kt.oracles.HyperbandOracle):
    pass


class _Hooks(AtomicTunerState):
    def __init__(self, *args, on_trial_end=None, should_stop=None, **kwargs):
        self._on_trial_end = on_trial_end
        self._should_stop = should_stop
        super().__init__(*args, **kwargs)

    def on_search_begin(self):
        # Keras Tuner writes the tuner file when a trial ends and resumes a run only when the
        # file exists: a process killed in the first trial would otherwise start over and run
        # that trial again every time, instead of failing it when it is cut off twice.
        super().on_search_begin()
        self.save()

    def pre_create_trial(self):
        if self._should_stop is not None and self._should_stop(self):
            raise StopSearch()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self._on_trial_end is not None:
            self._on_trial_end(self, trial)

    def run_trial(self, trial, *args, **kwargs):
        seed_trial = getattr(self.hypermodel, "seed_trial", None)
        if seed_trial is not None:  # before Keras Tuner builds the trial's model
            seed_trial(trial.hyperparameters)
        with devices.out_of_memory_fails_trial(getattr(self.hypermodel, "batch_size", None)):
            return super().run_trial(trial, *args, **kwargs)


class Tuner(_Hooks, kt.Tuner):
    pass


class Hyperband(_Hooks, GivenOracle, kt.Hyperband):
    pass


def make_tuner(name, hypermodel, *, objective, max_trials, epochs, seed=None, **kwargs):
    """A Keras Tuner tuner by name ("bayesian", "random" or "hyperband").

    Hyperband schedules its own trials from `epochs` (its `max_epochs`); autoprep stops it
    after `max_trials` through `should_stop`. Bayesian optimization fits its Gaussian process
    after a third of the trials (at least 3) instead of Keras Tuner's 3 x dimensions, which
    would leave a short search purely random.
    """
    check_tuner(name)
    if name == "hyperband":
        oracle = HyperbandOracle(objective=objective, max_epochs=max(epochs, 2), seed=seed)
        return Hyperband(oracle=oracle, hypermodel=hypermodel, **kwargs)
    if name == "bayesian":
        oracle = BayesianOptimizationOracle(
            objective=objective, max_trials=max_trials, seed=seed,
            num_initial_points=max(3, max_trials // 3),
        )
    else:
        oracle = RandomSearchOracle(objective=objective, max_trials=max_trials, seed=seed)
    # Random points follow the space's prior (most ops off, light strengths first).
    oracle.prior = getattr(getattr(hypermodel, "space", None), "random_values", None)
    return Tuner(oracle=oracle, hypermodel=hypermodel, **kwargs)
