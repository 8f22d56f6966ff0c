"""One test per Keras Tuner internal that `autoprep.search.kt_adapter` relies on.

A Keras Tuner upgrade that moves one of them fails here, naming the hook, before a search does.
"""

import json
import os
import re
import subprocess
import sys

import keras_tuner as kt
import pytest

from autoprep.run import files
from autoprep.search import kt_adapter

UPGRADE = "Keras Tuner {} changed: kt_adapter hook '{}' needs updating (see its comment)"


def moved(hook):
    return UPGRADE.format(kt.__version__, hook)


class _Oracle(kt_adapter.AtomicOracleState, kt.oracles.RandomSearchOracle):
    pass


def _oracle(directory, **kwargs):
    hp = kt.HyperParameters()
    hp.Int("x", 0, 3)
    oracle = _Oracle(objective=kt.Objective("score", "max"), max_trials=5, hyperparameters=hp,
                     **kwargs)
    oracle._set_project_dir(str(directory), "project")
    return oracle


class _Tuner(kt_adapter.AtomicTunerState, kt.Tuner):
    def run_trial(self, trial, *args, **kwargs):
        raise ValueError("the trial cannot run")


def _tuner(directory, **kwargs):
    return _Tuner(oracle=_oracle(directory, **kwargs), hypermodel=lambda hp: None,
                  directory=str(directory), project_name="project")


def _saved_trial(directory, trial_id):
    return json.loads((directory / "project" / f"trial_{trial_id}" / "trial.json").read_text())


@pytest.fixture
def writes(monkeypatch):
    """The paths `kt_adapter` wrote through `atomic_write`."""
    written = []
    real = kt_adapter.atomic_write

    def recording(path, text):
        written.append(os.path.basename(path))
        real(path, text)

    monkeypatch.setattr(kt_adapter, "atomic_write", recording)
    return written


def test_the_adapter_imports_no_keras_tuner():
    code = "import sys; import autoprep.search.kt_adapter; print('keras_tuner' in sys.modules)"
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.stdout == "False\n", completed.stderr[-2000:]


def test_pinned_range_is_the_one_in_pyproject():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "pyproject.toml"), encoding="utf-8") as handle:
        pins = re.findall(r'"keras-tuner([^"]*)"', handle.read())
    assert pins == [kt_adapter.TESTED_RANGE]


@pytest.mark.parametrize("tuner_id", [None, "chief"])
def test_state_file_names(tmp_path, monkeypatch, tuner_id):
    if tuner_id is not None:  # the chief of a distributed search has its own tuner file
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    tuner = _tuner(tmp_path)
    assert os.path.basename(tuner.oracle._get_oracle_fname()) == files.ORACLE_FILE, moved(
        "file names")
    assert files.TRIAL_DIR.fullmatch(
        os.path.basename(tuner.oracle._get_trial_dir("7"))), moved("file names")
    assert files.TUNER_FILE.fullmatch(os.path.basename(tuner._get_tuner_fname())), moved(
        "file names")


def test_atomic_oracle_state_writes_every_oracle_and_trial_file(tmp_path, writes):
    oracle = _oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    trial.status = "COMPLETED"
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    oracle.end_trial(trial)
    assert set(writes) == {"oracle.json", files.TRIAL_FILE}, moved("AtomicOracleState")
    saved = _saved_trial(tmp_path, trial.trial_id)
    assert saved["status"] == "COMPLETED", moved("AtomicOracleState")


def test_atomic_tuner_state_writes_the_tuner_file(tmp_path, writes):
    _tuner(tmp_path).save()
    assert writes == ["oracle.json", "tuner0.json"], moved("AtomicTunerState")


def test_hyperband_given_its_oracle_is_keras_tuners_hyperband(tmp_path):
    oracle = kt.oracles.HyperbandOracle(objective=kt.Objective("score", "max"), max_epochs=4)
    class Hyperband(kt_adapter.GivenOracle, kt.Hyperband):
        pass

    ours = Hyperband(oracle, lambda hp: None, directory=str(tmp_path / "a"))
    theirs = kt.Hyperband(lambda hp: None, objective=kt.Objective("score", "max"), max_epochs=4,
                          directory=str(tmp_path / "b"))
    assert ours.oracle is oracle
    # Hyperband.__init__ must set nothing beyond what Tuner.__init__ sets from the oracle.
    assert sorted(vars(ours)) == sorted(vars(theirs)), moved("GivenOracle")


class _Recording(kt.HyperModel):
    """Records the callbacks Keras Tuner passes to `fit`."""

    def __init__(self):
        super().__init__()
        self.callbacks = None

    def build(self, hp):
        import keras

        hp.Int("x", 0, 3)
        return keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])

    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        self.callbacks = list(callbacks)
        return {"score": 1.0}


def test_weight_checkpoints_are_dropped_except_for_hyperband(tmp_path):
    hypermodel = _Recording()
    tuner = kt.RandomSearch(hypermodel, objective=kt.Objective("score", "max"), max_trials=1,
                            directory=str(tmp_path))
    tuner.search()
    passed = hypermodel.callbacks
    kept = kt_adapter.without_weight_checkpoints(passed, kt.HyperParameters())
    assert len(kept) == len(passed) - 1, moved("without_weight_checkpoints")
    assert not any("SaveBestEpoch" in type(c).__name__ for c in kept)
    hyperband = kt.HyperParameters()
    hyperband.Fixed("tuner/epochs", 2)
    assert kt_adapter.without_weight_checkpoints(passed, hyperband) == passed


def test_interrupted_trial_is_retried_then_failed_on_disk(tmp_path):
    crashed = _oracle(tmp_path)
    trial = crashed.create_trial("tuner0")
    crashed.save()  # the process dies here, with the trial running
    oracle = _oracle(tmp_path)
    oracle.reload()
    assert kt_adapter.retry_queue(oracle) == [trial.trial_id], moved("retry_queue")
    kt_adapter.fail_interrupted_trial(oracle, trial.trial_id, "died twice")
    assert kt_adapter.retry_queue(oracle) == [], moved("fail_interrupted_trial")
    assert oracle.end_order == [trial.trial_id], moved("fail_interrupted_trial")
    saved = _saved_trial(tmp_path, trial.trial_id)
    assert (saved["status"], saved["message"]) == ("FAILED", "died twice"), moved(
        "fail_interrupted_trial")


@pytest.mark.parametrize(
    "tuner_id, worker", [(None, False), ("chief", False), ("tuner0", True)]
)
def test_distributed_worker_is_read_from_the_environment(monkeypatch, tuner_id, worker):
    for name in ("KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        monkeypatch.delenv(name, raising=False)
    if tuner_id is not None:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    assert kt_adapter.is_distributed_worker() is worker, moved("is_distributed_worker")
    assert kt_adapter.is_distributed() is (tuner_id is not None), moved("is_distributed")


def test_consecutive_failures_error_is_recognized(tmp_path):
    oracle = _oracle(tmp_path, max_consecutive_failed_trials=1)
    trial = oracle.create_trial("tuner0")
    trial.status, trial.message = "FAILED", "ValueError: boom"
    with pytest.raises(RuntimeError) as raised:
        oracle.end_trial(trial)
    failures = kt_adapter.consecutive_failures(raised.value)
    assert failures == ("1", "ValueError: boom"), moved("consecutive_failures")
    assert kt_adapter.consecutive_failures(RuntimeError("other")) is None


@pytest.mark.parametrize("show", [True, False])
def test_trial_tracebacks_are_shown_or_hidden(tmp_path, capfd, show):
    tuner = _tuner(tmp_path, max_consecutive_failed_trials=1)
    with kt_adapter.trial_tracebacks(show), pytest.raises(RuntimeError):
        tuner.search(verbose=0)
    printed = "Traceback" in capfd.readouterr().err
    assert printed is show, moved("trial_tracebacks")


@pytest.mark.parametrize("base, options", [
    (kt.oracles.RandomSearchOracle, {"max_trials": 4}),
    (kt.oracles.BayesianOptimizationOracle, {"max_trials": 4}),
    (kt.oracles.HyperbandOracle, {"max_epochs": 9}),  # a first bracket of 9 configurations
])
def test_prior_random_values_draw_every_random_trial_after_the_given_one(tmp_path, base,
                                                                         options):
    class Oracle(kt_adapter.PriorRandomValues, base):
        given = [{"x": 0}]

        def given_values(self):
            return self.given.pop() if self.given else None

    seeds = []

    def prior(hyperparameters, seed):
        seeds.append(seed)
        return {"x": len(seeds) % 4}

    hp = kt.HyperParameters()
    hp.Int("x", 0, 3)
    oracle = Oracle(objective=kt.Objective("score", "max"), hyperparameters=hp, **options)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    oracle.prior = prior
    values = [oracle.create_trial(f"tuner{i}").hyperparameters.values["x"] for i in range(4)]
    assert values == [0, 1, 2, 3], moved("PriorRandomValues")
    assert len(set(seeds)) == 3, moved("PriorRandomValues")


def _bayesian_oracle(tmp_path):
    """A Bayesian oracle over a conditional space, with three finished trials and one failed."""
    hp = kt.HyperParameters()
    hp.Int("x", 0, 3)
    hp.Fixed("fixed", 1)
    kind = hp.Choice("kind", ["a", "b"])
    with hp.conditional_scope("kind", ["b"]):
        hp.Float("size", 0.0, 1.0, default=0.5)
    oracle = kt.oracles.BayesianOptimizationOracle(objective=kt.Objective("score", "max"),
                                                   max_trials=9, hyperparameters=hp, seed=1)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.verbose = 0
    points = [{"x": 1, "kind": "a"}, {"x": 3, "kind": "b", "size": 0.25},
              {"x": 0, "kind": "b", "size": 0.75}, {"x": 2, "kind": "a"}]
    for score, point in zip([0.5, 0.9, 0.7, None], points):
        trial = oracle.create_trial("tuner0")
        trial.hyperparameters.values = {"fixed": 1, **point}
        if score is not None:
            oracle.update_trial(trial.trial_id, {"score": score})
        trial.status = "COMPLETED" if score is not None else "FAILED"
        oracle.end_trial(trial)
    assert kind == "a"
    return oracle, points


def test_gaussian_process_observations_embedding_and_values(tmp_path):
    oracle, points = _bayesian_oracle(tmp_path)
    x, y = kt_adapter.gp_observations(oracle)
    # Columns: the non-fixed hyperparameters in order (x, kind, size); an inactive `size` at
    # its default; the scores negated (maximized); the failed trial left out.
    embedded = kt_adapter.gp_embedding(oracle, points[:3])
    assert x.shape == (3, 3) and (x == embedded).all(), moved("gp_observations / gp_embedding")
    assert list(y) == [-0.5, -0.9, -0.7], moved("gp_observations")
    assert embedded[0, 2] == oracle.hyperparameters.space[-1].value_to_prob(0.5)
    for point, row in zip(points, embedded):
        assert kt_adapter.gp_values(oracle, row) == {"fixed": 1, **point}, moved("gp_values")


def test_gaussian_process_observations_are_keras_tuner_s_and_follow_new_and_running_trials(
    tmp_path,
):
    import numpy as np

    def keras_tuner_s(oracle):
        x, y = oracle._vectorize_trials()
        return np.nan_to_num(x, posinf=0, neginf=0), np.nan_to_num(y, posinf=0, neginf=0)

    oracle, _ = _bayesian_oracle(tmp_path)
    for _ in range(2):  # the second time from the rows kept
        ours, theirs = kt_adapter.gp_observations(oracle), keras_tuner_s(oracle)
        np.testing.assert_array_equal(ours[0], theirs[0], err_msg=moved("gp_observations"))
        np.testing.assert_array_equal(ours[1], theirs[1], err_msg=moved("gp_observations"))
    # A trial that ends, one still running (its guess from the fitted process), and a trial
    # whose values change under the same id: each follows Keras Tuner's embedding.
    oracle.gpr.fit(*keras_tuner_s(oracle))
    for score, point in ((0.3, {"x": 2, "kind": "b", "size": 0.5}), (None, {"x": 1, "kind": "a"})):
        trial = oracle.create_trial("tuner0")
        trial.hyperparameters.values = {"fixed": 1, **point}
        if score is not None:
            oracle.update_trial(trial.trial_id, {"score": score})
            trial.status = "COMPLETED"
            oracle.end_trial(trial)
    next(iter(oracle.trials.values())).hyperparameters.values = {"fixed": 1, "x": 0, "kind": "a"}
    ours, theirs = kt_adapter.gp_observations(oracle), keras_tuner_s(oracle)
    assert ours[0].shape == (5, 3)
    np.testing.assert_array_equal(ours[0], theirs[0], err_msg=moved("gp_observations"))
    np.testing.assert_allclose(ours[1], theirs[1], err_msg=moved("gp_observations"))


@pytest.fixture
def chief(monkeypatch):
    """This process is the chief of a distributed search; workers are lost after 0.2 s."""
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    monkeypatch.setenv(kt_adapter.WORKER_TIMEOUT_ENV, "0.2")


def _end(oracle, trial, status="COMPLETED"):
    trial.status = status
    if status == "COMPLETED":
        oracle.update_trial(trial.trial_id, {"score": 1.0})
    oracle.end_trial(trial)


def test_worker_trials_records_the_worker_and_waits_for_running_trials(tmp_path, chief):
    oracle = _oracle(tmp_path)
    oracle.max_trials = 2
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    _end(oracle, first)
    # tuner0 must wait (not stop): tuner1's trial may yet come back to the queue.
    assert oracle.create_trial("tuner0").status == "IDLE", moved("WorkerTrials")
    assert oracle.tuner_ids == {"tuner0", "tuner1"}, moved("WorkerTrials")
    oracle.get_trial(second.trial_id)  # tuner1's heartbeat
    _end(oracle, second)
    assert oracle.create_trial("tuner0").status == "STOPPED", moved("WorkerTrials")
    assert kt_adapter.trial_worker(oracle, first.trial_id) == "tuner0"
    assert kt_adapter.trial_worker(oracle, second.trial_id) == "tuner1"
    reloaded = _oracle(tmp_path)
    reloaded.reload()
    assert reloaded.trial_workers == oracle.trial_workers, moved("WorkerTrials")


def test_worker_trials_requeues_a_lost_workers_trial_once_then_fails_it(tmp_path, chief):
    import time

    oracle = _oracle(tmp_path)
    oracle.max_trials = 2
    first, lost = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    _end(oracle, first)
    time.sleep(0.3)  # tuner1 is silent: it died
    again = oracle.create_trial("tuner0")
    assert again.trial_id == lost.trial_id and again.status == "RUNNING", moved("WorkerTrials")
    assert kt_adapter.trial_worker(oracle, lost.trial_id) == "tuner0"
    time.sleep(0.3)  # tuner0 dies too, on the same trial
    assert oracle.create_trial("tuner2").status == "STOPPED", moved("WorkerTrials")
    saved = _saved_trial(tmp_path, lost.trial_id)
    assert saved["status"] == "FAILED" and "second worker lost" in saved["message"]
    # What Keras Tuner's chief waits for before it exits (`oracle_chief.exit_chief`).
    assert not oracle.ongoing_trials and not oracle.tuner_ids, moved("WorkerTrials")


def _end_from_a_worker(oracle, trial):
    """Ends `trial` as a worker's request does on the chief: through Keras Tuner's server."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute import oracle_chief

    request = protos.get_service().EndTrialRequest(trial=trial.to_proto())
    oracle_chief.OracleServicer(oracle).EndTrial(request, None)


def test_the_chief_is_told_of_each_trial_as_a_worker_ends_it(tmp_path, chief, monkeypatch):
    import time

    oracle = _oracle(tmp_path)
    ended = []

    def record(trial):  # what the search's recorder reads: the oracle's trial, ended
        ended.append((trial.trial_id, str(trial.status), trial.score,
                      trial.trial_id in oracle.ongoing_trials.values()))
        time.sleep(0.3)  # longer than the workers' timeout: the chief heard nobody meanwhile

    oracle.chief_trial_ended = record
    first, second = oracle.create_trial("tuner0"), oracle.create_trial("tuner1")
    oracle.update_trial(first.trial_id, {"score": 0.5})
    first.status = "COMPLETED"
    _end_from_a_worker(oracle, first)
    assert ended == [(first.trial_id, "COMPLETED", 0.5, False)], moved("chief_trial_ended")
    # tuner1, running its trial, was silent only while the chief was busy recording: not lost
    # (its trial is not handed to tuner0).
    again = oracle.create_trial("tuner0")
    assert again.trial_id != second.trial_id, moved("chief_trial_ended")
    assert "tuner1" in oracle.tuner_ids, moved("chief_trial_ended")


def test_outside_a_chief_the_oracle_tells_no_one(tmp_path):
    oracle = _oracle(tmp_path)
    ended = []
    oracle.chief_trial_ended = ended.append
    trial = oracle.create_trial("tuner0")
    _end(oracle, trial)  # the tuner of a single process reports the trial itself
    assert ended == []


def test_without_a_chief_worker_trials_records_nothing(tmp_path):
    oracle = _oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    assert kt_adapter.trial_worker(oracle, trial.trial_id) is None


class _WorkerTuner(kt_adapter.AtomicTunerState, kt.Tuner):
    pass


@pytest.fixture
def worker_tuner(tmp_path, monkeypatch):
    """A tuner in worker process `tuner0` of a distributed search (its chief never answers)."""
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")
    return _WorkerTuner(oracle=_oracle(tmp_path), hypermodel=lambda hp: None,
                        directory=str(tmp_path), project_name="project")


def test_a_worker_beats_through_its_oracle_client_while_a_trial_runs(worker_tuner, monkeypatch):
    import time

    from keras_tuner.src.distribute import oracle_client

    monkeypatch.setattr(kt_adapter, "HEARTBEAT_SECONDS", 0.02)
    monkeypatch.setattr(kt.Tuner, "run_trial", lambda self, trial: time.sleep(0.3))
    beats = []
    tuner = worker_tuner
    assert isinstance(tuner.oracle, oracle_client.OracleClient), moved("DistributedWorker")
    assert callable(tuner.oracle.get_trial), moved("DistributedWorker")
    tuner.oracle = type("Client", (), {"get_trial": lambda self, trial_id: beats.append(
        trial_id)})()
    tuner.run_trial(kt.engine.trial.Trial(kt.HyperParameters(), trial_id="03"))
    assert len(beats) >= 3 and set(beats) == {"03"}
    count = len(beats)
    time.sleep(0.1)
    assert len(beats) == count  # the beats stop with the trial


def test_condition_protos_are_sent_without_a_print(capsys):
    from keras_tuner.src.engine import conditions

    parent = conditions.Parent("policy", ["mixup"])
    kt_adapter.quiet_condition_protos()
    proto = parent.to_proto()
    assert capsys.readouterr().out == "", moved("quiet_condition_protos")
    assert conditions.Parent.from_proto(proto) == parent


def test_a_worker_told_to_wait_asks_its_chief_again_after_a_while(worker_tuner, monkeypatch):
    import time

    monkeypatch.setattr(kt_adapter, "IDLE_WAIT_SECONDS", 0.2)
    asked = []

    def create_trial(tuner_id):  # the chief: wait twice, then stop
        asked.append(time.monotonic())
        status = "IDLE" if len(asked) < 3 else "STOPPED"
        return kt.engine.trial.Trial(kt.HyperParameters(), trial_id="1", status=status)

    tuner = worker_tuner
    monkeypatch.setattr(tuner.oracle, "create_trial", create_trial)
    monkeypatch.setattr(_WorkerTuner, "save", lambda self: None)  # the chief's business
    tuner.search()
    assert len(asked) == 3, moved("DistributedWorker")
    assert min(b - a for a, b in zip(asked, asked[1:])) >= 0.2, moved("DistributedWorker")


def _full_collections(build):
    """How many full garbage collections `build()` ran, and what it returned or raised."""
    import gc

    collections = []

    def count(phase, info):
        if phase == "stop" and info["generation"] == 2:
            collections.append(1)

    gc.callbacks.append(count)
    try:
        outcome = build()
    except Exception as error:  # noqa: BLE001 (compared below)
        outcome = (type(error), str(error))
    finally:
        gc.callbacks.remove(count)
    return len(collections), outcome


@pytest.mark.parametrize("returns", ["model", "not a model", "oversized"])
def test_one_collection_per_build_is_keras_tuners_build_less_one_collection(tmp_path,
                                                                           returns):
    import keras

    class Ours(kt_adapter.OneCollectionPerBuild, kt.Tuner):
        pass

    def build(hp):
        if returns == "not a model":
            return "a string"
        return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])

    tuners = [kind(oracle=kt.oracles.RandomSearchOracle(objective="loss", max_trials=1),
                   hypermodel=build, directory=str(tmp_path / kind.__name__),
                   max_model_size=10 if returns == "oversized" else None)
              for kind in (kt.Tuner, Ours)]
    (theirs, their_outcome), (ours, our_outcome) = [
        _full_collections(lambda tuner=tuner: tuner._try_build(kt.HyperParameters()))
        for tuner in tuners]
    assert (theirs, ours) == (2, 1), moved("OneCollectionPerBuild")
    if returns == "model":
        assert isinstance(our_outcome, keras.Model), moved("OneCollectionPerBuild")
    else:
        assert our_outcome == their_outcome, moved("OneCollectionPerBuild")
