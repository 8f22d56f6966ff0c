"""The `autoprep` command in-process: help, argument parsing, errors, resume, budget, failures."""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
from helpers import write_folder

from autoprep import cli
from autoprep.cli import progress as _cli_progress
from autoprep.cli.tune import distributed_environment, duration, image_size, oracle_address

# The user's model file: `build` is fine, the others fail in the ways the CLI must explain.
MODEL_SOURCE = '''
import keras

FAILURES = {"left": 0}


class Boom(keras.layers.Layer):
    """Fails when training starts, while FAILURES["left"] > 0 (-1: always)."""

    def call(self, x, training=None):
        if training and FAILURES["left"] != 0:
            FAILURES["left"] -= 1
            raise ValueError("boom: this trial cannot train")
        return x


def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(8, activation="relu"),
                             keras.layers.Dense(num_classes, activation="softmax")])


def flaky(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), Boom(), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])


def broken(input_shape, num_classes):
    FAILURES["left"] = -1
    return flaky(input_shape, num_classes)


def raises(input_shape, num_classes):
    raise RuntimeError("cannot build without a GPU")


def five_units(input_shape, num_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(5)])

FAILURES["left"] = 1  # `flaky`: the first training fails
'''

FAST = ["--max-trials", "1", "--epochs", "1", "--tuner", "random", "--seed", "0",
        "--reevaluate", "0"]


@pytest.fixture
def setup(tmp_path):
    """(data_dir, model_file, run_dir) of a tiny search: 8x8 images, 3 classes, one a minority."""
    data = write_folder(tmp_path / "data", [12, 12, 6])
    model_file = tmp_path / "model.py"
    model_file.write_text(MODEL_SOURCE)
    return data, str(model_file), str(tmp_path / "runs" / "run")


def tune_args(setup, function="build", *extra):
    data, model_file, run_dir = setup
    return ["tune", data, "--model", f"{model_file}:{function}", "--out", run_dir, *extra]


def results(run_dir) -> dict:
    with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
        return json.load(handle)


def log_lines(run_dir) -> list:
    with open(os.path.join(run_dir, _cli_progress.LOG_FILE), encoding="utf-8") as handle:
        return handle.read().splitlines()


# -- help and argument parsing --------------------------------------------------------------
def _subparsers(parser):
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return action


@pytest.mark.parametrize("command", [None, "tune", "demo", "show", "export", "report"])
def test_help_describes_every_option(command, capsys):
    parser = cli.build_parser()
    if command is not None:
        parser = _subparsers(parser).choices[command]
    for action in parser._actions:
        assert action.help and action.help != argparse.SUPPRESS, action.dest
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"] if command else ["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for action in parser._actions:
        for name in action.option_strings or [action.metavar]:
            assert name in text
    if command is None:
        for name, choice in _subparsers(parser).choices.items():
            assert re.search(rf"{name}\s+\S", text), name  # a help line per command
            assert choice.description or name not in ("tune", "demo", "show", "export")


def test_tune_help_names_every_option_of_the_issue(capsys):
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    text = capsys.readouterr().out
    for option in ["--model", "--out", "--max-trials", "--epochs", "--time-budget", "--tuner",
                   "--objective", "--cv", "--image-size", "--batch-size", "--seed",
                   "--final-repeats",
                   "--overwrite", "-v", "--debug", "bayesian", "hyperband", "macro_f1"]:
        assert option in text


def test_demo_help_gives_the_demo_seed(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "initialization (default: 0)" in help_text and "drawn and shown" not in help_text
    assert cli.build_parser().parse_args(["demo"]).seed == 0


@pytest.mark.parametrize("text, seconds", [
    ("90s", 90), ("45m", 2700), ("8h", 28800), ("1h30m", 5400), ("3600", 3600), ("1.5h", 5400),
    ("2m30s", 150),
])
def test_time_budget_formats(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["", "8 hours", "h", "0", "-5", "1d"])
def test_bad_time_budget_is_refused_by_name(text, capsys, setup):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", "--time-budget", text))
    assert exit_info.value.code == 2
    assert re.search(r"--time-budget: .*(90s, 45m|positive)", capsys.readouterr().err)


def test_image_size_formats():
    assert image_size("64x48") == (64, 48) and image_size("32") == (32, 32)
    with pytest.raises(argparse.ArgumentTypeError, match="expected HxW"):
        image_size("64 by 48")


@pytest.mark.parametrize("text, address", [
    ("8000", ("127.0.0.1", 8000)), (":8000", ("127.0.0.1", 8000)),
    ("10.0.0.5:9000", ("10.0.0.5", 9000)), ("chief.example.org:1", ("chief.example.org", 1)),
    ("[::1]:8000", ("[::1]", 8000)),
])
def test_chief_addresses_default_to_loopback(text, address):
    assert oracle_address(text) == address


@pytest.mark.parametrize("text, message", [
    ("chief.example.org", "expected HOST:PORT or PORT"), ("host:port", "expected HOST:PORT"),
    ("a:b:8000", "expected HOST:PORT"), ("0", "between 1 and 65535"),
    ("127.0.0.1:65536", "between 1 and 65535"),
])
def test_bad_chief_addresses_are_refused_in_one_line(text, message, capsys, setup):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", "--chief", text))
    assert exit_info.value.code == 2
    assert re.search(rf"autoprep tune: error: argument --chief: .*{message}.*{re.escape(text)}",
                     capsys.readouterr().err)


@pytest.mark.parametrize("options, message", [
    (["--worker", "1"], "--worker 1 needs the chief's address: add --chief HOST:PORT"),
    (["--worker-timeout", "30s"],
     "--worker-timeout is an option of a distributed search's chief: add --chief HOST:PORT"),
    (["--validation-split", "0.2", "--cv", "3"], "--validation-split and --cv cannot go together"),
    (["--validation-split", "0.5", "--test-split", "0.5"],
     "--validation-split 0.5 and --test-split 0.5 leave no training images"),
])
def test_options_that_cannot_go_together(options, message, capsys, setup):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", *options))
    assert exit_info.value.code == 2
    assert f"autoprep tune: error: {message}" in capsys.readouterr().err


@pytest.mark.parametrize("options, environment", [
    ([], {}),
    (["--chief", "8000"], {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
                           "KERASTUNER_ORACLE_PORT": "8000"}),
    (["--chief", "8000", "--worker-timeout", "2m"],
     {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
      "KERASTUNER_ORACLE_PORT": "8000", "AUTOPREP_WORKER_TIMEOUT": "120.0"}),
    (["--worker", "3", "--chief", "10.0.0.5:9000"],
     {"KERASTUNER_TUNER_ID": "tuner3", "KERASTUNER_ORACLE_IP": "10.0.0.5",
      "KERASTUNER_ORACLE_PORT": "9000"}),
    (["--worker", "3", "--chief", "10.0.0.5:9000", "--worker-timeout", "2m"],  # ignored
     {"KERASTUNER_TUNER_ID": "tuner3", "KERASTUNER_ORACLE_IP": "10.0.0.5",
      "KERASTUNER_ORACLE_PORT": "9000"}),
])
def test_chief_and_worker_set_keras_tuners_variables(options, environment, setup):
    args = cli.build_parser().parse_args(tune_args(setup, "build", *options))
    assert distributed_environment(args) == environment


def test_a_chief_port_in_use_is_refused_before_any_image_is_read(setup, capsys):
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        code = cli.main(tune_args(setup, "build", "--chief", str(port)))
    assert code == 2
    err = capsys.readouterr().err
    assert f"autoprep tune: error: --chief 127.0.0.1:{port}: cannot listen there" in err
    assert "KERASTUNER_TUNER_ID" not in os.environ
    assert not os.path.exists(setup[2])


def test_show_names_the_worker_of_each_trial_of_a_distributed_search(tmp_path, capsys):
    from autoprep.run.result import TuneResult

    config = {"normalization": {"name": "rescale_01"}, "augmentation": [],
              "imbalance": {"name": "none"}}
    trials = [{"trial_id": str(i), "status": "COMPLETED", "score": 0.5 + i / 10,
               "config": config, "worker": worker}
              for i, worker in enumerate(["tuner1", "tuner0", "tuner1"])]
    data = {"data_dir": "data", "class_names": ["a", "b"], "class_counts": [4, 4],
            "image_size": [8, 8], "channels": 1}
    TuneResult(best_config=None, best_score=None, objective="balanced_accuracy", trials=trials,
               data=data, epochs=1, seed=482913).save(tmp_path)
    assert json.loads((tmp_path / "results.json").read_text())["seed"] == 482913
    assert cli.main(["show", str(tmp_path)]) == 0
    shown = capsys.readouterr().out
    assert "\nseed: 482913 (--seed 482913, or tune(seed=482913), repeats this search)\n" in shown
    assert "workers: tuner0 ran 1 trial, tuner1 ran 2 trials" in shown
    assert re.search(r"rank +trial +status +score +worker +pipeline", shown)
    # Trial id "2" is trial 3, as in the log, the report and trials.csv.
    assert re.search(r"1 +3 +COMPLETED +0\.7000 +tuner1 +rescale_01", shown)


def test_overwrite_is_dropped_from_the_resume_command():
    from autoprep.cli.tune import resume_command

    args = argparse.Namespace(argv=["tune", "my data", "--out", "r", "--overwrite"])
    assert resume_command(args) == "autoprep tune 'my data' --out r"


# -- errors: one line, no traceback, non-zero exit --------------------------------------------
@pytest.mark.parametrize("change, message", [
    (lambda a: a.__setitem__(1, a[1] + "_missing"), r"`data_dir` must be a directory.*does not"),
    (lambda a: a.__setitem__(3, a[3].split(":")[0]), r"`--model` must look like `path/to/file"),
    (lambda a: a.__setitem__(3, "missing.py:build"), r"file 'missing.py' does not exist"),
    (lambda a: a.__setitem__(3, a[3].replace(":build", ":nothing")), r"has no function 'nothing'"),
    (lambda a: a.__setitem__(3, "autoprep_no_such_package:build"), r"cannot import"),
    (lambda a: a.__setitem__(3, a[3].replace(":build", ":raises")),
     r"`model_fn` raises\(8, 8, 1\) failed: RuntimeError: cannot build without a GPU"),
    (lambda a: a.__setitem__(3, a[3].replace(":build", ":five_units")),
     r"has 5 output units but the data has 3 classes"),
])
def test_errors_are_one_line_without_traceback(setup, change, message, capsys):
    argv = tune_args(setup)
    change(argv)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert re.search(r"^autoprep tune: error: .*" + message, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(os.path.join(setup[2], "results.json"))


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(setup, where, capsys):
    argv = tune_args(setup, "five_units")
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ModelError" in err
    assert err.strip().splitlines()[-1].startswith("autoprep tune: error: The model from")


@pytest.mark.parametrize("command", ["show", "export"])
def test_show_and_export_need_results(command, tmp_path, capsys):
    assert cli.main([command, str(tmp_path)]) == 2
    assert re.search(rf"autoprep {command}: error: No autoprep results in",
                     capsys.readouterr().err)


# -- real (tiny) searches -----------------------------------------------------------------------
@pytest.mark.slow
def test_resume_overwrite_and_refusal_of_a_different_search(setup, tmp_path, capsys, count_fits):
    data, model_file, run_dir = setup
    assert cli.main(tune_args(setup, "build", *FAST)) == 0
    # A trial (3 folds: a validation split of 30 images would be small), then the best
    # pipeline and the baseline 3 times each.
    trainings = 3 + 2 * 3
    assert len(count_fits) == trainings
    out = capsys.readouterr().out
    assert out.startswith("data: 30 images at 8x8x1 (their common size), 1.9 KiB decoded, in "
                          "memory (limit ")  # the first line, before decoding
    assert re.search(r"trial 1/1  .* balanced_accuracy=\d\.\d{4}  best=\d\.\d{4}  "
                     r"elapsed \d:\d\d:\d\d  ETA 0:00:00", out)
    assert f"best pipeline module: {os.path.join(run_dir, 'best_pipeline.py')}" in out
    first = results(run_dir)["trials"]

    more = [*FAST[:1], "2", *FAST[2:]]
    assert cli.main(tune_args(setup, "build", *more)) == 0  # resumes: one new trial
    assert len(count_fits) == 2 * trainings  # the first trial is not trained again
    resumed = results(run_dir)
    assert resumed["state"] == "finished" and len(resumed["trials"]) == 2
    assert resumed["trials"][0] == first[0]
    assert "trial 2/2" in capsys.readouterr().out
    log = log_lines(run_dir)
    assert sum("autoprep tune in " in line for line in log) == 2  # appended, not replaced
    assert [line.split("  ")[1].split()[1] for line in log if "  trial " in line] == ["1/1", "2/2"]

    other_epochs = tune_args(setup, "build", *more[:3], "2", *more[4:])
    assert cli.main(other_epochs) == 2
    assert re.search(r"error: .*holds a different search \(epochs differ\).*--overwrite",
                     capsys.readouterr().err)
    other_data = write_folder(tmp_path / "other", [12, 12, 6], seed=1)
    assert cli.main(["tune", other_data, *tune_args(setup, "build", *more)[2:]]) == 2
    assert re.search(r"holds a different search \(data differ\)", capsys.readouterr().err)
    assert len(results(run_dir)["trials"]) == 2  # the refused runs changed nothing

    overwrite = tune_args(setup, "build", "--max-trials", "1", "--epochs", "2", "--tuner",
                          "random", "--seed", "0", "--overwrite")
    assert cli.main(overwrite) == 0
    fresh = results(run_dir)
    assert len(fresh["trials"]) == 1 and fresh["epochs"] == 2
    assert sum("autoprep tune in " in line for line in log_lines(run_dir)) == 1


@pytest.mark.slow
def test_time_budget_stops_early_with_results(setup, capsys):
    argv = tune_args(setup, "build", "--max-trials", "5", "--epochs", "1", "--tuner", "random",
                     "--time-budget", "1s")
    assert cli.main(argv) == 0
    state = results(setup[2])
    assert state["state"] == "stopped" and len(state["trials"]) == 1
    assert state["best_config"] is not None and state["test_score"] is not None
    assert os.path.exists(os.path.join(setup[2], "best_pipeline.py"))
    assert "search stopped by the time budget: 1 trials" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_saves_state_and_prints_the_resume_command(setup, monkeypatch, capsys):
    original = _cli_progress.Progress.trial_ended

    def interrupted(self, result, record):
        original(self, result, record)
        raise KeyboardInterrupt

    monkeypatch.setattr(_cli_progress.Progress, "trial_ended", interrupted)
    argv = tune_args(setup, "build", "--max-trials", "2", *FAST[2:], "--overwrite")
    assert cli.main(argv) == 130
    err = capsys.readouterr().err
    assert "stopped by Ctrl-C (SIGINT); the search state is saved in" in err
    resume = err.strip().splitlines()[-1].strip()
    assert resume == shlex.join(["autoprep", *argv[:-1]])
    state = results(setup[2])
    assert state["state"] == "interrupted" and len(state["trials"]) == 1
    assert "stopped by Ctrl-C" in log_lines(setup[2])[-3]

    monkeypatch.undo()
    assert cli.main(shlex.split(resume)[1:]) == 0
    final = results(setup[2])
    assert final["state"] == "finished" and len(final["trials"]) == 2
    assert final["trials"][0] == state["trials"][0]


@pytest.mark.slow
def test_a_failing_trial_is_recorded_and_the_search_goes_on(setup, capsys):
    assert cli.main(tune_args(setup, "flaky", "--max-trials", "2", *FAST[2:])) == 0
    failed, completed = results(setup[2])["trials"]
    assert failed["status"] == "FAILED" and "boom: this trial cannot train" in failed["message"]
    assert completed["status"] == "COMPLETED"
    assert re.search(r"trial 1/2 .* failed \(ValueError: boom: this trial cannot train\)",
                     capsys.readouterr().out)


def test_repeated_failures_stop_the_search_with_the_reason(setup, capsys):
    assert cli.main(tune_args(setup, "broken", "--max-trials", "5", *FAST[2:])) == 1
    err = capsys.readouterr().err
    assert re.search(r"^autoprep tune: error: the last 3 trials failed in a row, so the search "
                     r"stopped. Last failure: ValueError: boom: this trial cannot train\. .*"
                     r"resume with: autoprep tune", err)
    assert "Traceback" not in err
    state = results(setup[2])
    assert [t["status"] for t in state["trials"]] == ["FAILED"] * 3
    assert state["best_config"] is None


@pytest.mark.slow
def test_console_script_and_module_entry_points(tmp_path):
    for command in (["autoprep"], [sys.executable, "-m", "autoprep"]):
        if command == ["autoprep"] and not any(
            os.path.exists(os.path.join(p, "autoprep")) for p in os.environ["PATH"].split(":")
        ):
            continue
        done = subprocess.run([*command, "show", str(tmp_path)], capture_output=True, text=True)
        assert done.returncode == 2
        assert "autoprep show: error: No autoprep results in" in done.stderr
        assert "Traceback" not in done.stderr


def test_memory_limit_takes_sizes_and_refuses_others_by_name(setup, capsys):
    from autoprep.cli.tune import memory_size

    assert memory_size("512M") == 512 << 20
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", "--memory-limit", "lots"))
    assert exit_info.value.code == 2
    assert "--memory-limit: expected a size such as 512M, 2G" in capsys.readouterr().err


# -- the version and a bare `autoprep` ---------------------------------------------------------
def test_version_is_the_installed_distributions(capsys):
    from importlib.metadata import version

    import autoprep

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"autoprep {version('autoprep')}\n"
    assert autoprep.__version__ == version("autoprep") and "__version__" in dir(autoprep)


def test_version_without_package_metadata(monkeypatch):
    import importlib.metadata

    import autoprep

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert autoprep._version() == "0+unknown"


@pytest.mark.parametrize("argv", [[], ["--debug"]])
def test_a_bare_autoprep_lists_the_commands(argv, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: autoprep")
    for name in _subparsers(cli.build_parser()).choices:
        assert re.search(rf"^ +{name} +\S", err, re.M), name


# -- what the CLI passes to autoprep.tune (stubbed: no training) --------------------------------
class _Stub(Exception):
    """Raised by the stub of `autoprep.tune` once it has recorded its arguments."""


@pytest.fixture
def tune_calls(monkeypatch):
    """The keyword arguments of each `autoprep.tune` call; the call itself raises `_Stub`."""
    import autoprep

    calls = []

    def tune(model_fn, data_dir, **kwargs):
        calls.append(kwargs)
        raise _Stub("stopped before any training")

    monkeypatch.setattr(autoprep, "tune", tune)
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT",
                 "AUTOPREP_WORKER_TIMEOUT"):  # a worker's command sets them in this process
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    return calls


def _tuned(setup, tune_calls, *options) -> dict:
    assert cli.main(tune_args(setup, "build", *options)) == 1  # the stub's exception
    (kwargs,) = tune_calls
    return kwargs


# -- a distributed search: the chief's banner, and its command plus --worker N --------------------
def _chief_argv(setup):
    return tune_args(setup, "build", "--max-trials", "4", "--chief", "8000",
                     "--worker-timeout", "30s", "--overwrite")


def test_the_chiefs_banner_prints_the_workers_command(setup):
    from autoprep.cli.tune import _distributed_role

    args = cli.build_parser().parse_args(_chief_argv(setup))
    args.argv = _chief_argv(setup)
    command = shlex.join(["autoprep", *_chief_argv(setup)[:-1]]) + " --worker N"
    assert _distributed_role(args) == (
        "chief of a distributed search, handing out trials on 127.0.0.1:8000: start each "
        f"worker (N = 0, 1, ...) with the same command plus --worker N:\n  {command}")


def test_the_chiefs_command_plus_worker_n_runs_as_a_worker(setup, tune_calls, capsys):
    assert cli.main([*_chief_argv(setup), "--worker", "0"]) == 1  # reached the stub
    assert len(tune_calls) == 1
    assert os.environ["KERASTUNER_TUNER_ID"] == "tuner0"
    assert "AUTOPREP_WORKER_TIMEOUT" not in os.environ
    out = capsys.readouterr().out
    assert "worker 0 (tuner0) of the chief at 127.0.0.1:8000\n" in out
    assert "note: --worker-timeout is the chief's option: this worker ignores it" in out


def test_distributed_help_and_warning_point_to_the_distributed_page(capsys):
    from autoprep.cli.tune import exposed_oracle_note

    page = os.path.join(os.path.dirname(os.path.dirname(__file__)), "docs", "distributed.md")
    assert os.path.isfile(page)
    note = exposed_oracle_note({"KERASTUNER_TUNER_ID": "chief",
                                "KERASTUNER_ORACLE_IP": "10.0.0.5",
                                "KERASTUNER_ORACLE_PORT": "8000"})
    assert "docs/distributed.md" in note and "README" not in note
    with pytest.raises(SystemExit):
        cli.main(["tune", "--help"])
    text = capsys.readouterr().out
    assert "docs/distributed.md" in text and "README" not in text


# -- the search space, the splits and the baseline (autoprep.tune stubbed) ------------------------
def test_tune_defaults_reach_the_library(setup, tune_calls):
    kwargs = _tuned(setup, tune_calls)
    assert (kwargs["space"], kwargs["validation_split"], kwargs["test_split"],
            kwargs["baseline"]) == (None, None, 0.2, True)


def test_splits_and_baseline_reach_the_library(setup, tune_calls):
    kwargs = _tuned(setup, tune_calls, "--validation-split", "0.25", "--test-split", "0",
                    "--no-baseline")
    assert (kwargs["validation_split"], kwargs["test_split"], kwargs["baseline"]) == (
        0.25, 0.0, False)


SPACE_FILES = {
    "space.json": json.dumps({"normalization": ["per_channel", "rescale_01"], "flip": "none",
                              "rotation": {"min": 0, "max": 0.1}, "zoom": [0, 0.05]}),
    "space.toml": 'normalization = ["per_channel", "rescale_01"]\nflip = "none"\n'
                  "rotation = {min = 0, max = 0.1}\nzoom = [0, 0.05]\n",
}


@pytest.mark.parametrize("name", sorted(SPACE_FILES))
def test_a_space_file_reaches_the_library(name, setup, tune_calls, tmp_path):
    from autoprep import SearchSpace

    path = tmp_path / name
    path.write_text(SPACE_FILES[name])
    space = _tuned(setup, tune_calls, "--space", str(path))["space"]
    expected = SearchSpace(normalization=["per_channel", "rescale_01"], flip="none",
                           rotation=(0.0, 0.1), zoom=[0, 0.05])
    assert space.get_config() == expected.get_config()


def test_a_space_file_written_by_get_config_is_read_back(setup, tune_calls, tmp_path):
    from autoprep import SearchSpace

    space = SearchSpace(imbalance=["none", "deferred_reweighting"], reweight_start=(0.5, 0.7))
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space.get_config()))
    assert _tuned(setup, tune_calls, "--space", str(path))["space"].get_config() == (
        space.get_config())


def test_dimension_options_override_the_file(setup, tune_calls, tmp_path):
    from autoprep import SearchSpace

    path = tmp_path / "space.json"
    path.write_text(SPACE_FILES["space.json"])
    space = _tuned(setup, tune_calls, "--space", str(path), "--normalization", "robust",
                   "--imbalance", "none,oversample", "--flip", "none,horizontal",
                   "--rotation", "0.05,0.1", "--contrast", "0:0.2",
                   "--reweight-start", "0.5")["space"]
    expected = SearchSpace(normalization="robust", imbalance=["none", "oversample"],
                           flip=["none", "horizontal"], rotation=[0.05, 0.1], zoom=[0, 0.05],
                           contrast=(0.0, 0.2), reweight_start=0.5)
    assert space.get_config() == expected.get_config()


@pytest.mark.parametrize("options, message", [
    (["--normalization", "per_chanel,rescale_01"],
     "--normalization: Unknown normalization 'per_chanel'. Expected one of: none, rescale_01, "),
    (["--flip", "sideways"], "--flip: Unknown flip 'sideways'. Expected one of: none, "),
    (["--rotation", "0:0.9"], r"--rotation: `rotation` values must lie in \[0.0, 0.5\]"),
    (["--zoom", "0.2:0.1"], "--zoom: `zoom` range must have low <= high"),
])
def test_a_bad_dimension_value_is_one_line_naming_its_option(options, message, setup,
                                                             tune_calls, capsys):
    assert cli.main(tune_args(setup, "build", *options)) == 2
    err = capsys.readouterr().err
    assert re.search("^autoprep tune: error: " + message, err), err
    assert len(err.strip().splitlines()) == 1 and tune_calls == []


@pytest.mark.parametrize("content, message", [
    ('{"rotate": 0.1}', "Unknown search dimension 'rotate'. Expected one of: normalization, "),
    ('{"imbalance": "oversampling"}', "Unknown imbalance 'oversampling'. Expected one of: "),
    ('{"rotation": {"min": 0}}', "`rotation` must be a number, a list of numbers"),
])
def test_a_bad_space_file_is_one_line_naming_the_file(content, message, setup, tune_calls,
                                                      tmp_path, capsys):
    path = tmp_path / "space.json"
    path.write_text(content)
    assert cli.main(tune_args(setup, "build", "--space", str(path))) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"autoprep tune: error: --space {path}: {message}"), err
    assert len(err.strip().splitlines()) == 1 and tune_calls == []


@pytest.mark.parametrize("name, content, message", [
    ("missing.json", None, "cannot read .*missing.json.*: No such file"),
    ("space.yaml", "flip: none", "expected a .json or .toml file"),
    ("space.json", '{"flip": "none",}', "is not valid JSON: "),
    ("space.toml", "flip = none", "is not valid TOML: "),
    ("space.json", '["flip"]', "must hold a table of SearchSpace arguments.*Received: list"),
])
def test_an_unreadable_space_file_is_refused_when_parsing(name, content, message, setup,
                                                          tmp_path, capsys):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", "--space", str(path)))
    assert exit_info.value.code == 2
    assert re.search(r"autoprep tune: error: argument --space: .*" + message,
                     capsys.readouterr().err)


@pytest.mark.parametrize("text, value", [
    ("0.1", 0.1), ("0,0.05,0.1", [0.0, 0.05, 0.1]), ("0:0.2", (0.0, 0.2)), (" 1 ", 1.0),
])
def test_number_values(text, value):
    from autoprep.cli.space import numbers

    assert numbers(text) == value and type(numbers(text)) is type(value)


@pytest.mark.parametrize("text", ["", "x", "0,", "0:", "0:0.1:0.2", "nan", "0:inf", "0,,1"])
def test_bad_number_values_are_refused_when_parsing(text, setup, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", "--rotation", text))
    assert exit_info.value.code == 2
    assert "argument --rotation: expected a number, comma-separated numbers" in (
        capsys.readouterr().err)


def test_name_values():
    from autoprep.cli.space import names

    assert names("per_channel") == "per_channel"
    assert names("per_channel, rescale_01") == ["per_channel", "rescale_01"]
    with pytest.raises(argparse.ArgumentTypeError, match="comma-separated names"):
        names("per_channel,")


def test_every_dimension_of_the_registries_has_its_option():
    from autoprep.cli.space import DIMENSIONS, NAMES, NUMBERS, option
    from autoprep.search.space import declared_dimensions

    declared = [(name, NAMES if d.dimension.limits is None else NUMBERS)
                for name, d in declared_dimensions().items()]
    assert list(DIMENSIONS) == declared, "update DIMENSIONS in autoprep/cli/space.py"
    parser = _subparsers(cli.build_parser()).choices["tune"]
    others = {o for a in parser._actions if not a.dest.startswith("dimension_")
              for o in a.option_strings}
    assert not others & {option(name) for name, _ in DIMENSIONS}


@pytest.mark.parametrize("options, seconds", [([], 300), (["--report-every", "1m"], 60)])
def test_report_refresh_period(options, seconds, setup, tune_calls, monkeypatch):
    from autoprep.cli import tune as cli_tune

    intervals = []
    original = cli_tune.Refresher

    def refresher(*, interval):
        intervals.append(interval)
        return original(interval=interval)

    monkeypatch.setattr(cli_tune, "Refresher", refresher)
    _tuned(setup, tune_calls, *options)
    assert intervals == [seconds]


@pytest.mark.parametrize("option, text", [
    ("--validation-split", "0"), ("--validation-split", "1"), ("--test-split", "1"),
    ("--test-split", "-0.1"), ("--test-split", "a fifth"),
])
def test_bad_fractions_are_refused_by_name(option, text, setup, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(tune_args(setup, "build", option, text))
    assert exit_info.value.code == 2
    assert f"argument {option}: expected a fraction" in capsys.readouterr().err


@pytest.mark.parametrize("reevaluate, options, text", [
    (3, {}, "re-evaluating the best configurations, then training the chosen pipeline and the "
            "baseline on the development split for the test score"),
    (0, {"baseline": False}, "training the chosen pipeline on the development split for the "
                             "test score"),
    (3, {"test_split": 0.0}, "re-evaluating the best configurations"),
    (0, {"test_split": 0.0}, ""),
])
def test_the_line_after_the_last_trial_says_what_follows(reevaluate, options, text):
    from autoprep.cli.progress import AFTER_SEARCH
    from autoprep.cli.tune import after_search

    assert after_search(reevaluate, options) == text
    assert AFTER_SEARCH == after_search(3, {})
