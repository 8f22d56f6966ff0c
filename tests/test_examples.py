"""The examples run: the model file builds for the CLI, and an exported module trains a model."""

import importlib.util
import os

import keras
import keras_tuner as kt
import pytest
from helpers import write_folder

import autoprep

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", f"{EXAMPLES}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_model_builds_with_and_without_hp():
    build_model = load("model").build_model
    assert build_model((8, 8, 1), 3).output_shape == (None, 3)
    hp = kt.HyperParameters()
    build_model((8, 8, 1), 3, hp)
    assert set(hp.values) == {"width", "learning_rate"}


@pytest.mark.slow
def test_training_with_an_exported_pipeline(tmp_path):
    data_dir = write_folder(tmp_path / "data", [10, 10, 5])
    space = autoprep.SearchSpace(normalization="per_channel", imbalance="deferred_reweighting",
                                 flip="horizontal", policy="mixup")
    result = autoprep.tune(load("model").build_model, data_dir, max_trials=1, epochs=1,
                           space=space, directory=tmp_path / "runs", test_split=0, verbose=0)
    module_path = result.export(tmp_path / "pipeline.py")
    history = load("train_with_exported_pipeline").main(module_path, data_dir, epochs=2)
    assert len(history.history["loss"]) == 2


@pytest.mark.slow
def test_tune_digits_runs_with_a_smaller_budget(tmp_path, monkeypatch):
    tune = autoprep.tune
    budgets = []

    def small_tune(*args, **kwargs):  # the example's own call, with fewer trainings
        budgets.append((kwargs["max_trials"], kwargs["epochs"]))
        return tune(*args, **{**kwargs, "max_trials": 1, "epochs": 1, "final_repeats": 1,
                              "baseline": False, "verbose": 0})

    monkeypatch.setattr(autoprep, "tune", small_tune)
    monkeypatch.chdir(tmp_path)
    load("tune_digits").main()
    assert budgets == [(10, 8)]
    assert (tmp_path / "autoprep_runs" / "example_pipeline.py").exists()
    result = autoprep.load_result(tmp_path / "autoprep_runs" / "example")
    assert result.state == "finished" and result.test_score is not None


@pytest.fixture
def transfer_learning(monkeypatch):
    """examples/transfer_learning.py with weights=None (no download) at 32x32."""
    monkeypatch.setenv("AUTOPREP_EXAMPLE_WEIGHTS", "none")
    monkeypatch.setenv("AUTOPREP_EXAMPLE_SIZE", "32")
    return load("transfer_learning")


def test_transfer_learning_builds_a_frozen_backbone_autoprep_recognizes(transfer_learning):
    hp = kt.HyperParameters()
    model = transfer_learning.build_model((8, 8, 1), 3, hp)
    assert set(hp.values) == {"dropout", "learning_rate"}
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 3)
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    assert not base.trainable_weights and model.trainable_weights  # only the head trains
    convention = autoprep.inspect_model(model)
    assert (convention.kind, convention.normalization) == ("backbone", "rescale_pm1")


@pytest.mark.slow
def test_transfer_learning_runs_tune_then_fine_tunes(transfer_learning, tmp_path, monkeypatch):
    tune = autoprep.tune

    def small_tune(*args, **kwargs):  # the example's own call, with fewer trainings
        return tune(*args, **{**kwargs, "max_trials": 1, "test_split": 0, "reevaluate": 0,
                              "validation_split": 0.25, "verbose": 0})

    monkeypatch.setattr(autoprep, "tune", small_tune)
    data_dir = write_folder(tmp_path / "data", [6, 6], size=(16, 16))
    result, model = transfer_learning.main(data_dir, directory=str(tmp_path / "runs"),
                                           epochs=1, fine_tune_epochs=1)
    assert result.data["input_convention"]["normalization"] == "rescale_pm1"
    assert result.data["image_size"] == [32, 32] and result.data["channels"] == 3
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    trainable = [layer.name for layer in base.layers if layer.trainable_weights]
    assert trainable and not any("bn" in name.lower() for name in trainable)
    assert (tmp_path / "runs" / "transfer_model.keras").exists()


# A stand-in for the `autoprep` command: records its GPU and its arguments, one line a call.
# A worker takes a while to record, as a real one says it is done after the chief has exited:
# a recipe that does not wait for its workers loses their lines (every time, not by chance).
FAKE_AUTOPREP = """#!/bin/sh
case " $* " in *" --worker "*) sleep 1 ;; esac
echo "${CUDA_VISIBLE_DEVICES:-}|$*" >> "$CALLS"
"""


@pytest.fixture
def fake_autoprep(tmp_path):
    """Runs a recipe with the stand-in on PATH; returns [(gpu, parsed args)] of its calls."""
    import shlex
    import subprocess

    from autoprep import cli

    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "autoprep").write_text(FAKE_AUTOPREP)
    (tmp_path / "bin" / "autoprep").chmod(0o755)

    def run(command, **env):
        calls = tmp_path / "calls.txt"
        calls.unlink(missing_ok=True)
        path = f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"
        subprocess.run(command, cwd=tmp_path, check=True, timeout=60, capture_output=True,
                       env=dict(os.environ, PATH=path, CALLS=str(calls), **env))
        parsed = []
        for line in sorted(calls.read_text().splitlines()):
            gpu, _, argv = line.partition("|")
            args = cli.build_parser().parse_args(shlex.split(argv))
            assert args.check(args) is None
            parsed.append((gpu, args))
        return parsed

    return run


def test_one_worker_per_gpu_starts_a_chief_and_a_worker_on_each_gpu(fake_autoprep):
    from autoprep.cli.tune import distributed_environment

    calls = fake_autoprep(["bash", f"{EXAMPLES}/one_worker_per_gpu.sh", "data", "m.py:f",
                           "runs/big", "--max-trials", "9", "--seed", "4"], GPUS="2", PORT="8123")
    roles = [(gpu, distributed_environment(args)["KERASTUNER_TUNER_ID"]) for gpu, args in calls]
    assert sorted(roles) == [("0", "chief"), ("0", "tuner0"), ("1", "tuner1")]
    for _, args in calls:
        assert (args.data_dir, args.out, args.max_trials) == ("data", "runs/big", 9)
        assert args.chief == ("127.0.0.1", 8123) and args.seed == 4


@pytest.mark.parametrize("index, role, chief, out", [
    ("0", "chief", ("0.0.0.0", 8000), "/runs/search"),
    ("3", "tuner2", ("autoprep-0.autoprep", 8000), "/runs/worker2"),
])
def test_kubernetes_pods_take_their_role_from_the_job_index(fake_autoprep, index, role, chief,
                                                             out):
    from autoprep.cli.tune import distributed_environment

    [(_, args)] = fake_autoprep(["sh", f"{EXAMPLES}/kubernetes/autoprep-role.sh"],
                                JOB_COMPLETION_INDEX=index, OPTIONS="--max-trials 100")
    assert distributed_environment(args)["KERASTUNER_TUNER_ID"] == role
    assert (args.chief, args.out, args.max_trials) == (chief, out, 100)
    assert (args.data_dir, args.model) == ("/data/images", "/recipe/model.py:build_model")


def test_kubernetes_job_matches_the_role_script():
    with open(f"{EXAMPLES}/kubernetes/autoprep-job.yaml", encoding="utf-8") as handle:
        job = handle.read()
    assert "completionMode: Indexed" in job
    assert "subdomain: autoprep " in job and "\n  name: autoprep\n" in job  # autoprep-0.autoprep
    assert 'command: ["sh", "/recipe/autoprep-role.sh"]' in job
    assert "mountPath: /recipe}" in job and "mountPath: /data, readOnly: true}" in job
    assert job.count("port: 8000") == 2  # the Service and the NetworkPolicy
