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


def test_the_demo_deletes_a_part_folder_only_when_it_made_it(tmp_path, monkeypatch):
    from autoprep.cli import tune as cli_tune
    from autoprep.data import demo
    from autoprep.errors import DataError

    data_dir = tmp_path / "demo_data"
    mine = tmp_path / "demo_data.part"  # the user's own folder, with that name by chance
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(DataError, match="exists and autoprep did not make it"):
        cli_tune._write_demo_data(str(data_dir))
    assert (mine / "thesis.tex").read_text() == "mine" and not data_dir.exists()
    mine.rename(tmp_path / "elsewhere")

    def crash(path, **kwargs):  # killed after the first image
        os.makedirs(os.path.join(path, "0"))
        open(os.path.join(path, "0", "digit_0000.png"), "wb").close()
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "write_digits_folder", crash)
    with pytest.raises(KeyboardInterrupt):
        cli_tune._write_demo_data(str(data_dir))
    assert not data_dir.exists() and (mine / demo.PARTIAL_MARK).exists()
    monkeypatch.undo()
    cli_tune._write_demo_data(str(data_dir))  # the half folder autoprep made is replaced
    assert sorted(os.listdir(data_dir)) == [str(d) for d in range(10)]
    assert not mine.exists()


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
