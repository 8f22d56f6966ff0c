"""Shared fixtures: tiny synthetic image folders and a training counter (helpers: helpers.py)."""

import gc
import os
import shutil

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402
from helpers import write_folder  # noqa: E402


def freeze_survivors():
    """Collects garbage, then freezes the objects that survive (`gc.freeze`).

    Keras Tuner collects garbage twice per trial (`clear_session` and `gc.collect` in
    `Tuner._try_build`), and a full collection walks every object the process holds: some
    400,000 once TensorFlow is imported, a second or more on a busy machine. Frozen, the
    imported modules and what earlier tests left alive are skipped: a collection walks only
    what the running test made.
    """
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def _frozen_survivors():
    freeze_survivors()
    yield


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


@pytest.fixture
def fake_training(monkeypatch):
    """`autoprep.tune` without training: pass `fake_training.model_fn` (see fake_training.py)."""
    from fake_training import FakeTraining

    freeze_survivors()  # TensorFlow may have been imported just now
    return FakeTraining().install(monkeypatch)


@pytest.fixture(params=["run_66c34cf_cli", "run_66c34cf_library"])
def old_run(request, tmp_path):
    """A copy of a run directory written before the layout change (see tests/data/README.md)."""
    source = os.path.join(os.path.dirname(__file__), "data", request.param)
    return shutil.copytree(source, tmp_path / request.param)
