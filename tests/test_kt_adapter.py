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


def test_state_file_names(tmp_path):
    tuner = _tuner(tmp_path)
    assert os.path.basename(tuner.oracle._get_oracle_fname()) == kt_adapter.ORACLE_FILE, moved(
        "file names")
    assert kt_adapter.TRIAL_DIR.fullmatch(
        os.path.basename(tuner.oracle._get_trial_dir("7"))), moved("file names")
    assert kt_adapter.TUNER_FILE.fullmatch(os.path.basename(tuner._get_tuner_fname())), moved(
        "file names")


def test_atomic_oracle_state_writes_every_oracle_and_trial_file(tmp_path, writes):
    oracle = _oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    trial.status = "COMPLETED"
    oracle.update_trial(trial.trial_id, {"score": 1.0})
    oracle.end_trial(trial)
    assert set(writes) == {"oracle.json", kt_adapter.TRIAL_FILE}, moved("AtomicOracleState")
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


@pytest.mark.parametrize(
    "base", [kt.oracles.RandomSearchOracle, kt.oracles.BayesianOptimizationOracle]
)
def test_prior_random_values_draw_every_random_trial(tmp_path, base):
    class Oracle(kt_adapter.PriorRandomValues, base):
        pass

    seeds = []

    def prior(hyperparameters, seed):
        seeds.append(seed)
        return {"x": len(seeds) % 4}

    hp = kt.HyperParameters()
    hp.Int("x", 0, 3)
    oracle = Oracle(objective=kt.Objective("score", "max"), max_trials=3, hyperparameters=hp)
    oracle._set_project_dir(str(tmp_path), "project")
    oracle.prior = prior
    values = [oracle.create_trial(f"tuner{i}").hyperparameters.values["x"] for i in range(3)]
    assert values == [1, 2, 3], moved("PriorRandomValues")
    assert len(set(seeds)) == 3, moved("PriorRandomValues")
