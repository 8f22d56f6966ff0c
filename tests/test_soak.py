"""A long search leaves nothing behind: the same trial, run again, costs no more memory.

`benchmarks/soak.py` measures hundreds of trials. The fast test trains three models through
the search's one training function and fails if a training graph survives its model (the leak
issue 17 found: about 5 MiB for every model trained, 16 MiB a trial of three folds, kept alive
by TensorFlow); the slow one runs a dozen identical trials (only an unused model
hyperparameter differs) and bounds both the graphs alive and the resident memory's growth.
"""

import gc
import os
import types

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_model

import autoprep
from autoprep.choices.pipeline import Pipeline
from autoprep.search.hypermodel import PipelineHyperModel, ensure_compiled

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


def graphs_alive() -> int:
    gc.collect()
    return sum(isinstance(item, tf.Graph) for item in gc.get_objects())


def test_a_trained_model_leaves_no_graph_behind():
    rng = np.random.default_rng(0)
    folder = types.SimpleNamespace(images=rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8),
                                   labels=np.arange(24) % 3, class_names=list("abc"))
    hypermodel = PipelineHyperModel(None, folder, None, None, objective="accuracy",
                                    batch_size=8, seed=0)
    alive = []
    for _ in range(3):
        model = ensure_compiled(tiny_model((8, 8, 3), 3), one_hot_labels=False)
        hypermodel.train_and_predict(model, Pipeline(), np.arange(16), np.arange(16, 24),
                                     epochs=1, seed=0, keep=1)
        del model
        alive.append(graphs_alive())
    assert alive[2] <= alive[0], f"tf.Graph objects alive after each training: {alive}"


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
        graphs.append(graphs_alive())
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
