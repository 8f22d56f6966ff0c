"""What autoprep writes: printed text without control sequences, normal file permissions, no
temporary files left behind, and no user file replaced by `export` or `report` without `--force`."""

import json
import os
import stat
import subprocess
import sys
import textwrap

import pytest
from helpers import write_folder

from autoprep import _files, cli
from autoprep.choices.pipeline import Pipeline
from autoprep.data.decode import read_image_folder
from autoprep.run import rundir
from autoprep.run.result import TuneResult

ESCAPES = ["\x1b[2J", "\x1b]0;owned\x07", "\x1b]52;c;ZWNobyBvd25lZA==\x07", "\x9b1A", "\r",
           "\x1b[31m", "\x07"]


def hostile_results(run_dir, data_dir="/data/\x9b1A\rcats"):
    """A results.json whose strings (from someone else's run) carry terminal control codes."""
    trial = {"trial_id": "7\x1b[2J", "status": "FAILED", "score": None,
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


def test_show_refuses_an_unknown_trial_status_in_one_clean_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    hostile_results(run)
    saved = json.load(open(os.path.join(run, "results.json")))
    saved["trials"][0]["status"] = "FAILED\x1b]0;owned\x07"
    json.dump(saved, open(os.path.join(run, "results.json"), "w"))
    assert cli.main(["show", run]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "has the status 'FAILED" in err[0], err
    assert "results.json is not a results file" in err[0]
    assert not any(escape in captured.err + captured.out for escape in ESCAPES)


@pytest.fixture
def run(tmp_path):
    """A run directory with a best pipeline, saved as `tune` saves it."""
    folder = read_image_folder(write_folder(tmp_path / "data", [3, 3, 3]))
    pipeline = Pipeline(normalization="rescale_01", augmentation=[], imbalance="none")
    pipeline = pipeline.fit(folder.images, folder.labels, 3)
    result = TuneResult(
        best_config=pipeline.get_config(), best_score=0.5, objective="balanced_accuracy",
        trials=[], data={"class_names": folder.class_names, "image_size": [8, 8],
                         "channels": 1, "data_dir": folder.root}, epochs=1)
    run_dir = str(tmp_path / "run")
    os.makedirs(run_dir)
    result.save(run_dir)
    return run_dir


@pytest.fixture
def umask():
    """Sets the process umask for the test; returns the setter."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def modes(folder) -> dict:
    return {name: oct(stat.S_IMODE(os.stat(os.path.join(folder, name)).st_mode))
            for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("mask, mode", [(0o022, "0o644"), (0o027, "0o640")])
def test_written_files_respect_the_umask(run, tmp_path, umask, capsys, mask, mode):
    umask(mask)
    fresh = str(tmp_path / "fresh")
    os.makedirs(fresh)
    TuneResult.from_dict(json.load(open(os.path.join(run, "results.json")))).save(fresh)
    assert modes(fresh) == {name: mode for name in
                            ["best_pipeline.py", "results.json", "trials.csv"]}
    out = str(tmp_path / "pipeline.py")
    assert cli.main(["export", run, "-o", out]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: ")
    assert modes(tmp_path)["pipeline.py"] == mode


def test_a_replaced_file_keeps_its_permissions(run, tmp_path, umask):
    out = tmp_path / "pipeline.py"
    assert cli.main(["export", run, "-o", str(out)]) == 0
    os.chmod(out, 0o640)  # the user let the group read it
    assert cli.main(["export", run, "-o", str(out)]) == 0
    assert modes(tmp_path)["pipeline.py"] == "0o640"


KILLED_WRITER = textwrap.dedent('''
    import os, sys, time
    from autoprep._files import atomic_write

    def stall(*args):
        print("half written", flush=True)
        time.sleep(120)

    os.replace = stall  # killed after writing the temporary file, before the rename
    atomic_write(sys.argv[1], "half of a file")
''')


def killed_while_writing(path) -> int:
    """Kills (SIGKILL) a process in the middle of `atomic_write(path)`; returns its PID."""
    writer = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, path],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline() == "half written\n"
    writer.kill()
    writer.wait(timeout=30)
    return writer.pid


def temporaries(folder) -> list:
    return sorted(name for name in os.listdir(folder) if name.startswith(".tmp-"))


def test_temporary_files_of_a_killed_process_are_removed_on_the_next_run(run, umask):
    trial = os.path.join(run, "trial_0")
    os.makedirs(trial)
    dead = [killed_while_writing(os.path.join(run, "results.json")),
            killed_while_writing(os.path.join(trial, "trial.json"))]
    assert len(temporaries(run)) == 1 and len(temporaries(trial)) == 1
    assert f"-{dead[0]}-" in temporaries(run)[0]
    live = f".tmp-{_files._HOST}-{os.getpid()}-0000-results.json.part"
    open(os.path.join(run, live), "w").write("being written")  # a live process's: kept
    open(os.path.join(run, "notes.txt"), "w").write("mine")
    rundir.open_run_dir(run, {}, overwrite=False)  # what the next `tune` of this run does
    assert temporaries(run) == [live] and temporaries(trial) == []
    assert open(os.path.join(run, "notes.txt")).read() == "mine"


def test_a_temporary_file_beside_an_exported_module_is_removed_by_the_next_export(run,
                                                                                   tmp_path):
    out = str(tmp_path / "pipeline.py")
    killed_while_writing(out)
    assert len(temporaries(tmp_path)) == 1 and not os.path.exists(out)
    assert cli.main(["export", run, "-o", out]) == 0
    assert temporaries(tmp_path) == [] and os.path.exists(out)


def test_export_refuses_to_replace_a_file_it_did_not_write(run, tmp_path, capsys):
    out = tmp_path / "pipeline.py"
    out.write_text("# my own pipeline\n")
    assert cli.main(["export", run, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"autoprep export: error: {str(out)!r} exists and is not a module autoprep "
                   "wrote, so it is not replaced. Choose another file (-o FILE), or pass "
                   "--force (force=True) to replace it."]
    assert out.read_text() == "# my own pipeline\n"
    assert cli.main(["export", run, "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith('"""Preprocessing pipeline found by autoprep.')
    assert cli.main(["export", run, "-o", str(out)]) == 0  # its own module: replaced
    assert capsys.readouterr().out.count("wrote ") == 2


def test_report_refuses_to_replace_a_file_it_did_not_write(run, tmp_path, capsys):
    out = tmp_path / "index.html"
    out.write_text("<p>my own page</p>\n")
    assert cli.main(["report", run, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"autoprep report: error: {str(out)!r} exists and is not a report autoprep "
                   "wrote, so it is not replaced. Choose another file (-o FILE), or pass "
                   "--force (force=True) to replace it."]
    assert out.read_text() == "<p>my own page</p>\n"
    assert cli.main(["report", run, "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>\n<!-- autoprep report -->")
    assert cli.main(["report", run, "-o", str(out)]) == 0  # its own report: replaced
    assert cli.main(["report", run, "-o", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err


def test_export_prints_no_control_sequences_from_results(run, tmp_path, capsys):
    saved = json.load(open(os.path.join(run, "results.json")))
    saved["state"] = "finished\x1b]0;owned\x07\x1b[2J"
    json.dump(saved, open(os.path.join(run, "results.json"), "w"))
    assert cli.main(["export", run, "-o", str(tmp_path / "pipeline.py")]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("search finished)") and "\x1b" not in out and "\x07" not in out


def test_export_refuses_a_folder_and_never_opens_a_fifo(run, tmp_path, capsys):
    os.mkfifo(tmp_path / "fifo.py")
    assert cli.main(["export", run, "-o", str(tmp_path / "fifo.py")]) == 2
    assert "is not a module autoprep wrote" in capsys.readouterr().err
    assert cli.main(["export", run, "-o", str(tmp_path)]) == 2
    assert "it is a folder" in capsys.readouterr().err
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo.py").st_mode)
