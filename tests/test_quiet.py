"""A quiet library: `tune` prints autoprep's own lines only, the exported module nothing."""

import logging
import os
import re
import subprocess
import sys
import textwrap

import pytest
from helpers import write_folder

import autoprep
from autoprep._quiet import import_quietly, known_noise_filtered
from autoprep.choices.pipeline import Pipeline
from autoprep.data.decode import read_image_folder

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))

# Every line `tune(verbose=1)` may print (autoprep's own), and the lines of the script below.
ALLOWED = [re.compile(pattern) for pattern in (
    r"data: 24 images at 8x8x1 \(their common size\), .* decoded, in memory \(limit .*\)",
    r"validation: pooled out-of-fold predictions of 3-fold cross-validation, chosen because .*",
    r"seed: 0 \(--seed 0, or tune\(seed=0\), repeats this search\)",
    r"trial [12]/2  .+  balanced_accuracy=\d\.\d{4}  best=\d\.\d{4}  elapsed \S+  ETA \S+",
    r"  a trial \(1 epoch on 3 folds\) took \d+:\d\d:\d\d at 8x8",  # after the first one
    r"training the best pipeline on the development split for the test score\.\.\.",
    r"state: finished",
    r"objective: balanced_accuracy",
    r"best pipeline: .+",
    r"best validation balanced_accuracy: \d\.\d{4}",
    r"(baseline )?test balanced_accuracy( \(raw pixels\))?: \d\.\d{4}",
    r"label issues: not looked for: too few validated images in class\(es\) .+",
    r".*UserWarning: the user's own warning",  # a warning of the user's: it still shows
    r"  warnings\.warn\(\"the user's own warning\"\)",
    r"the Gaussian process proposed trial 2: True",
)]

TUNE = textwrap.dedent("""
    import sys
    import warnings

    import autoprep

    tune = autoprep.tune  # a user's first use of autoprep, which imports TensorFlow
    from autoprep.search import loop

    def model_fn(input_shape, num_classes):
        import keras

        warnings.warn("the user's own warning")
        return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(num_classes, activation="softmax")])

    # The Gaussian process proposes the second trial: no data-seeded first points, no
    # augmentation stage, one random trial before it.
    tuners = []
    make_tuner = loop.make_tuner

    def first_trial_then_gp(*args, **kwargs):
        tuner = make_tuner(*args, **kwargs)
        tuner.oracle.num_initial_points, tuner.oracle.stage_trials = 1, 0
        tuners.append(tuner)
        return tuner

    loop.make_tuner, loop._seed_points = first_trial_then_gp, lambda *args: []
    tune(model_fn, sys.argv[1], max_trials=2, epochs=1, tuner="bayesian", seed=0,
         directory=sys.argv[2], final_repeats=1, reevaluate=0, verbose=1)
    fitted = hasattr(tuners[0].oracle.gpr, "X_train_")
    print(f"the Gaussian process proposed trial 2: {fitted}", file=sys.stderr)
""")


def _environment():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user's shell has it
    return env


@pytest.mark.slow
def test_a_short_search_prints_autoprep_s_lines_only(tmp_path):
    data_dir = write_folder(tmp_path / "data", [10, 8, 6])
    script = tmp_path / "search.py"
    script.write_text(TUNE)
    completed = subprocess.run(
        [sys.executable, str(script), data_dir, str(tmp_path / "runs")], cwd=tmp_path,
        env=_environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout[-3000:]
    lines = completed.stdout.splitlines()
    unexpected = [line for line in lines if not any(p.fullmatch(line) for p in ALLOWED)]
    assert unexpected == [], "\n".join(unexpected)
    assert "the Gaussian process proposed trial 2: True" in lines
    assert any("the user's own warning" in line for line in lines)
    assert sum(line.startswith("trial ") for line in lines) == 2


# Imports exported modules with importlib, builds and iterates every dataset they make and
# trains one epoch with FIT_KWARGS; what it prints after "start" is what the modules printed.
EXPORTED = textwrap.dedent("""
    import importlib.util
    import sys

    import keras
    import tensorflow as tf

    print("start", file=sys.stderr, flush=True)
    data_dir = sys.argv[1]
    for index, path in enumerate(sys.argv[2:]):
        spec = importlib.util.spec_from_file_location(f"exported_{index}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        paths, labels = module.list_files(data_dir)
        for batch in module.make_train_dataset(paths, labels, batch_size=4, cache=False):
            pass
        for batch in module.make_eval_dataset(paths, batch_size=4):
            pass
        train_ds, val_ds = module.make_datasets(data_dir, validation_split=0.25, batch_size=4)
        model = keras.Sequential([keras.Input(shape=(8, 8, 1)), keras.layers.Flatten(),
                                  keras.layers.Dense(3, activation="softmax")])
        loss = "categorical_crossentropy" if module.ONE_HOT_LABELS else None
        model.compile(optimizer="adam", loss=loss or "sparse_categorical_crossentropy")
        model.fit(train_ds, validation_data=val_ds, epochs=1, verbose=0, **module.FIT_KWARGS)
""")


def test_the_exported_module_imported_with_importlib_prints_nothing(tmp_path):
    data_dir = write_folder(tmp_path / "data", [9, 6, 3])
    folder = read_image_folder(data_dir)
    configs = [  # every map of the module: decoding, gathering, one-hot labels, sample weights
        {"normalization": "per_channel", "augmentation": [{"name": "mixup", "intensity": 0.2}],
         "imbalance": {"name": "deferred_reweighting", "beta": 0.99, "start": 0.5}},
        {"normalization": "rescale_01", "augmentation": [{"name": "rotation", "intensity": 0.1}],
         "imbalance": "inverse_frequency"},
    ]
    paths = []
    for index, config in enumerate(configs):
        pipeline = Pipeline(**config).fit(folder.images, folder.labels, 3)
        result = autoprep.TuneResult(
            best_config=pipeline.get_config(), best_score=0.5, objective="balanced_accuracy",
            trials=[], data={"class_names": folder.class_names, "image_size": [8, 8],
                             "channels": 1}, epochs=2)
        paths.append(result.export(tmp_path / f"pipeline_{index}.py"))
    script = tmp_path / "exported.py"
    script.write_text(EXPORTED)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")  # TensorFlow's own start, not the module's
    env.pop("PYTHONPATH", None)
    completed = subprocess.run([sys.executable, str(script), data_dir, *map(str, paths)],
                               cwd=tmp_path, env=env, capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout == ""
    assert completed.stderr.split("start\n", 1)[1] == ""


def test_keras_trainer_retraces_are_dropped_and_every_other_line_kept():
    logger = logging.getLogger("tensorflow")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    trainer = ("5 out of the last 5 calls to <function TensorFlowTrainer._make_function.<locals>"
               ".multi_step_on_iterator at 0x7f> triggered tf.function retracing. Tracing is ...")
    users = "5 out of the last 5 calls to <function step at 0x7f> triggered tf.function retracing."
    try:
        with known_noise_filtered():
            for message in (trainer, users, "another warning"):
                logger.warning(message)
        logger.warning(trainer)  # outside autoprep's calls: shown
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == [users, "another warning", trainer]
    assert not logger.filters


NOISY = textwrap.dedent("""
    import os
    import tensorflow
    os.write(2, b"a real problem\\n")
""")
FAKE_TENSORFLOW = textwrap.dedent("""
    import os
    os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                b"written to STDERR\\n"
                b"I0000 00:00:1795849498.519639   22555 port.cc:153] oneDNN custom ops\\n")
""")


@pytest.mark.parametrize("module", ["noisy", "plain"])
def test_a_public_name_that_imports_tensorflow_imports_it_without_its_start_up_lines(
        tmp_path, module):
    (tmp_path / "tensorflow.py").write_text(FAKE_TENSORFLOW)
    (tmp_path / "noisy.py").write_text(NOISY)
    (tmp_path / "plain.py").write_text("")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")  # `import autoprep`'s default
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    code = ("import os; from autoprep._quiet import import_quietly; "
            f"import_quietly({module!r}); print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                               env=env, timeout=60)
    assert completed.returncode == 0, completed.stderr
    if module == "noisy":  # TensorFlow imported: its later notes are off, as in the CLI
        assert (completed.stderr, completed.stdout) == ("a real problem\n", "3\n")
    else:  # no TensorFlow: the level a later import of the user's gets is left as it was
        assert (completed.stderr, completed.stdout) == ("", "2\n")


def test_the_public_names_are_imported_quietly(monkeypatch):
    imported = []
    monkeypatch.delitem(vars(autoprep), "Pipeline", raising=False)
    monkeypatch.setattr(autoprep, "_import_quietly",
                        lambda name: imported.append(name) or import_quietly(name))
    assert autoprep.Pipeline is Pipeline
    assert imported == ["autoprep.choices.pipeline"]
