"""The docs say truly what autoprep deletes (docs/safety.md), and how to run a distributed
search safely (docs/distributed.md)."""

import os
import re

import pytest
from docs_text import links, pages, read, section

from autoprep.cli.tune import exposed_oracle_note, oracle_address
from autoprep.run import rundir

SAFETY = read("docs/safety.md")
DISTRIBUTED = read("docs/distributed.md")


def _overwrite_table() -> dict:
    """The table of docs/safety.md: file name as written -> "deleted" or "kept"."""
    rows = {}
    for row in section(SAFETY, "What `--overwrite` deletes").splitlines():
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            for name in re.findall(r"`([^`]+)`", cells[0]):
                rows[name] = cells[2].split()[0]
    return rows


def test_the_overwrite_table_names_every_file_autoprep_writes():
    table = _overwrite_table()
    for name in rundir.OWN_FILES:
        assert name in table or name + "/" in table, name


def test_overwrite_deletes_and_keeps_what_the_docs_say(tmp_path):
    table = _overwrite_table()
    made = {}
    for written in table:
        name = written.replace("*", "0").rstrip("/")  # `trial_*/` -> a folder trial_0
        assert rundir.is_own_file(name), written
        path = tmp_path / name
        if written.endswith("/"):
            path.mkdir()
            (path / "inside").write_text("x")
        else:
            path.write_text("x")
        made[written] = path
    (tmp_path / "notes.txt").write_text("the user's")  # "anything else ... stays"
    rundir.clear_run_dir(tmp_path)
    for written, path in made.items():
        assert os.path.exists(path) == (table[written] == "kept"), (written, table[written])
    assert (tmp_path / "notes.txt").exists()


def test_the_docs_warn_that_the_oracle_port_has_no_authentication():
    paragraphs = [" ".join(part.split()).lower() for part in DISTRIBUTED.split("\n\n")]
    assert any("oracle" in part and "no authentication" in part for part in paragraphs)
    # `autoprep tune --help` and the chief's note send users to the README: it warns too and
    # links the page.
    readme = read("README.md")
    assert "docs/distributed.md" in links(readme)
    paragraph = readme[readme.index("(docs/distributed.md)"):].split("\n- ", 1)[0]
    assert "no authentication" in " ".join(paragraph.split())


def test_documented_distributed_commands_bind_loopback():
    text = "\n".join(read(page) for page in pages())
    chiefs = [oracle_address(address)[0]
              for address in re.findall(r"--chief ([\w.:\[\]]+)", text) if address != "HOST:PORT"]
    addresses = re.findall(r"KERASTUNER_ORACLE_IP=(\S+)", text)
    assert chiefs and addresses and set(chiefs + addresses) == {"127.0.0.1"}


def test_the_documented_ssh_tunnel_reaches_the_chief_of_its_worker_command():
    tunnels = re.findall(r"ssh -N -L (\d+):([\w.]+):(\d+) ", DISTRIBUTED)
    chiefs = [oracle_address(address) for address in re.findall(r"--chief (\d\S*)", DISTRIBUTED)]
    assert tunnels and chiefs
    for local, host, remote in tunnels:  # this machine's port to the same port of the chief's
        assert host == "127.0.0.1" and local == remote
    assert {port for _, port in chiefs} <= {int(local) for local, _, _ in tunnels}


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
