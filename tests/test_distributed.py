"""GPU and multi-machine code paths, exercised on CPU.

`tf.distribute.MirroredStrategy` runs over two logical CPU devices (as it would over two
GPUs), and Keras Tuner's distributed mode runs a chief and workers as processes on localhost.
Both need a fresh process: logical devices and the tuner's role are fixed at start-up.
"""

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import write_folder

from autoprep.cli import main
from autoprep.run.result import TuneResult, trials_csv
from autoprep.run.trial import TrialRecord

# `autoprep tune --strategy mirrored` with two logical CPU devices, as it would run on two GPUs.
MIRRORED = textwrap.dedent('''
    import sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from autoprep.cli import main

    sys.exit(main(sys.argv[1:]))
''')

# Writes the number of replicas of the strategy each model is built under to replicas.txt.
MIRRORED_MODEL = textwrap.dedent('''
    import keras
    import tensorflow as tf


    def build(input_shape, num_classes):
        with open("replicas.txt", "a") as out:
            out.write(f"{tf.distribute.get_strategy().num_replicas_in_sync}\\n")
        return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(num_classes, activation="softmax")])
''')


@pytest.mark.slow
def test_strategy_mirrored_runs_every_training_over_two_devices(tmp_path):
    write_folder(tmp_path / "data", [12, 12, 6])
    (tmp_path / "search.py").write_text(MIRRORED)
    (tmp_path / "model.py").write_text(MIRRORED_MODEL)
    done = subprocess.run(
        [sys.executable, "search.py", "tune", "data", "--model", "model.py:build", "--out",
         "runs/search", "--strategy", "mirrored", "--max-trials", "1", "--epochs", "1",
         "--tuner", "random", "--seed", "0", "--cv", "2", "--final-repeats", "1",
         "--reevaluate", "0"],
        cwd=tmp_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), capture_output=True,
        text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "strategy: each trial mirrored over 2 devices" in done.stdout
    results = json.loads((tmp_path / "runs" / "search" / "results.json").read_text())
    assert results["state"] == "finished"
    assert [trial["status"] for trial in results["trials"]] == ["COMPLETED"]
    assert 0 <= results["test_score"] <= 1 and 0 <= results["baseline_score"] <= 1
    # The trial's two folds, then the best pipeline and the baseline, each on two replicas
    # (the models built before, to check the model and declare the space, are not trained).
    built = (tmp_path / "replicas.txt").read_text().split()
    assert built[-4:] == ["2"] * 4 and built.count("2") == 4


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The model file of the workers: with WAIT_FOR set, the first call waits for that file; with
# HANG_IF set, every training batch checks for that file and, once it exists, writes
# HANG_IF.hung and sleeps (the test then kills the process in the middle of its trial).
WORKER_MODEL = textwrap.dedent('''
    import os, time
    import keras
    import tensorflow as tf

    _waited = []


    class Hang(keras.layers.Layer):
        def call(self, x):
            def check():
                if os.path.exists(os.environ["HANG_IF"]):
                    open(os.environ["HANG_IF"] + ".hung", "w").close()
                    time.sleep(600)
                return 0.0
            return x + tf.reshape(tf.py_function(check, [], tf.float32), [])

        def compute_output_shape(self, input_shape):
            return input_shape


    def build(input_shape, num_classes):
        while os.environ.get("WAIT_FOR") and not _waited:
            if os.path.exists(os.environ["WAIT_FOR"]):
                _waited.append(True)
            time.sleep(0.1)
        layers = [keras.Input(shape=input_shape), keras.layers.Flatten()]
        if os.environ.get("HANG_IF"):
            layers.append(Hang())
        return keras.Sequential(layers + [keras.layers.Dense(num_classes, activation="softmax")])
''')


def _wait_for(condition, process, what, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"{what}: the process ended first"
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_has_its_trial_run_by_the_other(tmp_path, capsys):
    write_folder(tmp_path / "data", [8, 8])
    (tmp_path / "model.py").write_text(WORKER_MODEL)
    run_dir, go, hang = tmp_path / "runs" / "search", tmp_path / "go", tmp_path / "hang"
    address = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", "autoprep", "tune", str(tmp_path / "data"), "--model",
               "model.py:build", "--out", str(run_dir), "--chief", address, "--max-trials", "4",
               "--epochs", "1", "--tuner", "random", "--seed", "0", "--cv", "2",
               "--final-repeats", "1", "--reevaluate", "0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    roles = {"chief": (["--worker-timeout", "6s"], {}),
             "tuner0": (["--worker", "0"], {"WAIT_FOR": str(go)}),  # starts after tuner1's kill
             "tuner1": (["--worker", "1"], {"HANG_IF": str(hang)})}
    processes = {}
    try:
        for role, (options, extra) in roles.items():
            with open(tmp_path / f"{role}.out", "w") as out:
                processes[role] = subprocess.Popen(
                    command + options, cwd=tmp_path, env={**env, **extra}, stdout=out,
                    stderr=subprocess.STDOUT)
        oracle_file = run_dir / "oracle.json"

        def oracle():
            return json.loads(oracle_file.read_text()) if oracle_file.exists() else {}

        # tuner1 finishes its first trial alone, then hangs inside the next one and is killed.
        _wait_for(lambda: oracle().get("end_order"), processes["tuner1"], "tuner1's first trial")
        hang.touch()
        _wait_for((tmp_path / "hang.hung").exists, processes["tuner1"], "tuner1 in a trial")
        # The chief has recorded the first trial as it ended, as a search of one process does,
        # though the search cannot end yet (tuner1 hangs, tuner0 waits).
        results_file = run_dir / "results.json"
        _wait_for(lambda: results_file.exists() and json.loads(results_file.read_text())["trials"],
                  processes["chief"], "the chief's record of tuner1's first trial", timeout=60)
        first = json.loads(results_file.read_text())
        assert first["state"] == "running" and first["trials"][0]["worker"] == "tuner1"
        processes["tuner1"].send_signal(signal.SIGKILL)
        cut_off = oracle()["ongoing_trials"]["tuner1"]
        go.touch()
        assert processes["chief"].wait(timeout=300) == 0, (tmp_path / "chief.out").read_text()
        assert processes["tuner0"].wait(timeout=60) == 0, (tmp_path / "tuner0.out").read_text()
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    results = json.loads((run_dir / "results.json").read_text())
    trials = results["trials"]
    assert results["state"] == "finished" and len(trials) == 4
    assert all(trial["status"] == "COMPLETED" for trial in trials)
    workers = {trial["trial_id"]: trial["worker"] for trial in trials}
    assert workers[cut_off] == "tuner0"  # run again by the other worker
    assert sorted(workers.values()) == ["tuner0", "tuner0", "tuner0", "tuner1"]
    chief_out = (tmp_path / "chief.out").read_text()
    assert "runs it again" in chief_out
    # One progress line per trial, named by the trial's number, in the chief's output and log.
    numbers = sorted(int(n) for n in re.findall(r"^trial (\d+)/4  ", chief_out, re.M))
    assert numbers == [trial["number"] for trial in trials] == [1, 2, 3, 4]
    assert len(re.findall(r"  trial \d+/4  ", (run_dir / "autoprep.log").read_text())) == 4
    assert main(["show", str(run_dir)]) == 0
    assert "workers: tuner0 ran 3 trials, tuner1 ran 1 trial" in capsys.readouterr().out
    # The same files as a search of one process.
    assert set(results) == {f.name for f in dataclasses.fields(TuneResult)} - {"run_dir"}
    assert all(set(trial) == {f.name for f in dataclasses.fields(TrialRecord)}
               for trial in trials)
    header = (run_dir / "trials.csv").read_text().splitlines()[0]
    assert header == trials_csv([]).splitlines()[0]
