"""Every use of Keras Tuner's private surface, in one place, for the tested range (pyproject).

autoprep relies on Keras Tuner internals for a few things its public API does not offer:
atomic state files, failing a trial that crashed the process twice, Hyperband with a given
oracle, knowing whether this process is a distributed worker, recognizing the error that stops
a search after consecutive failures, and hiding the tracebacks of failed trials. Each hook
below says what it relies on; `tests/test_kt_adapter.py` checks each one, so an upgrade that
moves one fails there with a clear message instead of deep inside a search.

Keras Tuner is imported inside the functions that need it: the run directory reads the file
names below without loading TensorFlow.
"""

import contextlib
import json
import os
import re

from autoprep.run.result import atomic_write

TESTED_RANGE = ">=1.4.7,<1.5"  # as pinned in pyproject.toml

# Hook: the file names of Keras Tuner's project directory (the run directory keeps them on
# `--overwrite`, see `autoprep.run.rundir`).
# Relies on: `Oracle._get_oracle_fname()` -> `<project>/oracle.json`,
# `Oracle._get_trial_dir(id)` -> `<project>/trial_<id>/` holding `trial.json`, and
# `BaseTuner._get_tuner_fname()` -> `<project>/<tuner_id>.json` (`tuner0.json`).
ORACLE_FILE = "oracle.json"
TRIAL_FILE = "trial.json"
TRIAL_DIR = re.compile(r"trial_\d+")
TUNER_FILE = re.compile(r"tuner\d+\.json")


class AtomicOracleState:
    """An oracle mix-in that writes `oracle.json` and each `trial.json` atomically.

    Relies on: `Oracle.save()` writing `_get_oracle_fname()` from `get_state()`, and
    `Oracle._save_trial(trial)` (private) being the one place a trial's file is written.
    """

    def save(self):
        atomic_write(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), TRIAL_FILE)
        atomic_write(path, json.dumps(trial.get_state()))


class PriorRandomValues:
    """An oracle mix-in whose random points come from `self.prior(hyperparameters, seed)`.

    `prior` (set by `make_tuner`, e.g. `SearchSpace.random_values`) draws every active
    hyperparameter from the space's prior instead of uniformly; None keeps Keras Tuner's draw.
    Relies on: `Oracle._random_values()` (private) being the one place random search and
    Bayesian optimization's initial points are drawn, `_seed_state` its seed counter, and
    `_duplicate(values)` / `_max_collisions` its retry rule (repeated here).
    """

    prior = None

    def _random_values(self):
        if self.prior is None:
            return super()._random_values()
        for _ in range(self._max_collisions + 1):
            values = self.prior(self.hyperparameters, self._seed_state)
            self._seed_state += 1
            if not self._duplicate(values):
                return values
        return None


class AtomicTunerState:
    """A tuner mix-in that writes `tuner0.json` atomically (the chief also saves its oracle).

    Relies on: `BaseTuner.save()` being "oracle.save() unless `_is_worker()`, then write
    `_get_tuner_fname()`"; both helpers are private.
    """

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        atomic_write(self._get_tuner_fname(), json.dumps(self.get_state()))


class GivenOracle:
    """A mix-in before `kt.Hyperband`: Keras Tuner's Hyperband tuner (epoch schedule, weight
    reuse), given its oracle, as `class Tuner(GivenOracle, kt.Hyperband)`.

    Relies on: `kt.Hyperband.__init__` doing nothing but build a `HyperbandOracle` and pass it
    to `Tuner.__init__`; skipping it (`super(kt.Hyperband, self).__init__`) keeps the
    tuner's behaviour with an oracle built by autoprep.
    """

    def __init__(self, oracle, hypermodel, **kwargs):
        import keras_tuner as kt

        super(kt.Hyperband, self).__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)


def retry_queue(oracle) -> list:
    """The ids of trials the oracle will run again (those running when the process died).

    Relies on: `Oracle._retry_queue` (private list), filled by `Oracle.reload()` from the
    trials that were ongoing, and popped by `create_trial` before any new trial.
    """
    return list(oracle._retry_queue)


def fail_interrupted_trial(oracle, trial_id, message):
    """Takes a trial out of the retry queue and records it as failed, on disk too.

    Relies on: `Oracle._retry_queue`, `Oracle._save_trial` (private) and `Oracle.end_order`
    (public attribute, the order in which trials ended, read by the consecutive-failures check).
    """
    import keras_tuner as kt

    oracle._retry_queue.remove(trial_id)
    trial = oracle.trials[trial_id]
    trial.status = kt.engine.trial.TrialStatus.FAILED
    trial.message = message
    oracle._save_trial(trial)
    oracle.end_order.append(trial_id)
    oracle.save()


def is_distributed_worker() -> bool:
    """True in a worker process of Keras Tuner's distributed mode (the chief keeps results).

    Relies on: `keras_tuner.src.distribute.utils.has_chief_oracle` / `is_chief_oracle` (private
    module; they read the KERASTUNER_* environment variables).
    """
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and not utils.is_chief_oracle()


# Hook: the error that stops a search after too many failed trials in a row.
# Relies on: `Oracle._check_consecutive_failures` raising a RuntimeError whose text starts with
# "Number of consecutive failures exceeded the limit of N." followed by the last trial's message.
CONSECUTIVE_FAILURES = "Number of consecutive failures"


def consecutive_failures(error):
    """(limit, last trial's message) when `error` is Keras Tuner's too-many-failures error,
    else None."""
    if not isinstance(error, RuntimeError) or not str(error).startswith(CONSECUTIVE_FAILURES):
        return None
    first, _, message = str(error).partition("\n")
    return first.rstrip(".").rsplit(" ", 1)[-1], message


@contextlib.contextmanager
def trial_tracebacks(show: bool):
    """While inside, Keras Tuner prints (or not) the traceback of each failed trial.

    Relies on: `keras_tuner.src.config.DEBUG` (private module flag) read by
    `BaseTuner._try_run_and_update_trial` when a trial raises.
    """
    from keras_tuner.src import config

    previous = config.DEBUG
    config.DEBUG = show
    try:
        yield
    finally:
        config.DEBUG = previous
