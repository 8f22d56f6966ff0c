"""Run directories written before the layout change (commit 66c34cf) still open with the CLI."""

import importlib.util
import json
import sys

import numpy as np
from helpers import write_folder

from autoprep.cli import main


def test_show_reads_an_old_run(old_run, capsys):
    assert main(["show", str(old_run)]) == 0
    shown = capsys.readouterr().out
    results = json.loads((old_run / "results.json").read_text())
    assert "state: finished" in shown
    assert f"(trial {results['best_trial_id']})" in shown
    assert len([line for line in shown.splitlines() if "COMPLETED" in line]) == len(
        results["trials"])


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
