"""Run directories: autoprep writes only into its own run folders and deletes only its own files.

Each test runs the `autoprep` command in-process on a folder that must not be touched and
checks the exit code, the one-line error, and that every file there is unchanged afterwards.
`PIL.Image.open` is made to fail, so a refusal that came after reading the images would show.
"""

import json
import os

import PIL.Image
import pytest
from helpers import FAST_TUNE, MODEL_FILE, write_folder

from autoprep import cli
from autoprep.errors import RunDirectoryError


def snapshot(root) -> dict:
    """Every file and folder below `root` with its bytes (None for folders)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            with_bytes = os.path.isfile(path) and not os.path.islink(path)
            found[os.path.relpath(path, root)] = open(path, "rb").read() if with_bytes else None
    return found


def user_folder(path) -> str:
    """A folder of the user's: a few files and a sub-folder."""
    os.makedirs(os.path.join(path, "photos"))
    (open(os.path.join(path, "notes.txt"), "w")).write("my notes")
    (open(os.path.join(path, "photos", "cat.jpg"), "wb")).write(b"not really a jpeg")
    return str(path)


@pytest.fixture
def world(tmp_path, tmp_path_factory, monkeypatch):
    """A home folder and a current folder with the user's files, data and a model file."""
    home = user_folder(tmp_path_factory.mktemp("home"))
    monkeypatch.setenv("HOME", home)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # matplotlib's font cache
    monkeypatch.setenv("MPLCONFIGDIR", str(tmp_path / "cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "cache"))  # keras.json, on first import
    cwd = user_folder(tmp_path_factory.mktemp("cwd"))
    monkeypatch.chdir(cwd)
    data = write_folder(tmp_path / "data", [6, 6, 4])
    (tmp_path / "model.py").write_text(MODEL_FILE)
    return {"home": home, "cwd": cwd, "data": data, "model": f"{tmp_path / 'model.py'}:build",
            "tmp": str(tmp_path)}


@pytest.fixture
def no_decoding(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("an image was read before the run directory was checked")

    monkeypatch.setattr(PIL.Image, "open", refuse)


def tune(world, out, *extra) -> list:
    return ["tune", world["data"], "--model", world["model"], "--out", out, *FAST_TUNE, *extra]


def refused(capsys, argv, pattern) -> str:
    """Runs the command; checks exit code 2 and a one-line error matching `pattern`."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"autoprep {argv[0]}: error: "), lines
    assert pattern in lines[0], lines[0]
    return lines[0]


def test_overwrite_of_the_home_folder_is_refused_before_reading_images(world, capsys,
                                                                         no_decoding):
    before = snapshot(world["home"])
    refused(capsys, tune(world, world["home"], "--overwrite"), "it is your home folder")
    assert snapshot(world["home"]) == before


def test_demo_into_the_current_folder_with_overwrite_is_refused(world, capsys, no_decoding):
    before = snapshot(world["cwd"])
    demo = ["demo", "--out", ".", "--overwrite", "--max-trials", "1"]
    refused(capsys, demo, "it is the current folder")
    assert snapshot(world["cwd"]) == before  # nor were the demo images written


@pytest.mark.parametrize("out", ["..", "."])
def test_the_current_folder_or_its_parent_is_refused(world, capsys, no_decoding, out):
    inner = os.path.join(world["cwd"], "photos")
    os.chdir(inner)
    before = snapshot(world["cwd"])
    refused(capsys, tune(world, out), "the current folder")
    assert snapshot(world["cwd"]) == before


def test_a_run_directory_containing_the_data_is_refused(world, capsys, no_decoding):
    before = snapshot(world["tmp"])
    out = os.path.join(world["data"], "..")
    refused(capsys, tune(world, out, "--overwrite"), "it contains the data directory")
    assert snapshot(world["tmp"]) == before


def test_a_symlink_into_the_data_is_compared_by_its_real_path(world, capsys, no_decoding):
    link = os.path.join(world["tmp"], "link")
    os.symlink(world["data"], link)
    before = snapshot(world["data"])
    refused(capsys, tune(world, os.path.join(link, "run")), "inside the data directory")
    assert snapshot(world["data"]) == before and not os.path.exists(
        os.path.join(world["data"], "run"))


def test_a_symlink_to_the_home_folder_is_refused(world, capsys, no_decoding):
    link = os.path.join(world["tmp"], "runs")
    os.symlink(world["home"], link)
    before = snapshot(world["home"])
    refused(capsys, tune(world, link, "--overwrite"), "it is your home folder")
    assert snapshot(world["home"]) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["resume", "overwrite"])
def test_a_folder_with_other_files_is_refused_as_out(world, capsys, no_decoding, overwrite):
    folder = user_folder(os.path.join(world["tmp"], "mine"))
    before = snapshot(folder)
    line = refused(capsys, tune(world, folder, *overwrite), "autoprep did not create")
    assert "notes.txt, photos/" in line and "Choose a new or empty folder" in line
    assert ("will not clear" if overwrite else "will not write into") in line
    assert snapshot(folder) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]], ids=["resume", "overwrite"])
def test_a_folder_whose_files_only_share_autoprep_s_names_is_refused(world, capsys, no_decoding,
                                                                     overwrite):
    # The user's own notes/ with a results.json of theirs: file names prove nothing, only the
    # run marker makes a run directory.
    folder = os.path.join(world["tmp"], "notes")
    os.makedirs(folder)
    open(os.path.join(folder, "results.json"), "w").write('{"mine": true}')
    open(os.path.join(folder, "autoprep.log"), "w").write("my log")
    before = snapshot(folder)
    line = refused(capsys, tune(world, folder, *overwrite), "autoprep did not create")
    assert "(no autoprep.json) and it holds autoprep.log, results.json" in line
    assert snapshot(folder) == before


def test_a_new_run_directory_gets_its_marker_before_anything_else(world, capsys, no_decoding):
    # A run that stops while reading its images (here: no image can be read) leaves a run
    # directory that the same command resumes, not a folder of autoprep's files without one.
    from autoprep.run import rundir

    out = os.path.join(world["tmp"], "runs", "new")
    assert cli.main(tune(world, out)) == 2
    assert "holds no readable images" in capsys.readouterr().err
    assert rundir.is_run_dir(out) and rundir.stored_settings(out) is None
    rundir.check_run_dir(out, world["data"])  # not refused


def test_a_file_is_refused_as_out(world, capsys, no_decoding):
    path = os.path.join(world["cwd"], "notes.txt")
    refused(capsys, tune(world, path, "--overwrite"), "is a file, not a folder")
    assert open(path).read() == "my notes"


def test_the_root_folder_is_refused():
    # Not run through the command: before the fix that would write into (or clear) /.
    from autoprep.run import rundir

    with pytest.raises(RunDirectoryError, match="it is the root folder /"):
        rundir.check_run_dir("/", "/tmp/no-data", overwrite=True)


def test_overwrite_deletes_only_autoprep_files_of_a_run_directory(world, capsys):
    run = os.path.join(world["tmp"], "runs", "night")
    os.makedirs(os.path.join(run, "trial_0"))
    for name, text in [("autoprep.json", json.dumps({"settings": {}, "interrupted": {}})),
                       ("results.json", "old"), ("oracle.json", "old"),
                       ("trial_0/trial.json", "old"), (".tmp-x.part", "half")]:
        open(os.path.join(run, name), "w").write(text)
    user_folder(run)  # the user's notes.txt and photos/ inside the run directory
    assert cli.main(tune(world, run, "--overwrite")) == 0
    after = snapshot(run)
    assert after["notes.txt"] == b"my notes" and after["photos/cat.jpg"] == b"not really a jpeg"
    assert after["results.json"] != b"old" and ".tmp-x.part" not in after
    assert "search finished" in capsys.readouterr().out
