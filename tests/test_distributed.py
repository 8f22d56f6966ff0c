"""GPU and multi-machine code paths, exercised on CPU.

`tf.distribute.MirroredStrategy` runs over two logical CPU devices (as it would over two
GPUs), and Keras Tuner's distributed mode runs a chief and a worker process on localhost.
Both need a fresh process: logical devices and the tuner's role are fixed at start-up.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
from helpers import write_folder

SCRIPT = textwrap.dedent('''
    import json, sys
    import tensorflow as tf

    if sys.argv[3] == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import autoprep

    fits = []  # every training in this process
    keras_fit = keras.Model.fit
    keras.Model.fit = lambda self, *a, **k: fits.append(1) or keras_fit(self, *a, **k)

    def model_fn(input_shape, num_classes):
        return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(num_classes, activation="softmax")])

    strategy = None
    if sys.argv[3] == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    space = autoprep.SearchSpace(flip="none", policy="none")
    result = autoprep.tune(model_fn, sys.argv[1], directory=sys.argv[2], max_trials=2,
                           epochs=1, tuner="random", seed=0, verbose=0, space=space,
                           cv=2 if strategy else None, distribution_strategy=strategy,
                           validation_split=0.25, reevaluate=0)  # one training per trial
    print("RESULT " + json.dumps({
        "state": result.state, "trials": len(result.trials), "test_score": result.test_score,
        "fits": len(fits),
        "replicas": strategy.num_replicas_in_sync if strategy else None}))
''')


def _run(tmp_path, role, env=None, **popen):
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "data"), str(tmp_path / "runs"), role],
        cwd=tmp_path, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )


def _result(process, timeout=300):
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


@pytest.mark.slow
def test_mirrored_strategy_over_two_devices_runs_folds_and_final_training(tmp_path):
    write_folder(tmp_path / "data", [12, 12, 6])
    result = _result(_run(tmp_path, "mirrored"))
    assert result["replicas"] == 2
    assert result["state"] == "finished" and result["trials"] == 2
    assert 0 <= result["test_score"] <= 1


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_keras_tuner_distributed_mode_with_a_chief_and_a_worker(tmp_path):
    write_folder(tmp_path / "data", [12, 12, 6])
    oracle = {"KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(_free_port())}
    chief = _run(tmp_path, "chief", {**oracle, "KERASTUNER_TUNER_ID": "chief"})
    worker = _run(tmp_path, "worker", {**oracle, "KERASTUNER_TUNER_ID": "tuner0"})
    try:
        worker_result = _result(worker)
        chief_result = _result(chief)
    finally:
        for process in (chief, worker):
            process.kill()
    assert worker_result["state"] == "worker finished" and worker_result["trials"] == 0
    assert chief_result["state"] == "finished" and chief_result["trials"] == 2
    # The worker trained both trials; the chief only the final 3 + 3 test-score trainings.
    assert worker_result["fits"] == 2 and chief_result["fits"] == 2 * 3
    assert 0 <= chief_result["test_score"] <= 1
    on_disk = json.loads((tmp_path / "runs" / "data" / "results.json").read_text())
    assert len(on_disk["trials"]) == 2
