"""Shared fixtures: tiny synthetic image folders and a training counter (helpers: helpers.py)."""

import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers import write_folder  # noqa: E402


@pytest.fixture
def image_folder(tmp_path):
    """A dozen-ish 8x8 grayscale images in 3 classes; class_2 is a minority."""
    return write_folder(tmp_path / "data", [10, 10, 4])


@pytest.fixture
def make_folder(tmp_path):
    """Factory: make_folder(counts, **kwargs) -> path of a new image folder."""
    created = []

    def make(counts, **kwargs):
        path = tmp_path / f"data{len(created)}"
        created.append(path)
        return write_folder(path, counts, **kwargs)

    return make


@pytest.fixture
def count_fits(monkeypatch):
    """Counts trainings: every `keras.Model.fit` call, in this process, from now on."""
    import keras

    calls = []
    original = keras.Model.fit

    def fit(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", fit)
    return calls


@pytest.fixture(params=["run_66c34cf_cli", "run_66c34cf_library"])
def old_run(request, tmp_path):
    """A copy of a run directory written before the layout change (see tests/data/README.md)."""
    source = os.path.join(os.path.dirname(__file__), "data", request.param)
    return shutil.copytree(source, tmp_path / request.param)
