"""What a resumed search keeps from the run it resumes: its seed (hence its splits) and its
settings, as stored in the run marker; and what refuses a resume.

No test here trains: `tune` is stopped where it would build the trials' hypermodel, after
the images are split and the run directory is opened.
"""

import json
import os

import numpy as np
import pytest
from helpers import tiny_model

import autoprep
from autoprep.errors import ArgumentError, RunDirectoryError
from autoprep.search import loop


class Stopped(Exception):
    """Raised where `tune` would build the hypermodel: the run directory is open by then."""


@pytest.fixture
def splits_made(monkeypatch):
    """The `Splits` of every `tune` call from now on; each call stops before any training."""
    made = []
    make_splits = loop.make_splits

    def recording(*args, **kwargs):
        made.append(make_splits(*args, **kwargs))
        return made[-1]

    def stop(*args, **kwargs):
        raise Stopped()

    monkeypatch.setattr(loop, "make_splits", recording)
    monkeypatch.setattr(loop, "PipelineHyperModel", stop)
    return made


@pytest.fixture
def folder(make_folder):
    return make_folder([12, 12, 6])


def start(folder, directory, **kwargs):
    """Runs `tune` up to the point where it would train."""
    with pytest.raises(Stopped):
        autoprep.tune(tiny_model, folder, directory=directory, verbose=0, **kwargs)


def marker(directory) -> dict:
    (run_dir,) = [os.path.join(directory, name) for name in os.listdir(directory)]
    with open(os.path.join(run_dir, "autoprep.json"), encoding="utf-8") as handle:
        return json.load(handle)


def same_splits(a, b) -> bool:
    return (np.array_equal(a.test, b.test) and len(a.folds) == len(b.folds)
            and all(np.array_equal(x, y) for fa, fb in zip(a.folds, b.folds)
                    for x, y in zip(fa, fb)))


def test_an_unseeded_run_keeps_its_splits_when_resumed_and_can_be_repeated(folder, tmp_path,
                                                                            splits_made):
    start(folder, tmp_path / "runs")
    start(folder, tmp_path / "runs")  # the resume: the same validation and test images
    assert same_splits(splits_made[0], splits_made[1])
    seed = marker(tmp_path / "runs")["settings"]["seed"]
    assert isinstance(seed, int)  # drawn, and kept in the run marker
    start(folder, tmp_path / "again", seed=seed)  # the shown seed repeats the run elsewhere
    assert same_splits(splits_made[0], splits_made[2])


def test_overwrite_draws_a_new_seed_and_a_given_one_must_match(folder, tmp_path, splits_made):
    start(folder, tmp_path / "runs", seed=5)
    with pytest.raises(RunDirectoryError, match=r"holds a different search \(seed differ\)"):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", seed=6, verbose=0)
    start(folder, tmp_path / "runs", overwrite=True)
    assert isinstance(marker(tmp_path / "runs")["settings"]["seed"], int)


def test_a_run_started_without_a_seed_by_an_older_version_is_not_resumed(folder, tmp_path,
                                                                         splits_made):
    start(folder, tmp_path / "runs", seed=0)
    state = marker(tmp_path / "runs")
    state["settings"]["seed"] = None  # as older versions stored an unseeded run
    path = tmp_path / "runs" / os.listdir(tmp_path / "runs")[0] / "autoprep.json"
    path.write_text(json.dumps(state))
    with pytest.raises(RunDirectoryError, match="started without a seed by an older autoprep"):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", verbose=0)
    assert not splits_made[1:]  # refused before the images were read
    start(folder, tmp_path / "runs", overwrite=True)


@pytest.mark.parametrize("role", ["chief", "tuner0"])
def test_a_distributed_search_needs_a_seed(folder, tmp_path, monkeypatch, splits_made, role):
    # The chief and the workers read no common run directory: without a seed each would
    # draw its own splits.
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", role)
    with pytest.raises(ArgumentError, match="A distributed search needs a seed"):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", verbose=0)
    assert not splits_made and not os.path.exists(tmp_path / "runs")


def test_device_input_is_a_setting_of_the_run(folder, tmp_path, splits_made):
    start(folder, tmp_path / "runs", seed=0)
    with pytest.raises(RunDirectoryError, match=r"\(device_input differ\)"):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", seed=0, verbose=0,
                      device_input=True)
    assert marker(tmp_path / "runs")["settings"]["device_input"] is False


def test_a_default_run_of_an_older_version_resumes(folder, tmp_path, splits_made):
    start(folder, tmp_path / "runs", seed=0)
    state = marker(tmp_path / "runs")
    # What an older version stored: no device_input, and a search space without the
    # dimensions added since (here trivial_augment, at its default).
    state["settings"].pop("device_input", None)
    del state["settings"]["space"]["trivial_augment"]
    path = tmp_path / "runs" / os.listdir(tmp_path / "runs")[0] / "autoprep.json"
    path.write_text(json.dumps(state))
    start(folder, tmp_path / "runs", seed=0)  # resumed, not refused
    with pytest.raises(RunDirectoryError, match=r"\(space, device_input differ\)"):
        autoprep.tune(tiny_model, folder, directory=tmp_path / "runs", seed=0, verbose=0,
                      device_input=True, space=autoprep.SearchSpace(trivial_augment=0.5))
