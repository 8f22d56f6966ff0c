"""The README's two set-up commands are the ones CI and users run."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def _setup_commands():
    section = _read("README.md").split("## Set-up: two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_readme_has_exactly_two_setup_commands():
    demo, tests = _setup_commands()
    assert demo == "pip install -e . && autoprep demo"
    assert "pytest" in tests


def _lint_command():
    section = _read("README.md").split("## Development", 1)[1].split("\n## ", 1)[0]
    (command,) = re.findall(r"```bash\n(.+?)\n```", section)
    return command


def test_ci_runs_the_readme_lint_command_then_its_test_command():
    _, tests = _setup_commands()
    lint = _lint_command()
    assert lint.startswith("ruff check")
    ci_lines = [line.strip() for line in _read(".ci/run").splitlines()]
    assert tests in ci_lines and lint in ci_lines
    assert ci_lines.index(lint) < ci_lines.index(tests)
