"""`autoprep tune` as a real process: SIGKILL and resume, SIGTERM, show and export of a partial run.

While a search runs, the test reads results.json in a tight loop: every snapshot must be valid
JSON (results are written through a temporary file and a rename).
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import write_folder
from test_cli import MODEL_SOURCE, log_lines, results

from autoprep import cli

pytestmark = pytest.mark.slow
TIMEOUT = 240


@pytest.fixture
def command(tmp_path):
    """The tune command of a tiny 4-trial search, and its run directory."""
    data = write_folder(tmp_path / "data", [12, 12, 6])
    model_file = tmp_path / "model.py"
    model_file.write_text(MODEL_SOURCE)
    run_dir = str(tmp_path / "runs" / "night")
    argv = ["tune", data, "--model", f"{model_file}:build", "--out", run_dir,
            "--max-trials", "4", "--epochs", "2", "--tuner", "random", "--seed", "0",
            "--reevaluate", "0"]
    return argv, run_dir


def start(argv, tmp_path, name):
    out = open(tmp_path / f"{name}.out", "w")
    err = open(tmp_path / f"{name}.err", "w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "autoprep", *argv], stdout=out, stderr=err,
                            env=env, cwd=tmp_path)


def watch(process, run_dir, *, until=None):
    """Reads results.json in a tight loop until the process ends or `until(state)` holds.

    Returns:
        (number of snapshots read, the last snapshot or None)
    """
    path = os.path.join(run_dir, "results.json")
    deadline = time.monotonic() + TIMEOUT
    snapshots, state = 0, None
    while process.poll() is None:
        assert time.monotonic() < deadline, "the search took too long"
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            time.sleep(0.002)
            continue
        state = json.loads(text)  # a half-written file would fail here
        snapshots += 1
        if until is not None and until(state):
            return snapshots, state
        time.sleep(0.002)
    return snapshots, state


def later_trial_running(run_dir, state) -> bool:
    """True once a trial beyond those in `state` has started (Keras Tuner made its folder)."""
    done = {t["trial_id"] for t in state["trials"]}
    started = {name[len("trial_"):] for name in os.listdir(run_dir) if name.startswith("trial_")}
    return bool(started - done)


def test_sigkill_mid_search_then_the_same_command_finishes_without_losing_a_trial(
    command, tmp_path
):
    argv, run_dir = command
    first = start(argv, tmp_path, "first")
    seen, before = watch(first, run_dir, until=lambda state: any(
        t["status"] == "COMPLETED" for t in state["trials"]))
    assert before is not None, "no trial completed before the process ended"
    while not later_trial_running(run_dir, before) and first.poll() is None:
        time.sleep(0.002)
    time.sleep(0.3)  # inside the next trial's training
    first.send_signal(signal.SIGKILL)
    assert first.wait() == -signal.SIGKILL
    killed = results(run_dir)
    completed_before = {t["trial_id"]: t for t in killed["trials"] if t["status"] == "COMPLETED"}
    assert 1 <= len(completed_before) < 4 and killed["state"] == "running"

    second = start(argv, tmp_path, "second")
    more, _ = watch(second, run_dir)
    assert second.wait() == 0, (tmp_path / "second.err").read_text()[-2000:]
    assert seen + more > 5

    final = results(run_dir)
    ids = [t["trial_id"] for t in final["trials"]]
    assert final["state"] == "finished" and final["test_score"] is not None
    assert len(ids) == len(set(ids)) == 4
    assert [t["status"] for t in final["trials"]] == ["COMPLETED"] * 4
    for trial_id, trial in completed_before.items():  # kept, unchanged, not run again
        assert next(t for t in final["trials"] if t["trial_id"] == trial_id) == trial
    log = log_lines(run_dir)
    assert sum("  trial " in line for line in log) == 4  # 1+ before the kill, the rest after
    assert (tmp_path / "second.out").read_text().count("trial ") >= 4 - len(completed_before)


def test_sigterm_saves_the_state_and_show_and_export_read_the_partial_run(
    command, tmp_path, capsys
):
    argv, run_dir = command
    process = start(argv, tmp_path, "run")
    _, state = watch(process, run_dir, until=lambda state: len(state["trials"]) >= 1)
    while not later_trial_running(run_dir, state) and process.poll() is None:
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT) == 143
    err = (tmp_path / "run.err").read_text()
    assert "stopped by SIGTERM; the search state is saved in" in err
    assert err.strip().splitlines()[-1].strip().startswith("autoprep tune ")
    assert "Traceback" not in err
    partial = results(run_dir)
    assert partial["state"] == "interrupted" and 1 <= len(partial["trials"]) < 4
    assert any("stopped by SIGTERM" in line for line in log_lines(run_dir))

    assert cli.main(["show", run_dir]) == 0
    shown = capsys.readouterr().out
    assert "state: interrupted" in shown
    assert f"best validation balanced_accuracy: {partial['best_score']:.4f}" in shown
    for trial in partial["trials"]:
        assert f"  {trial['number']}  " in shown

    target = tmp_path / "pipeline.py"
    assert cli.main(["export", run_dir, "-o", str(target)]) == 0
    assert f"wrote {target}" in capsys.readouterr().out
    source = target.read_text()
    compile(source, str(target), "exec")
    assert "def make_datasets" in source and "import autoprep" not in source
