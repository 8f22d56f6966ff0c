"""The exported module, imported in a fresh process, reproduces the live pipeline."""

import ast
import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from helpers import tiny_model, write_folder

import autoprep
from autoprep.choices.pipeline import Pipeline
from autoprep.data.decode import read_image_folder

SEED = 3  # the global seed set before a training dataset is built, here and in the probe


def training_epochs(dataset, epochs=2):
    """Images, labels and sample weights (if any) of `epochs` passes over a training dataset."""
    parts = {"images": [], "labels": [], "weights": []}
    for _ in range(epochs):
        for batch in dataset:
            for key, tensor in zip(parts, batch):
                parts[key].append(tensor.numpy())
    return {key: np.concatenate(arrays) for key, arrays in parts.items() if arrays}


# Probes the exported modules given on the command line and writes what they produce.
PROBE = textwrap.dedent("""
    import importlib.util, json, sys
    import numpy as np
    import tensorflow as tf

""") + textwrap.dedent(inspect.getsource(training_epochs)) + textwrap.dedent("""

    out_dir, data_dir, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    report = {}
    for index, path in enumerate(sys.argv[4:]):
        spec = importlib.util.spec_from_file_location(f"exported_{index}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert "autoprep" not in sys.modules and "keras_tuner" not in sys.modules
        paths, labels = module.list_files(data_dir)
        batches = list(module.make_eval_dataset(paths, labels, batch_size=5))
        np.save(f"{out_dir}/eval_{index}.npy", np.concatenate([x.numpy() for x, _ in batches]))
        train_ds, val_ds = module.make_datasets(data_dir, validation_split=0.25, batch_size=4,
                                                seed=1, cache=f"{out_dir}/cache_{index}")
        first = next(iter(train_ds))
        kwargs = {}
        for key, value in module.FIT_KWARGS.items():
            if key == "callbacks":
                value = [[type(c).__name__, c.start_epoch] for c in value]
            if isinstance(value, dict):
                value = {str(k): v for k, v in value.items()}
            kwargs[key] = value
        mix = module.make_mix_layer()
        report[path] = {
            "class_names": module.CLASS_NAMES,
            "config": module.CONFIG,
            "fit_kwargs": kwargs,
            "layers": [layer.get_config() for layer in module.make_augmentation_layers()],
            "mix": None if mix is None else mix.get_config(),
            "paths": [p[len(data_dir):].lstrip("/") for p in paths],
            "train_batch": [list(t.shape) for t in first],
            "val_images": sum(int(x.shape[0]) for x, _ in val_ds),
        }
        # The training path on all files: with the module's augmentation, then without it.
        if module.CLASS_WEIGHT_GATE is not None:
            module.CLASS_WEIGHT_GATE.assign(1.0)  # deferred weights on: they must show
        for name in ("train", "plain", "plain_in_memory"):
            if name == "plain":
                module.make_augmentation_layers, module.make_mix_layer = list, lambda: None
            tf.keras.utils.set_random_seed(seed)
            dataset = module.make_train_dataset(paths, labels, batch_size=4, seed=1,
                                                cache=name == "plain_in_memory")
            np.savez(f"{out_dir}/{name}_{index}.npz", **training_epochs(dataset))
    with open(f"{out_dir}/report.json", "w") as handle:
        json.dump(report, handle)
""")


def run_probe(tmp_path, data_dir, module_paths):
    """Imports the modules in a fresh Python process; returns (report, eval arrays)."""
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, str(probe), str(tmp_path), str(data_dir), str(SEED),
         *map(str, module_paths)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    arrays = [np.load(tmp_path / f"eval_{i}.npy") for i in range(len(module_paths))]
    return report, arrays


def probed_training(tmp_path, index, name="train"):
    """What the probe's module `index` produced on the training path (`train` or `plain`)."""
    with np.load(tmp_path / f"{name}_{index}.npz") as arrays:
        return dict(arrays)


def imported_modules(path):
    """Top-level names of the modules a Python file imports."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module.split(".")[0])
    return names


def _layer_config(config):
    return {k: v for k, v in config.items() if k not in ("name", "seed")}


def _live_fit_kwargs(pipeline, epochs):
    import tensorflow as tf

    kwargs = {}
    for key, value in pipeline.fit_kwargs(epochs, gate=tf.Variable(0.0)).items():
        if key == "callbacks":
            value = [[type(c).__name__, c.start_epoch] for c in value]
        kwargs[key] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
    return kwargs


PIPELINES = [
    {
        "normalization": "per_channel",
        "augmentation": [
            {"name": "flip", "mode": "horizontal_and_vertical"},
            {"name": "rotation", "intensity": 0.1},
            {"name": "contrast", "intensity": 0.2},
        ],
        "imbalance": "inverse_frequency",
    },
    {
        "normalization": "robust",
        "augmentation": [{"name": "mixup", "intensity": 0.2}],
        "imbalance": {"name": "deferred_reweighting", "beta": 0.99, "start": 0.5},
    },
    {
        "normalization": "per_image",
        "augmentation": [{"name": "rand_augment", "intensity": 0.4}],
        "imbalance": "oversample",
    },
    {"normalization": "rescale_pm1", "augmentation": [], "imbalance": "undersample"},
    {
        "normalization": "rescale_01",
        "augmentation": [{"name": "trivial_augment", "intensity": 1.0}],
        "imbalance": "posthoc_logit_adjustment",
    },
]


def test_exported_modules_match_the_live_pipelines(tmp_path):
    data_dir = write_folder(tmp_path / "data", [9, 6, 3], size=(6, 5), mode="RGB")
    folder = read_image_folder(data_dir, image_size=(8, 8))  # resizing on both sides
    result_data = {"class_names": folder.class_names, "image_size": [8, 8], "channels": 3}
    live, module_paths = [], []
    for index, config in enumerate(PIPELINES):
        pipeline = Pipeline(**config).fit(folder.images, folder.labels, 3)
        result = autoprep.TuneResult(
            best_config=pipeline.get_config(),
            best_score=0.5,
            objective="balanced_accuracy",
            trials=[],
            data=result_data,
            epochs=4,
        )
        module_paths.append(result.export(tmp_path / f"pipeline_{index}.py"))
        live.append(pipeline)

    report, arrays = run_probe(tmp_path, data_dir, module_paths)

    for pipeline, path, exported in zip(live, module_paths, arrays):
        probe = report[path]
        standard = {"os", "random", "stat", "struct", "warnings"}  # the standard library
        assert imported_modules(path) == standard | {"tensorflow"}
        assert probe["paths"] == folder.paths
        expected = np.concatenate(
            [
                x.numpy()
                for x, _ in pipeline.eval_dataset(folder.images, folder.labels, batch_size=5)
            ]
        )
        np.testing.assert_allclose(exported, expected, rtol=1e-5, atol=1e-5)
        assert probe["config"] == json.loads(json.dumps(pipeline.get_config()))
        assert probe["fit_kwargs"] == _live_fit_kwargs(pipeline, epochs=4)
        assert [_layer_config(c) for c in probe["layers"]] == [
            _layer_config(json.loads(json.dumps(layer.get_config())))
            for op in pipeline.plain_ops
            for layer in op.build_layers()
        ]
        mix = pipeline.mix_op
        if mix is None:
            assert probe["mix"] is None
        else:
            assert _layer_config(probe["mix"]) == _layer_config(
                json.loads(json.dumps(mix.build_layers()[0].get_config()))
            )
        assert probe["train_batch"][0][1:] == [8, 8, 3]
        assert probe["val_images"] > 0

    for index, pipeline in enumerate(live):
        check_training_path(pipeline, folder, tmp_path, index)


def live_training(pipeline, folder):
    """The live training path over two epochs, built as the probe builds the exported one."""
    keras.utils.set_random_seed(SEED)
    dataset, fit_kwargs = pipeline.train_dataset(folder.images, folder.labels, num_classes=3,
                                                 batch_size=4, epochs=4, seed=1)
    for callback in fit_kwargs.get("callbacks", []):
        callback.gate.assign(1.0)  # deferred weights on, as in the probe
    return training_epochs(dataset)


def check_training_path(pipeline, folder, tmp_path, index):
    """The exported training dataset against the live one under the same seeds.

    Without augmentation the two must be equal: images, labels, sample weights and so the
    sampling. With augmentation too: under the same global seed and dataset seed, the
    exported module (in another process) augments every image exactly as the live pipeline
    does, mixed labels of MixUp and CutMix included, and the augmentation does change them.
    """
    plain = Pipeline.from_config({**pipeline.get_config(), "augmentation": []})
    exported, expected = probed_training(tmp_path, index, "plain"), live_training(plain, folder)
    assert set(exported) == set(expected)  # sample weights in both or neither
    in_memory = probed_training(tmp_path, index, "plain_in_memory")  # decoded once (cache=True)
    assert set(in_memory) == set(exported)
    for key, values in exported.items():
        np.testing.assert_array_equal(in_memory[key], values, err_msg=f"{key} of {pipeline}")
    for key, values in expected.items():
        np.testing.assert_allclose(exported[key], values, rtol=1e-5, atol=1e-5,
                                   err_msg=f"{key} of {pipeline}")
    labels = exported["labels"]
    class_weight = getattr(pipeline.imbalance, "class_weight_", None)
    if "weights" in exported:  # deferred class weights, switched on: not all ones
        np.testing.assert_allclose(exported["weights"], np.float32(class_weight)[labels])
        assert len(set(exported["weights"].tolist())) == 3
    counts = np.bincount(labels, minlength=3).tolist()
    natural = (np.bincount(folder.labels, minlength=3) * 2).tolist()  # two epochs
    assert counts == {"undersample": [6, 6, 6], "oversample": counts}.get(
        pipeline.imbalance.name, natural)

    augmented, live = probed_training(tmp_path, index), live_training(pipeline, folder)
    assert set(augmented) == set(exported)
    mix = pipeline.mix_op is not None
    if not mix:  # augmentation leaves the sampling and the labels alone
        np.testing.assert_array_equal(augmented["labels"], labels)
    else:  # one-hot labels, mixed
        assert augmented["labels"].shape == (len(labels), 3)
        np.testing.assert_allclose(augmented["labels"].sum(axis=1), 1.0, rtol=1e-5)
        for mixed in (augmented["labels"], live["labels"]):
            assert ((mixed > 1e-3) & (mixed < 1 - 1e-3)).any()
    if "weights" in augmented:
        hard = augmented["labels"].argmax(axis=1) if mix else augmented["labels"]
        np.testing.assert_allclose(augmented["weights"], np.float32(class_weight)[hard])
    exported_change = np.abs(augmented["images"] - exported["images"]).mean()
    live_change = np.abs(live["images"] - expected["images"]).mean()
    if not pipeline.augmentation:
        assert exported_change == live_change == 0
    else:
        assert exported_change > 0 and live_change > 0
    # Seeded augmentation is drawn batch by batch in order: the same in both processes.
    for key, values in live.items():
        np.testing.assert_allclose(augmented[key], values, rtol=1e-5, atol=1e-5,
                                   err_msg=f"augmented {key} of {pipeline}")


@pytest.mark.slow
def test_winning_trial_exports_equivalent_module_and_resists_injection(tmp_path):
    hostile = 'x"); __import__("os").system("touch pwned"); ("'
    data_dir = write_folder(tmp_path / "data", [8, 8, 5])
    os.rename(os.path.join(data_dir, "class_1"), os.path.join(data_dir, hostile))
    space = autoprep.SearchSpace(
        normalization="per_channel", imbalance="inverse_frequency", flip="none", policy="none"
    )
    result = autoprep.tune(
        tiny_model,
        data_dir,
        max_trials=1,
        epochs=1,
        tuner="random",
        space=space,
        directory=tmp_path / "runs",
        seed=0,
        verbose=0,
        baseline=False,
    )
    assert hostile in result.data["class_names"]
    exported = result.export(tmp_path / "pipeline.py")
    workdir = tmp_path / "work"
    workdir.mkdir()
    shutil.copy(exported, workdir / "pipeline.py")

    report, (tensors,) = run_probe(workdir, data_dir, [workdir / "pipeline.py"])

    assert not any(p.name == "pwned" for p in tmp_path.rglob("pwned"))
    probe = report[str(workdir / "pipeline.py")]
    assert probe["class_names"] == result.data["class_names"]
    folder = read_image_folder(data_dir)
    pipeline = result.pipeline  # the best trial's pipeline with its learned constants
    expected = np.concatenate(
        [x.numpy() for x, _ in pipeline.eval_dataset(folder.images, folder.labels, batch_size=5)]
    )
    np.testing.assert_allclose(tensors, expected, rtol=1e-5, atol=1e-5)
    assert probe["fit_kwargs"] == _live_fit_kwargs(pipeline, epochs=1)
    assert probe["config"] == result.best_config
