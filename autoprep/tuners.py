"""How to search: Keras Tuner's own tuners, with two hooks autoprep needs.

`on_trial_end` lets autoprep write its results after every trial; `should_stop` ends the
search before a new trial starts (trial count or time budget). Everything else, including
Keras Tuner's distributed mode and resuming from its project directory, is Keras Tuner's.
"""

import keras_tuner as kt

from autoprep.errors import ArgumentError


class StopSearch(Exception):
    """Raised before a trial starts when `should_stop` says the search is over."""


class _Hooks:
    def __init__(self, *args, on_trial_end=None, should_stop=None, **kwargs):
        self._on_trial_end = on_trial_end
        self._should_stop = should_stop
        super().__init__(*args, **kwargs)

    def pre_create_trial(self):
        if self._should_stop is not None and self._should_stop(self):
            raise StopSearch()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        if self._on_trial_end is not None:
            self._on_trial_end(self, trial)


class RandomSearch(_Hooks, kt.RandomSearch):
    pass


class BayesianOptimization(_Hooks, kt.BayesianOptimization):
    pass


class Hyperband(_Hooks, kt.Hyperband):
    pass


TUNERS = {"bayesian": BayesianOptimization, "random": RandomSearch, "hyperband": Hyperband}


def check_tuner(name: str) -> str:
    if name not in TUNERS:
        raise ArgumentError(f"`tuner` must be one of {', '.join(TUNERS)}. Received: tuner={name!r}")
    return name


def make_tuner(name, hypermodel, *, objective, max_trials, epochs, seed=None, **kwargs):
    """A Keras Tuner tuner by name ("bayesian", "random" or "hyperband").

    Hyperband schedules its own trials from `epochs` (its `max_epochs`); autoprep stops it
    after `max_trials` through `should_stop`.
    """
    check_tuner(name)
    if name == "hyperband":
        return Hyperband(
            hypermodel, objective=objective, max_epochs=max(epochs, 2), seed=seed, **kwargs
        )
    return TUNERS[name](hypermodel, objective=objective, max_trials=max_trials, seed=seed, **kwargs)
