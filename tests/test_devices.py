"""GPU hygiene without a GPU: memory growth, mixed precision, and a trial out of device memory
(the error injected) that fails with the fix while the search goes on."""

import keras
import keras_tuner as kt
import pytest
import tensorflow as tf
from helpers import write_folder

import autoprep
from autoprep import cli
from autoprep.search import devices

OOM = tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[32,512]")


class OutOfMemory(keras.layers.Layer):
    """Raises TensorFlow's out-of-memory error when training starts, `left` times."""

    left = 1

    def call(self, x, training=None):
        if training and OutOfMemory.left:
            OutOfMemory.left -= 1
            raise OOM
        return x


def oom_once(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), OutOfMemory(),
                             keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])


def test_memory_growth_is_set_on_every_gpu(monkeypatch):
    gpus = [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU"),
            tf.config.PhysicalDevice("/physical_device:GPU:1", "GPU")]
    calls = []

    def set_memory_growth(device, enabled):
        if device is gpus[1]:
            raise RuntimeError("Physical devices cannot be modified after being initialized")
        calls.append((device.name, enabled))

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: gpus)
    monkeypatch.setattr(tf.config.experimental, "set_memory_growth", set_memory_growth)
    assert devices.enable_memory_growth() == ["/physical_device:GPU:0"]
    assert calls == [("/physical_device:GPU:0", True)]


def test_mixed_precision_is_set_inside_and_restored():
    with devices.mixed_precision(True):
        assert keras.mixed_precision.global_policy().name == "mixed_float16"
    assert keras.mixed_precision.global_policy().name == "float32"
    with devices.mixed_precision(False):
        assert keras.mixed_precision.global_policy().name == "float32"


def test_out_of_memory_fails_the_trial_with_the_fix():
    with pytest.raises(kt.errors.FailedTrialError,
                       match=r"Out of device memory \(ResourceExhaustedError: OOM when "
                             r"allocating.*smaller batch size .*--batch-size; now 64\)"):
        with devices.out_of_memory_fails_trial(64):
            raise OOM
    with pytest.raises(ValueError, match="other"):
        with devices.out_of_memory_fails_trial(64):
            raise ValueError("other errors pass through")


def test_cli_mixed_precision_builds_models_with_float16(tmp_path, monkeypatch):
    data = write_folder(tmp_path / "data", [3, 3])
    seen = []

    def fake_tune(model_fn, data_dir, **kwargs):
        seen.append(keras.mixed_precision.global_policy().name)
        raise KeyboardInterrupt

    monkeypatch.setattr(autoprep, "tune", fake_tune)
    argv = ["tune", data, "--model", "autoprep.data.demo:demo_model", "--out",
            str(tmp_path / "run"), "--mixed-precision"]
    assert cli.main(argv) == 130
    assert seen == ["mixed_float16"]
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_a_trial_out_of_device_memory_fails_and_the_search_goes_on(tmp_path):
    OutOfMemory.left = 1
    data = write_folder(tmp_path / "data", [6, 6])
    result = autoprep.tune(oom_once, data, max_trials=2, epochs=1, tuner="random", seed=0,
                           test_split=0, verbose=0, directory=tmp_path / "runs", batch_size=4,
                           space=autoprep.SearchSpace(flip="none", policy="none"))
    first, second = result.trials
    assert first["status"] == "FAILED"
    assert "Out of device memory" in first["message"] and "now 4" in first["message"]
    assert second["status"] == "COMPLETED" and result.best_trial_id == second["trial_id"]


def test_mirrored_strategy_sets_memory_growth_before_it_lists_the_devices(monkeypatch):
    calls = []
    monkeypatch.setattr(devices, "enable_memory_growth", lambda: calls.append("growth"))
    listed = tf.config.list_logical_devices

    def list_logical_devices(kind=None):
        calls.append(kind)
        return listed(kind)

    monkeypatch.setattr(tf.config, "list_logical_devices", list_logical_devices)
    strategy = devices.mirrored_strategy()
    assert calls[:2] == ["growth", "GPU"]  # GPUs first; without one, every CPU device
    assert strategy.num_replicas_in_sync == len(listed("GPU") or listed("CPU"))
