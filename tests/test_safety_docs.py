"""The README says what autoprep writes and deletes, and how to run a distributed search safely."""

import os
import re

import pytest

from autoprep.cli.tune import exposed_oracle_note, oracle_address
from autoprep.run import rundir

README = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()


def section(title) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_readme_says_what_autoprep_writes_and_deletes():
    text = " ".join(section("What autoprep writes and deletes").split())
    for name in rundir.OWN_FILES:  # every file --overwrite may delete (or keeps) is named
        assert f"`{name}" in text, name
    for promise in ["never into your data folder", "refuses `/`, your home folder, the current "
                    "folder", "anything else you put in the folder stays", "`autoprep.lock`",
                    "usual permissions", "unless you add `--force`"]:
        assert promise in text


def test_readme_warns_that_the_oracle_port_has_no_authentication():
    text = " ".join(section("GPUs and distributed search").split())
    assert "**Keras Tuner's oracle port has no authentication**" in text
    assert "SSH tunnel" in text and "private network" in text


def test_documented_distributed_commands_bind_loopback():
    chiefs = [oracle_address(text)[0] for text in re.findall(r"--chief ([\w.:\[\]]+)", README)
              if text != "HOST:PORT"]
    addresses = re.findall(r"KERASTUNER_ORACLE_IP=(\S+)", README)
    assert len(chiefs) >= 4 and set(chiefs + addresses) == {"127.0.0.1"}
    assert "ssh -N -L 8000:127.0.0.1:8000" in README


@pytest.mark.parametrize("address, warned", [
    ("127.0.0.1", False), ("::1", False), ("localhost", False), ("0.0.0.0", True),
    ("10.0.0.5", True), ("chief.example.org", True)])
def test_a_chief_whose_oracle_listens_beyond_loopback_is_warned(address, warned):
    environ = {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": address,
               "KERASTUNER_ORACLE_PORT": "8000"}
    note = exposed_oracle_note(environ)
    assert bool(note) == warned
    if warned:
        assert note.startswith(f"note: Keras Tuner's oracle listens on {address}:8000 without "
                               "authentication")
    assert exposed_oracle_note({**environ, "KERASTUNER_TUNER_ID": "tuner0"}) == ""
