"""What autoprep writes: printed text without control sequences, normal file permissions, no
temporary files left behind, and no user file replaced by `export` without `--force`."""

import json
import os

from autoprep import cli
from autoprep.run.result import TuneResult

ESCAPES = ["\x1b[2J", "\x1b]0;owned\x07", "\x1b]52;c;ZWNobyBvd25lZA==\x07", "\x9b1A", "\r",
           "\x1b[31m", "\x07"]


def hostile_results(run_dir, data_dir="/data/\x9b1A\rcats"):
    """A results.json whose strings (from someone else's run) carry terminal control codes."""
    trial = {"trial_id": "7\x1b[2J", "status": "FAILED\x1b]0;owned\x07", "score": None,
             "config": None, "model_hyperparameters": {"lr\x1b[31m": "0.1\x07"},
             "message": "Traceback\nValueError: boom\x1b]52;c;ZWNobyBvd25lZA==\x07 end"}
    result = TuneResult(
        best_config=None, best_score=None, objective="balanced_accuracy", trials=[trial],
        data={"data_dir": data_dir, "class_names": ["a", "b"],
              "class_counts": [3, 4], "image_size": [8, 8], "channels": 1, "skipped": []},
        epochs=1, state="finished\x1b[1A\r")
    os.makedirs(run_dir)
    with open(os.path.join(run_dir, "results.json"), "w") as handle:
        json.dump(result.to_dict(), handle)


def test_show_strips_control_sequences_from_what_it_read(tmp_path, capsys):
    run = str(tmp_path / "run")
    hostile_results(run)
    before = open(os.path.join(run, "results.json")).read()
    assert cli.main(["show", run]) == 0
    out = capsys.readouterr().out
    assert not any(escape in out for escape in ESCAPES), repr(out)
    assert "data: /data/cats (2 classes, 7 images, 8x8)" in out
    assert "state: finished" in out
    row = next(line for line in out.splitlines() if line.startswith("-"))
    assert row.split()[:2] == ["-", "7"] and "FAILED" in row
    assert "lr=0.1" in row and "[ValueError: boom end]" in row
    assert open(os.path.join(run, "results.json")).read() == before


def test_show_prints_a_data_folder_name_that_is_not_utf8(tmp_path, capsys):
    run = str(tmp_path / "run")
    hostile_results(run, data_dir=os.fsdecode(b"/data/caf\xe9"))
    assert cli.main(["show", run]) == 0
    assert "data: /data/caf\\xe9 (2 classes" in capsys.readouterr().out
