"""A long search leaves nothing behind: the same trial, run again, costs no more memory.

`benchmarks/soak.py` measures hundreds of trials; this test runs a dozen identical ones (only
an unused model hyperparameter differs) and fails on a leak of the size issue 17 found, about
5 MiB for every model trained (a trial's training graph kept alive by TensorFlow).
"""

import gc
import os

import pytest
import tensorflow as tf

import autoprep

TRIALS = 12
WARM_UP = 3  # trials before the measurements: first traces, caches filled once
SAME_TRIAL = autoprep.SearchSpace(
    normalization="rescale_01", flip="none", rotation=0.0, zoom=0.0, translation=0.0,
    contrast=0.0, brightness=0.0, policy="none", imbalance="none",
)


def small_cnn(input_shape, num_classes, hp):
    import keras

    hp.Float("unused", 0.0, 1.0)  # the only difference between trials
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def resident_mib() -> float:
    with open("/proc/self/status", encoding="utf-8") as handle:
        line = next(line for line in handle if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def slope(values) -> float:
    """Least-squares growth of `values` per step."""
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    return (sum((x - mean_x) * (y - mean_y) for x, y in enumerate(values))
            / sum((x - mean_x) ** 2 for x in range(n)))


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS in /proc")
def test_a_trial_leaves_no_graph_and_no_memory_behind(make_folder, tmp_path):
    folder = make_folder([20, 20, 20, 20], size=(16, 16), mode="RGB")
    graphs, memory = [], []

    def measure(result, record):
        gc.collect()
        graphs.append(sum(isinstance(item, tf.Graph) for item in gc.get_objects()))
        memory.append(resident_mib())

    autoprep.tune(small_cnn, folder, max_trials=TRIALS, epochs=1, tuner="random", seed=0,
                  space=SAME_TRIAL, validation_split=0.25, test_split=0, reevaluate=0,
                  baseline=False, verbose=0, directory=tmp_path / "runs",
                  on_trial_end=measure)
    assert len(graphs) == TRIALS
    growth = slope(memory[WARM_UP:])
    assert graphs[-1] <= graphs[WARM_UP] and growth < 1.0, (
        f"after each trial: graphs alive {graphs}, RSS {[round(m) for m in memory]} MiB "
        f"({growth:.2f} MiB per trial)")
