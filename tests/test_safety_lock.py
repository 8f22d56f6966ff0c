"""One search at a time per run directory: a lock naming its holder, taken over from the dead.

The holder is a real second process (a small Python script that makes the run directory and
takes its lock as `tune` does, then waits), so the lock is tested across processes, as two
`autoprep tune` would meet.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from helpers import FAST_TUNE, MODEL_FILE, write_folder

from autoprep import cli

HOLDER = textwrap.dedent('''
    import sys
    from autoprep.run.lock import RunLock
    from autoprep.run.rundir import claim_run_dir

    claim_run_dir(sys.argv[1])  # the run marker first, as `tune` writes it
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()  # until the test closes stdin (or kills this process)
''')


@pytest.fixture
def setup(tmp_path):
    data = write_folder(tmp_path / "data", [6, 6, 4])
    (tmp_path / "model.py").write_text(MODEL_FILE)
    run = tmp_path / "runs" / "night"
    argv = ["tune", data, "--model", f"{tmp_path / 'model.py'}:build", "--out", str(run),
            *FAST_TUNE]
    return argv, str(run)


def hold_lock(run) -> subprocess.Popen:
    """A second process that holds the run directory's lock until its stdin is closed."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, run], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "locked\n"
    return holder


def autoprep_process(argv, cwd):
    return subprocess.run([sys.executable, "-m", "autoprep", *argv], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


def test_a_second_process_fails_at_once_naming_the_holder(setup, tmp_path):
    argv, run = setup
    holder = hold_lock(run)
    try:
        started = time.monotonic()
        second = autoprep_process([*argv, "--overwrite"], tmp_path)
        took = time.monotonic() - started
        marker = open(os.path.join(run, "autoprep.json")).read()
        # --overwrite deleted nothing, wrote nothing
        assert sorted(os.listdir(run)) == ["autoprep.json", "autoprep.lock"]
        assert json.load(open(os.path.join(run, "autoprep.lock")))["pid"] == holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert second.returncode == 2, second.stderr
    error = second.stderr.strip().splitlines()[-1]
    assert error.startswith("autoprep tune: error: The run directory")
    assert f"in use by process {holder.pid} on host {socket.gethostname()}" in error
    assert took < 60
    assert os.listdir(run) == ["autoprep.json"]  # the holder removed its lock
    assert open(os.path.join(run, "autoprep.json")).read() == marker


def test_a_lock_left_by_a_killed_process_is_taken_over_with_a_note(setup):
    _, run = setup
    killed = hold_lock(run)
    killed.kill()
    killed.wait(timeout=30)
    assert json.load(open(os.path.join(run, "autoprep.lock")))["pid"] == killed.pid
    second = hold_lock(run)
    assert json.load(open(os.path.join(run, "autoprep.lock")))["pid"] == second.pid
    second.stdin.close()
    assert second.wait(timeout=30) == 0
    note = [line for line in second.stderr.read().splitlines() if line.startswith("autoprep")]
    assert note == [f"autoprep: note: took over the lock of {run} left by process {killed.pid} "
                    f"on host {socket.gethostname()} (since {note[0].split('(since ')[1]}"]
    assert "ended without releasing it" in note[0]
    assert os.listdir(run) == ["autoprep.json"]  # released: its lock file removed


def test_a_lock_of_another_host_is_not_taken_over(setup, capsys):
    argv, run = setup
    from autoprep.run.rundir import claim_run_dir

    claim_run_dir(run)  # made by the process of the other host
    lock = os.path.join(run, "autoprep.lock")
    other = {"host": "elsewhere.example", "pid": 4242, "since": "2026-01-01 00:00:00"}
    open(lock, "w").write(json.dumps(other))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "locked by process 4242 on host elsewhere.example" in err[0]
    assert f"delete {lock} and rerun" in err[0]
    assert sorted(os.listdir(run)) == ["autoprep.json", "autoprep.lock"]
    assert json.load(open(lock)) == other


def test_a_distributed_worker_neither_locks_nor_clears_the_run_directory(setup, monkeypatch):
    argv, run = setup
    os.makedirs(os.path.join(run, "trial_0"))
    marker = json.dumps({"settings": {}, "interrupted": {}})
    files = {"autoprep.json": marker, "results.json": "chief's", "trial_0/trial.json": "chief's"}
    for name, text in files.items():
        open(os.path.join(run, name), "w").write(text)
    holder = hold_lock(run)  # the chief
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner0")

    class Reached(BaseException):  # past the command's error handling
        pass

    def make_tuner(*args, **kwargs):  # where the worker would connect to the chief
        raise Reached()

    monkeypatch.setattr("autoprep.search.loop.make_tuner", make_tuner)
    try:
        with pytest.raises(Reached):
            cli.main([*argv, "--overwrite", "--debug"])
        for name, text in files.items():
            assert open(os.path.join(run, name)).read() == text
        lock = json.load(open(os.path.join(run, "autoprep.lock")))
        assert lock["pid"] == holder.pid  # still the chief's
    finally:
        holder.send_signal(signal.SIGTERM)
        holder.wait(timeout=30)
