"""The README: its two set-up commands and its lint command are the ones CI runs, and it stays
short (the rest is in docs/, checked by test_docs.py)."""

import re

from docs_text import code_blocks, read, section

from autoprep.cli.tune import DEMO_OUT

README = read("README.md")


def _setup_commands():
    return code_blocks(section(README, "Set-up: two commands"), ("bash",))


def _lint_command():
    (command,) = code_blocks(section(README, "Development"), ("bash",))
    return command.strip()


def test_the_two_setup_commands_are_unchanged():
    assert [command.strip() for command in _setup_commands()] == [
        "pip install -e . && autoprep demo",
        'pip install -e ".[test]" && python -m pytest',
    ]


def test_ci_runs_the_readme_lint_command_then_its_test_command():
    _, tests = (command.strip() for command in _setup_commands())
    lint = _lint_command()
    assert lint == "ruff check ."
    ci_lines = [line.strip() for line in read(".ci/run").splitlines()]
    assert tests in ci_lines and lint in ci_lines
    assert ci_lines.index(lint) < ci_lines.index(tests)


def test_ci_also_runs_the_slow_tier_the_readme_names():
    slow = "python -m pytest -m slow"
    assert f"`{slow}`" in README
    assert "addopts = \"-m 'not slow'\"" in read("pyproject.toml")  # the default: fast
    ci_lines = [line.strip() for line in read(".ci/run").splitlines()]
    _, tests = (command.strip() for command in _setup_commands())
    assert slow in ci_lines and ci_lines.index(tests) < ci_lines.index(slow)


def test_the_readme_stays_short():
    assert len(README.splitlines()) <= 160


def test_the_demo_writes_where_the_readme_says():
    written = re.findall(r"`(autoprep_runs/[\w/]+)/(best_pipeline\.py|report\.html)`", README)
    assert written and {folder for folder, _ in written} == {DEMO_OUT.replace("\\", "/")}


def test_the_test_markers_the_readme_names_are_registered():
    (markers,) = re.findall(r"^markers = \[(.*?)\]", read("pyproject.toml"), re.M | re.S)
    registered = set(re.findall(r'"(\w+):', markers))
    named = set(re.findall(r'-m "not (\w+)"', README)) | set(
        re.findall(r"marked `(\w+)`", " ".join(section(README, "Development").split())))
    assert named and named <= registered
