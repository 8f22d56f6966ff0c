"""Results on disk: atomic writes, failure reasons, results.json, trials.csv."""

import json
import os

import pytest

from autoprep._files import atomic_write
from autoprep.run.result import results_json, trials_csv
from autoprep.run.trial import failure_reason

KERAS_WRAPPED = """Traceback (most recent call last):
  File "x.py", line 1, in fit
ValueError: Exception encountered when calling RandAugment.call().

\x1b[1mInvalid channel size: expected 3 (RGB) or 1 (Grayscale).\x1b[0m

Arguments received by RandAugment.call():
  \u2022 training=True
"""


def test_failure_reason_unwraps_keras_layer_errors():
    assert failure_reason(KERAS_WRAPPED) == (
        "ValueError: Invalid channel size: expected 3 (RGB) or 1 (Grayscale)."
    )
    plain = "Traceback (most recent call last):\n  ...\nFailedTrialError: loss became nan\n"
    assert failure_reason(plain) == "FailedTrialError: loss became nan"
    assert failure_reason("the process died twice") == "the process died twice"
    assert failure_reason(None) == ""


def test_results_json_is_the_state_with_one_line_per_trial():
    odd = 'a "class"\n},\n{ \u00e9\t\\'  # quotes, newlines, braces, non-ASCII, a backslash
    trials = [{"trial_id": str(i), "status": "COMPLETED", "score": 0.5 + i / 10,
               "config": {"normalization": {"name": "robust", "q": [0.1, None]}},
               "message": odd if i == 1 else None} for i in range(3)]
    state = {"best_config": {"augmentation": [], "nested": {"empty": {}, "list": []}},
             "trials": trials, "data": {"class_names": [odd, "b"]}, "best_score": float("nan"),
             "state": "running"}
    text = results_json(state)
    parsed = json.loads(text)
    assert json.dumps(parsed, sort_keys=True) == json.dumps(state, sort_keys=True)
    assert list(parsed) == list(state)  # the fields in their order
    lines = text.splitlines()
    assert [json.loads(line.strip().rstrip(",")) for line in lines if '"trial_id"' in line] \
        == trials  # one trial per line
    for empty in ([], None):
        assert json.loads(results_json({"trials": empty, "state": "running"})) == {
            "trials": empty, "state": "running"}


def test_trials_csv_has_one_row_per_trial_with_its_reason():
    config = {"normalization": {"name": "robust"}, "augmentation": [],
              "imbalance": {"name": "oversample"}}
    text = trials_csv([
        {"trial_id": "0", "status": "COMPLETED", "score": 0.5, "config": config},
        {"trial_id": "1", "status": "FAILED", "score": None, "config": None,
         "message": KERAS_WRAPPED, "worker": "tuner1"},
    ])
    lines = text.splitlines()
    # Trials by number (1-based), as in the log and `show`, not by Keras Tuner's 0-based id.
    assert lines[0] == "trial,status,score,pipeline,message,worker"
    assert lines[1] == "1,COMPLETED,0.5,robust | no augmentation | oversample,,"
    assert lines[2].startswith("2,FAILED,,,ValueError: Invalid channel size")
    assert lines[2].endswith(",tuner1")


def test_atomic_write_replaces_whole_files_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    atomic_write(path, "old")
    atomic_write(path, "new")
    assert path.read_text() == "new"

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "half")
    assert path.read_text() == "new"
    assert os.listdir(tmp_path) == ["results.json"]
