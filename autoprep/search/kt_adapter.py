"""Every use of Keras Tuner's private surface, in one place, for the tested range (pyproject).

autoprep relies on Keras Tuner internals for a few things its public API does not offer:
atomic state files, failing a trial that crashed the process twice, Hyperband with a given
oracle, random points from the space's prior, the Gaussian process data of Bayesian
optimization (to maximize its acquisition in batches), no weights checkpoint per epoch of a
trial that nothing reloads, knowing whether this process is a distributed worker, running
again the trial of a distributed worker that died, recognizing the error that stops a search
after consecutive failures, and hiding the tracebacks of failed trials. Each hook below says
what it relies on; `tests/test_kt_adapter.py` checks each one, so an upgrade that moves one
fails there with a clear message instead of deep inside a search.

Keras Tuner is imported inside the functions that need it: the run directory reads the file
names below without loading TensorFlow.
"""

import contextlib
import io
import json
import os
import sys
import threading
import time

import numpy as np

from autoprep._files import atomic_write
from autoprep.run.files import TRIAL_FILE

TESTED_RANGE = ">=1.4.7,<1.5"  # as pinned in pyproject.toml

# Hook: the file names of Keras Tuner's project directory (the run directory deletes them on
# `--overwrite`, see `autoprep.run.rundir`): ORACLE_FILE, TRIAL_FILE, TRIAL_DIR and TUNER_FILE
# in the table of `autoprep.run.files`.
# Relies on: `Oracle._get_oracle_fname()` -> `<project>/oracle.json`,
# `Oracle._get_trial_dir(id)` -> `<project>/trial_<id>/` holding `trial.json`, and
# `BaseTuner._get_tuner_fname()` -> `<project>/<tuner_id>.json` (`tuner0.json`; `chief.json` for
# the chief of a distributed search).


# A distributed worker tells the chief it is alive this often while it runs a trial, and the
# chief counts a worker as lost after WORKER_TIMEOUT_ENV seconds (default 60) without a word.
HEARTBEAT_SECONDS = 2.0
WORKER_TIMEOUT_ENV = "AUTOPREP_WORKER_TIMEOUT"
DEFAULT_WORKER_TIMEOUT = 60.0
IDLE_WAIT_SECONDS = 1.0  # a worker told to wait asks the chief again after this long


def worker_timeout() -> float:
    """Seconds of silence after which the chief counts a worker lost (AUTOPREP_WORKER_TIMEOUT)."""
    text = os.environ.get(WORKER_TIMEOUT_ENV, "")
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    return value if value > 0 else DEFAULT_WORKER_TIMEOUT


class WorkerTrials:
    """An oracle mix-in: which worker ran which trial, and the trial of a lost worker run again.

    On the chief of a distributed search only (elsewhere it records nothing). Keras Tuner 1.4
    keeps a worker's trial in `ongoing_trials` until that worker ends it: when the worker
    dies, the chief waits for it forever (`oracle_chief.exit_chief` waits until
    `ongoing_trials` and `tuner_ids` are empty), and the other workers, told to stop once
    `max_trials` trials were handed out, are gone. Here a worker is lost when the chief has
    heard nothing from it for `worker_timeout()` seconds (a worker running a trial reports
    every HEARTBEAT_SECONDS, see `DistributedWorker`): it is forgotten, and its trial is queued
    for the next worker that asks, the first time; the second time the trial is failed. A
    worker that asks for a trial while others still run one is told to wait (IDLE) instead of
    to stop, so that it is there to take over a lost trial.

    `trial_workers` ({trial id: tuner id of the worker that ran it last}) is kept in
    oracle.json. A worker counted as lost that comes back and ends its trial after another
    worker took it over is not told apart from that worker (both end the same trial).

    The chief runs no trial, so a tuner's `on_trial_end` never runs there: the chief's
    `chief_trial_ended(trial)` (set by the tuner) is called instead each time a trial ends, as
    a worker ends it (on the thread of Keras Tuner's oracle server) or when it is failed for
    its lost workers, so that the chief records and reports trials as they end. While it
    runs, the server answers no worker, so that time does not count as their silence.

    Relies on: `Oracle.create_trial(tuner_id)` taking `_retry_queue` (private list) first and
    removing the tuner id from `tuner_ids` (a set) when it answers STOPPED; `ongoing_trials`
    ({tuner id: trial}) and `tuner_ids` being what `exit_chief` reads; `get_trial` and
    `update_trial` being the requests of a worker running a trial; `get_state` / `set_state`;
    `oracle_chief.OracleServicer.EndTrial` (private module) calling `oracle.end_trial(trial)`
    for each trial a worker ends, and `BaseTuner.search` on the chief serving requests
    (`oracle_chief.start_server`) instead of running trials.
    """

    chief_trial_ended = None

    def __init__(self, *args, **kwargs):
        quiet_condition_protos()
        self.trial_workers = {}
        self._lost = {}  # trial id: how many times the worker running it was lost
        self._heard = {}  # tuner id: time.monotonic() of its last request
        super().__init__(*args, **kwargs)

    # `exit_chief` reads `tuner_ids` to decide that every worker has left: lost ones are
    # dropped whenever it is read.
    @property
    def tuner_ids(self):
        ids = self.__dict__.setdefault("_tuner_ids", set())
        if _is_distributed_chief():
            self._drop_lost_workers(ids)
        return ids

    @tuner_ids.setter
    def tuner_ids(self, ids):
        self.__dict__["_tuner_ids"] = ids

    def create_trial(self, tuner_id):
        with _oracle_lock(self):
            if not _is_distributed_chief():
                return super().create_trial(tuner_id)
            self._heard[tuner_id] = time.monotonic()
            trial = super().create_trial(tuner_id)
            if trial.status == "RUNNING":
                self.trial_workers[trial.trial_id] = tuner_id
                self.save()
            elif trial.status == "STOPPED" and self.ongoing_trials:
                self.tuner_ids.add(tuner_id)  # waits: a running trial may come back
                trial.status = "IDLE"
            return trial

    def get_trial(self, trial_id):
        self._heard_from(trial_id)
        return super().get_trial(trial_id)

    def update_trial(self, trial_id, metrics, step=0):
        self._heard_from(trial_id)
        return super().update_trial(trial_id, metrics, step=step)

    def end_trial(self, trial):
        if trial.trial_id in self._retry_queue:  # a lost worker came back and finished it
            self._retry_queue.remove(trial.trial_id)
        ended = super().end_trial(trial)
        self._tell_chief(trial.trial_id)
        return ended

    def _tell_chief(self, trial_id):
        """Calls `chief_trial_ended` with the ended trial, on the chief of a distributed search."""
        if self.chief_trial_ended is None or not _is_distributed_chief():
            return
        started = time.monotonic()
        try:
            self.chief_trial_ended(self.trials[trial_id])
        except Exception as error:  # the server must answer the worker; the search goes on
            print(f"autoprep: trial {trial_id} ended but was not recorded: "
                  f"{type(error).__name__}: {error}", file=sys.stderr, flush=True)
        finally:
            deaf = time.monotonic() - started
            for tuner_id in list(self._heard):
                self._heard[tuner_id] += deaf

    def _heard_from(self, trial_id):
        for tuner_id, trial in list(self.ongoing_trials.items()):
            if trial.trial_id == trial_id:
                self._heard[tuner_id] = time.monotonic()

    def _drop_lost_workers(self, ids):
        now, timeout = time.monotonic(), worker_timeout()
        for tuner_id in list(ids):
            silence = now - self._heard.get(tuner_id, now)
            if silence <= timeout:
                continue
            ids.discard(tuner_id)
            trial = self.ongoing_trials.pop(tuner_id, None)
            if trial is not None:
                self._lost_trial(trial.trial_id, tuner_id, silence)

    def _lost_trial(self, trial_id, tuner_id, silence):
        self._lost[trial_id] = self._lost.get(trial_id, 0) + 1
        said = f"worker {tuner_id} sent nothing for {silence:.0f} s while running trial {trial_id}"
        if self._lost[trial_id] > 1:
            _fail_trial(self, trial_id, f"{said}, the second worker lost on this trial; it is "
                        "not run again.")
            print(f"autoprep: {said}: the trial failed (its second lost worker)",
                  file=sys.stderr, flush=True)
            self._tell_chief(trial_id)
            return
        self._retry_queue.append(trial_id)
        self.save()
        print(f"autoprep: {said}: the next worker that asks runs it again", file=sys.stderr,
              flush=True)

    def get_state(self):
        state = super().get_state()
        state["autoprep_trial_workers"] = dict(self.trial_workers)
        state["autoprep_lost_workers"] = dict(self._lost)
        return state

    def set_state(self, state):
        super().set_state(state)
        self.trial_workers = dict(state.get("autoprep_trial_workers", {}))
        self._lost = dict(state.get("autoprep_lost_workers", {}))


def quiet_condition_protos():
    """Keeps Keras Tuner's distributed mode from printing a condition's first value (a left-over
    debugging line) each time a trial with conditional hyperparameters is sent.

    Relies on: `keras_tuner.src.engine.conditions.Parent.to_proto` (private module) printing
    `self.values[0]` to stdout; replaced by the same method with stdout set aside.
    """
    from keras_tuner.src.engine import conditions

    original = conditions.Parent.to_proto
    if getattr(original, "quiet", False):
        return

    def to_proto(self):
        with contextlib.redirect_stdout(io.StringIO()):
            return original(self)

    to_proto.quiet = True
    conditions.Parent.to_proto = to_proto


@contextlib.contextmanager
def _oracle_lock(oracle):
    """Holds the oracle's lock as Keras Tuner's `@synchronized` methods do (reentrant).

    Relies on: `keras_tuner.src.engine.oracle.LOCKS` / `THREADS` (private), the lock per
    oracle and the thread holding it.
    """
    from keras_tuner.src.engine import oracle as oracle_module

    thread = threading.current_thread().name
    acquire = oracle_module.THREADS[oracle] != thread
    if acquire:
        oracle_module.LOCKS[oracle].acquire()
        oracle_module.THREADS[oracle] = thread
    try:
        yield
    finally:
        if acquire:
            oracle_module.THREADS[oracle] = None
            oracle_module.LOCKS[oracle].release()


def _is_distributed_chief() -> bool:
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle() and utils.is_chief_oracle()


def trial_worker(oracle, trial_id):
    """The tuner id of the distributed worker that ran a trial, or None (one process)."""
    return getattr(oracle, "trial_workers", {}).get(trial_id)


class AtomicOracleState(WorkerTrials):
    """An oracle mix-in that writes `oracle.json` and each `trial.json` atomically (and, through
    `WorkerTrials`, the mix-in of every autoprep oracle, keeps the trials of lost workers).

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
    A point that `given_values()` returns comes before any draw (Hyperband's first
    configurations, see `autoprep.search.tuners.HyperbandOracle`).
    Relies on: `Oracle._random_values()` (private) being the one place random search,
    Bayesian optimization's initial points and Hyperband's new configurations
    (`HyperbandOracle._random_trial`) are drawn, `_seed_state` its seed counter, and
    `_duplicate(values)` / `_max_collisions` its retry rule (repeated here).
    """

    prior = None

    def given_values(self):
        """The next point to try before any random one, or None."""
        return None

    def _random_values(self):
        given = self.given_values()
        if given is not None:
            return given
        if self.prior is None:
            return super()._random_values()
        for _ in range(self._max_collisions + 1):
            values = self.prior(self.hyperparameters, self._seed_state)
            self._seed_state += 1
            if not self._duplicate(values):
                return values
        return None


# Hooks: Bayesian optimization's Gaussian process, its training data and its unit cube.
def gp_observations(oracle) -> tuple:
    """(x, y): the trials as Keras Tuner's Bayesian oracle fits its Gaussian process, one row of
    the unit cube per trial and y the score to minimize, nan and inf made finite.

    Relies on: `BayesianOptimizationOracle._vectorize_trials()` (private), redone here so that
    a trial's row is embedded once, not before every proposal (Keras Tuner's loop asks whether
    every hyperparameter is active in every trial, 12 ms a proposal by trial 200): each
    trial's values embedded by `hp.value_to_prob` over `_nonfixed_space()` (an inactive one,
    or one added after the trial, at its default), the score negated for "max", failed and
    invalid trials left out, an ongoing one given a pessimistic guess (`gpr.predict`'s mean
    plus its standard deviation). A trial in none of these states is left out too (Keras
    Tuner would repeat the score of the trial before it).
    """
    columns = oracle._nonfixed_space()
    names = tuple(hp.name for hp in columns)
    kept = oracle.__dict__.get("_autoprep_rows")
    if kept is None or kept[0] != names:
        kept = oracle._autoprep_rows = (names, {})
    rows = kept[1]  # trial id -> (its values when embedded, its row)
    ongoing = set(oracle.ongoing_trials.values())
    x, y = [], []
    for trial in oracle.trials.values():
        values = trial.hyperparameters.values
        row = rows.get(trial.trial_id)
        if row is None or row[0] != values:
            row = rows[trial.trial_id] = (dict(values), _embedded(trial.hyperparameters, columns))
        vector = row[1]
        if trial in ongoing:
            mean, std = oracle.gpr.predict(np.array(vector).reshape((1, -1)), return_std=True)
            score = np.ravel(mean)[0] + np.ravel(std)[0]
        elif trial.status == "COMPLETED":
            score = -trial.score if oracle.objective.direction == "max" else trial.score
        else:
            continue
        x.append(vector)
        y.append(score)
    x, y = np.array(x, dtype=float).reshape(len(x), len(columns)), np.array(y, dtype=float)
    return np.nan_to_num(x, posinf=0, neginf=0), np.nan_to_num(y, posinf=0, neginf=0)


def _embedded(hyperparameters, columns) -> list:
    """One trial's row of `gp_observations`."""
    values = hyperparameters.values
    return [hp.value_to_prob(values[hp.name] if hyperparameters.is_active(hp)
                             and hp.name in values else hp.default)
            for hp in columns]


def gp_embedding(oracle, points) -> np.ndarray:
    """{hyperparameter name: value} dicts as rows of the unit cube, the columns of
    `gp_observations` (a hyperparameter missing from a point is at its default).

    Relies on: `BayesianOptimizationOracle._nonfixed_space()` (private) being the columns of
    `_vectorize_trials`, in its order.
    """
    space = oracle._nonfixed_space()
    return np.array([[hp.value_to_prob(point.get(hp.name, hp.default)) for hp in space]
                     for point in points], dtype=float).reshape(len(points), len(space))


def gp_values(oracle, vector) -> dict:
    """The active hyperparameter values of a point of the unit cube, as Keras Tuner reads the
    optimum of its acquisition.

    Relies on: `BayesianOptimizationOracle._vector_to_values(vector)` (private).
    """
    return oracle._vector_to_values(vector)


class DistributedWorker:
    """A tuner mix-in for a distributed worker: it tells the chief every HEARTBEAT_SECONDS that
    it is still running its trial, and, told to wait (IDLE), asks again after
    IDLE_WAIT_SECONDS instead of at once (see `WorkerTrials`). Elsewhere it does nothing.

    Relies on: a worker's `self.oracle` being Keras Tuner's `OracleClient`, whose
    `get_trial(trial_id)` is a request to the chief's oracle (gRPC, callable from another
    thread) and whose `create_trial` `BaseTuner.search` calls in its loop, asking again at once
    after IDLE; `run_trial` running the whole trial.
    """

    def on_search_begin(self):
        super().on_search_begin()
        if not is_distributed_worker():
            return
        ask = self.oracle.create_trial

        def create_trial(tuner_id):
            trial = ask(tuner_id)
            if trial.status == "IDLE":
                time.sleep(IDLE_WAIT_SECONDS)
            return trial

        self.oracle.create_trial = create_trial

    def run_trial(self, trial, *args, **kwargs):
        if not is_distributed_worker():
            return super().run_trial(trial, *args, **kwargs)
        stop = threading.Event()

        def beat():
            while not stop.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception):  # the next beat may reach the chief
                    self.oracle.get_trial(trial.trial_id)

        threading.Thread(target=beat, name="autoprep-heartbeat", daemon=True).start()
        try:
            return super().run_trial(trial, *args, **kwargs)
        finally:
            stop.set()  # not joined: a beat may wait for an unreachable chief


class OneCollectionPerBuild:
    """A tuner mix-in: one garbage collection before each trial's model instead of two.

    Keras Tuner's `_try_build` calls `keras.backend.clear_session()`, which collects garbage
    (`free_memory=True`), then `gc.collect()`, which finds nothing the first did not but walks
    every tracked object again (0.14 s to 0.8 s a collection in the demo's search at load 11,
    growing with what trials leave behind).
    Relies on: `Tuner._try_build(hp)` (private) being `clear_session()`, `gc.collect()`,
    `_build_hypermodel(hp)`, then its checks (a Keras model, `FatalTypeError` otherwise; at
    most `max_model_size` parameters by `maybe_compute_model_size`, `FailedTrialError`
    otherwise), repeated here after the one collection of `clear_session()`.
    """

    def _try_build(self, hp):
        import keras
        from keras_tuner.src import errors
        from keras_tuner.src.engine import tuner

        keras.backend.clear_session()  # resets Keras' state and collects garbage
        model = self._build_hypermodel(hp)
        if not isinstance(model, keras.Model):
            raise errors.FatalTypeError(
                "Expected the model-building function, or HyperModel.build() to return a "
                f"valid Keras Model instance. Received: {model} of type {type(model)}.")
        size = tuner.maybe_compute_model_size(model)
        if self.max_model_size and size > self.max_model_size:
            raise errors.FailedTrialError(f"Oversized model: {size} parameters. Skip model.")
        return model


class AtomicTunerState(DistributedWorker):
    """A tuner mix-in that writes `tuner0.json` atomically (the chief also saves its oracle),
    and, through `DistributedWorker`, the mix-in of every autoprep tuner, keeps a worker heard.

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


def without_weight_checkpoints(callbacks, hyperparameters) -> list:
    """A trial's callbacks without Keras Tuner's weights checkpoint, unless the trial is
    Hyperband's (whose later rounds start from its weights).

    autoprep never loads a trial's model, and with an objective computed after `fit` the
    checkpoint writes the weights after every epoch (of the first fold).
    Relies on: `Tuner.run_trial` adding a `tuner_utils.SaveBestEpoch` (private module) to the
    callbacks, and Hyperband's trials holding `tuner/epochs` in their values.
    """
    if "tuner/epochs" in hyperparameters.values:
        return list(callbacks)
    from keras_tuner.src.engine import tuner_utils

    return [c for c in callbacks if not isinstance(c, tuner_utils.SaveBestEpoch)]


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
    oracle._retry_queue.remove(trial_id)
    _fail_trial(oracle, trial_id, message)


def _fail_trial(oracle, trial_id, message):
    """Records a trial as failed, on disk too, as Keras Tuner's `end_trial` would."""
    import keras_tuner as kt

    trial = oracle.trials[trial_id]
    trial.status = kt.engine.trial.TrialStatus.FAILED
    trial.message = message
    oracle._save_trial(trial)
    oracle.end_order.append(trial_id)
    oracle.save()


def is_distributed() -> bool:
    """True in any process of Keras Tuner's distributed mode: the chief or a worker.

    Relies on: `keras_tuner.src.distribute.utils.has_chief_oracle` (private module; it reads
    the KERASTUNER_* environment variables).
    """
    from keras_tuner.src.distribute import utils

    return utils.has_chief_oracle()


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
