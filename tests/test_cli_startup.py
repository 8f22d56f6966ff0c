"""The CLI starts at once: help and argument errors import neither TensorFlow (nor Keras, Keras
Tuner, scikit-learn) nor numpy, and no command prints TensorFlow's start-up lines. The wall time
of `autoprep --help` is measured by hand, not in a timed test."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from autoprep.cli import build_parser

HEAVY = ("tensorflow", "keras", "keras_tuner", "sklearn", "numpy")
START_UP_LINES = ("oneDNN", "cuInit", "All log messages before absl", "TF-TRT",
                  "Unable to register", "cuda drivers", "cpu_feature_guard")

# Runs the CLI in this process and prints which heavy modules it imported.
_LOADED = textwrap.dedent("""
    import json, sys
    from autoprep.cli import main
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
    heavy = sorted({name.split(".")[0] for name in sys.modules} & set(%r))
    print(json.dumps({"code": code, "heavy": heavy}))
""" % (HEAVY,))


def _commands():
    parser = build_parser()
    return sorted(parser._subparsers._group_actions[0].choices)


def _env():
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI's own default, not the test suite's
    return env


def _loaded(argv):
    completed = subprocess.run([sys.executable, "-c", _LOADED, *argv], capture_output=True,
                               text=True, env=_env(), timeout=120)
    return json.loads(completed.stdout.splitlines()[-1]), completed.stderr


def autoprep(*argv, cwd=None):
    """Runs `python -m autoprep ARGV`; returns (exit code, stdout + stderr)."""
    completed = subprocess.run([sys.executable, "-m", "autoprep", *map(str, argv)], cwd=cwd,
                               capture_output=True, text=True, env=_env(), timeout=300)
    return completed.returncode, completed.stdout + completed.stderr


def test_every_command_is_checked():
    assert {"demo", "doctor", "export", "show", "tune"} <= set(_commands())


@pytest.mark.parametrize(
    "argv, code",
    [(["--help"], 0)]
    + [([command, "--help"], 0) for command in _commands()]
    + [([], 2), (["--version"], 0), (["bogus"], 2), (["tune", "data"], 2),
       (["show", "run", "--top", "x"], 2),
       (["tune", "data", "--model", "m.py:f", "--out", "run", "--worker", "0"], 2),
       (["tune", "data", "--model", "m.py:f", "--out", "run", "--rotation", "0:x"], 2),
       (["tune", "data", "--model", "m.py:f", "--out", "run", "--space", "missing.toml"], 2)],
)
def test_help_and_argument_errors_import_no_tensorflow(argv, code):
    loaded, stderr = _loaded(argv)
    assert loaded == {"code": code, "heavy": []}, stderr[-2000:]


def test_show_imports_no_tensorflow(old_run):
    loaded, stderr = _loaded(["show", str(old_run)])
    assert loaded == {"code": 0, "heavy": []}, stderr[-2000:]


def test_doctor_prints_no_tensorflow_start_up_lines(make_folder):
    code, output = autoprep("doctor", make_folder([4, 4]))
    assert code == 0, output[-2000:]
    assert "autoprep doctor:" in output
    assert [line for line in output.splitlines() if any(s in line for s in START_UP_LINES)] == []


def test_other_lines_on_stderr_during_the_import_are_kept(tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "tensorflow.py").write_text(textwrap.dedent("""
        import os
        os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are "
                    b"written to STDERR\\n"
                    b"I0000 00:00:1795849498.519639   22555 port.cc:153] oneDNN custom ops\\n"
                    b"a real problem\\n"
                    b"W0000 00:00:1795849498.51   22555 cudart_stub.cc:31] Could not find\\n")
    """))
    env = _env()
    env["PYTHONPATH"] = os.pathsep.join([str(fake), env.get("PYTHONPATH", "")])
    completed = subprocess.run(
        [sys.executable, "-c", "from autoprep.cli import quiet; quiet.import_tensorflow()"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert (completed.returncode, completed.stderr) == (0, "a real problem\n")
