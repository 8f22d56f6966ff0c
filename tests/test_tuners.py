"""The Keras Tuner oracles and tuners autoprep runs: default-first trial, atomic state files."""

import json

import pytest
from helpers import tiny_model

import autoprep
import autoprep.search.kt_adapter


@pytest.mark.slow
@pytest.mark.parametrize("tuner", ["random", "bayesian", "hyperband"])
def test_keras_tuner_state_files_are_written_atomically(make_folder, tmp_path, monkeypatch, tuner):
    written = []
    real = autoprep.search.kt_adapter.atomic_write

    def recording(path, text):
        written.append(str(path))
        real(path, text)

    monkeypatch.setattr(autoprep.search.kt_adapter, "atomic_write", recording)
    space = autoprep.SearchSpace(flip="none", policy="none")
    autoprep.tune(tiny_model, make_folder([6, 6, 4]), max_trials=1, epochs=2, tuner=tuner,
                  space=space, directory=tmp_path / "runs", test_split=0, verbose=0)
    names = {path.rsplit("/", 1)[-1] for path in written}
    assert {"oracle.json", "trial.json", "tuner0.json"} <= names
    for path in written:
        json.loads(open(path).read())
    assert not list(tmp_path.rglob("*.part"))
