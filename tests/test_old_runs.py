"""Run directories written before the layout change (commit 66c34cf) still open with the CLI,
read-only: they have no run marker, so `tune` neither resumes nor clears them."""

import importlib.util
import json
import sys

import numpy as np
import pytest
from helpers import FAST_TUNE, MODEL_FILE, write_folder

from autoprep.cli import main


def test_show_reads_an_old_run(old_run, capsys):
    assert main(["show", str(old_run)]) == 0
    shown = capsys.readouterr().out
    results = json.loads((old_run / "results.json").read_text())
    assert "state: finished" in shown
    # Keras Tuner's 0-based id, shown as the trial's 1-based number.
    assert f"(trial {int(results['best_trial_id']) + 1})" in shown
    completed = [line.split() for line in shown.splitlines() if "COMPLETED" in line]
    assert len(completed) == len(results["trials"])
    assert sorted(int(row[1]) for row in completed) == [
        int(trial["trial_id"]) + 1 for trial in results["trials"]]


def test_export_writes_a_working_module_from_an_old_run(old_run, tmp_path, capsys, monkeypatch):
    path = tmp_path / "pipeline.py"
    assert main(["export", str(old_run), "-o", str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    spec = importlib.util.spec_from_file_location("old_run_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # AutoGraph reads its source
    spec.loader.exec_module(module)
    results = json.loads((old_run / "results.json").read_text())
    assert module.CONFIG == results["best_config"]
    data_dir = write_folder(tmp_path / "data", [3, 3, 2], mode="RGB")
    train_ds, val_ds = module.make_datasets(data_dir, validation_split=0.25, batch_size=8)
    images = next(iter(train_ds))[0]  # (images, labels[, sample weights])
    assert images.shape[1:] == (8, 8, 3) and np.isfinite(images.numpy()).all()
    assert sum(int(x.shape[0]) for x, _ in val_ds) == 3


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["resume", "overwrite"])
def test_tune_neither_resumes_nor_clears_an_old_run(old_run, tmp_path, capsys, overwrite):
    data = write_folder(tmp_path / "data", [6, 6, 4])
    (tmp_path / "model.py").write_text(MODEL_FILE)
    before = {path.name: path.read_bytes() for path in old_run.iterdir()}
    code = main(["tune", data, "--model", f"{tmp_path / 'model.py'}:build", "--out",
                 str(old_run), *FAST_TUNE, *overwrite])
    error = capsys.readouterr().err
    assert code == 2, error
    assert "no autoprep.json" in error and "`autoprep show` and `autoprep export`" in error
    assert "search again in a new folder, or move its files away first" in error
    assert {path.name: path.read_bytes() for path in old_run.iterdir()} == before
