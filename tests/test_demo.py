"""The embedded demo data: scikit-learn's digits as a long-tailed image folder."""

import os

import numpy as np
import pytest

from autoprep.data.decode import read_image_folder
from autoprep.data.demo import demo_model, write_digits_folder


def test_digits_are_written_with_a_long_tail(tmp_path):
    path = write_digits_folder(tmp_path / "digits", imbalance=10.0, seed=0)
    assert sorted(os.listdir(path)) == [str(d) for d in range(10)]
    folder = read_image_folder(path)
    counts = folder.class_counts
    assert counts[0] >= 170 and 15 <= counts[9] <= 20
    assert all(np.diff(counts) <= 0)
    assert folder.images.shape[1:] == (8, 8, 1) and folder.images.max() == 255


def test_demo_model_matches_the_data():
    model = demo_model((8, 8, 1), 10)
    assert model.output_shape == (None, 10)


@pytest.mark.slow
def test_autoprep_demo_runs_a_tiny_search(tmp_path, monkeypatch, capsys):
    from autoprep.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "runs" / "demo"
    argv = ["demo", "--out", str(out), "--max-trials", "1", "--epochs", "1",
            "--final-repeats", "1"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"writing the digits demo images to {out}_data" in printed
    assert "trial 1/1  " in printed and "test balanced_accuracy: " in printed
    assert sorted(os.listdir(f"{out}_data")) == [str(d) for d in range(10)]
    assert (out / "best_pipeline.py").exists() and (out / "results.json").exists()
