"""A tampered results.json cannot inject code through `autoprep export` (issue 8, section 2).

Each tampered `best_config` is either refused by `autoprep export` with a one-line error naming
the key (exit 2, nothing written) or exported as a module that is inert: importing it in a
fresh process must not create the canary file the payload tries to write.
"""

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import autoprep
from autoprep.choices.pipeline import Pipeline
from autoprep.cli import main

CANARY = "canary_written"
PAYLOAD = f"__import__('pathlib').Path({CANARY!r}).touch()"
LAYER = f"RandomFlip(); {PAYLOAD}; x = tf.keras.layers.RandomFlip"


def good_config():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(10, 4, 4, 3), dtype=np.uint8)
    labels = np.array([0] * 6 + [1] * 3 + [2])
    pipeline = Pipeline(
        normalization="per_channel",
        augmentation=[{"name": "flip", "mode": "horizontal"},
                      {"name": "rotation", "intensity": 0.1},
                      {"name": "rand_augment", "intensity": 0.4}],
        imbalance={"name": "deferred_reweighting", "beta": 0.99, "start": 0.5},
    )
    return pipeline.fit(images, labels, 3).get_config()


def tampered(change):
    config = copy.deepcopy(good_config())
    change(config)
    return config


def op(config, name):
    return next(item for item in config["augmentation"] if item["name"] == name)


# (case, change to best_config, words the one-line error must contain)
REFUSED = [
    ("dict-trick-on-an-op",
     lambda c: op(c, "rotation").update({"__dict__": {"intensity": 0.1, "layer_name": LAYER}}),
     "`rotation` has no parameter or learned value '__dict__'"),
    ("extra-key",
     lambda c: op(c, "rotation").update({"layer_name": LAYER}),
     "`rotation` has no parameter or learned value 'layer_name'"),
    ("policy-layer-name-as-learned-value",
     lambda c: op(c, "rand_augment").update({"layer_name_": LAYER}),
     "`rand_augment` has no parameter or learned value 'layer_name_'"),
    ("learned-value-on-a-choice-that-learns-none",
     lambda c: op(c, "flip").update({"mode_": "horizontal"}),
     "`flip` has no parameter or learned value 'mode_'"),
    ("extra-pipeline-key",
     lambda c: c.update({"__class__": "x"}),
     "A pipeline config must be a dict with keys normalization, augmentation, imbalance"),
    ("string-intensity",
     lambda c: op(c, "rotation").update({"intensity": "0.1"}),
     "`rotation` parameter `intensity` must be a finite number. Received: '0.1'"),
    ("bool-start",
     lambda c: c["imbalance"].update({"start": True}),
     "`deferred_reweighting` parameter `start` must be a finite number"),
    ("code-as-learned-mean",
     lambda c: c["normalization"].update({"mean_": PAYLOAD}),
     "`per_channel` learned value `mean_` must be a finite number or a list"),
    ("nan-class-weight",
     lambda c: c["imbalance"]["class_weight_"].__setitem__(1, float("nan")),
     "`deferred_reweighting` learned value `class_weight_` must be a finite number"),
    ("infinite-std",
     lambda c: c["normalization"]["std_"].__setitem__(0, float("inf")),
     "`per_channel` learned value `std_` must be a finite number"),
    ("mean-of-the-wrong-length",
     lambda c: c["normalization"].update({"mean_": [1.0, 2.0], "std_": [1.0, 2.0]}),
     "learned value `mean_` must have as many items as there are channels (3). Received: 2 items"),
    ("class-weights-of-the-wrong-length",
     lambda c: c["imbalance"].update({"class_weight_": [1.0, 1.0]}),
     "`class_weight_` must have as many items as there are classes (3). Received: 2 items"),
    ("100k-character-flip-mode",
     lambda c: op(c, "flip").update({"mode": "h" * 100_000}),
     "`flip` parameter `mode` must be a name of at most 100 characters"),
    ("100k-character-name",
     lambda c: c["normalization"].update({"name": "n" * 100_000}),
     "A normalization config needs a `name`"),
    ("augmentation-not-a-list",
     lambda c: c.update({"augmentation": {"name": "rotation"}}),
     "`augmentation` must be a list of op configs"),
]


def write_run(run_dir, best_config, **data):
    result = autoprep.TuneResult(
        best_config=best_config, best_score=0.5, objective="balanced_accuracy", trials=[],
        data={"data_dir": "data", "class_names": ["a", "b", "c"], "class_counts": [6, 3, 1],
              "image_size": [4, 4], "channels": 3, **data},
        epochs=4,
    )
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "results.json"), "w", encoding="utf-8") as handle:
        json.dump(result.to_dict(), handle)  # NaN and inf as JSON's NaN / Infinity
    return run_dir


def export(run_dir, output, capsys):
    code = main(["export", str(run_dir), "-o", str(output)])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize(
    "change, words", [pytest.param(c, w, id=name) for name, c, w in REFUSED]
)
def test_export_refuses_a_tampered_best_config_naming_the_key(tmp_path, capsys, change, words):
    run_dir = write_run(tmp_path / "run", tampered(change))
    output = tmp_path / "pipeline.py"
    code, err = export(run_dir, output, capsys)
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("autoprep export: error: "), err
    assert "results.json: `best_config` is not a pipeline autoprep wrote" in err
    assert words in err
    assert len(err) < 600
    assert not output.exists()


def test_the_untampered_run_exports(tmp_path, capsys):
    run_dir = write_run(tmp_path / "run", good_config())
    code, err = export(run_dir, tmp_path / "pipeline.py", capsys)
    assert code == 0, err
    assert (tmp_path / "pipeline.py").exists()


@pytest.mark.slow
def test_strings_from_results_json_are_exported_as_inert_literals(tmp_path, capsys):
    hostile = f"x'''\n\"\"\"\n{PAYLOAD}\n#"
    run_dir = write_run(tmp_path / "run", good_config(), data_dir=hostile,
                        class_names=[hostile, "b", "c"])
    output = tmp_path / "pipeline.py"
    code, err = export(run_dir, output, capsys)
    assert code == 0, err
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("PYTHONPATH", None)
    completed = subprocess.run(
        [sys.executable, "-c", "import pipeline; print(pipeline.CLASS_NAMES[0] == "
         f"{hostile!r}, pipeline.CONFIG['augmentation'][0])"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert completed.stdout.startswith("True {'name': 'flip'")
    assert not (tmp_path / CANARY).exists()
