"""Results on disk: atomic writes, failure reasons, trials.csv."""

import os

import pytest

from autoprep._files import atomic_write
from autoprep.run.result import trials_csv
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
