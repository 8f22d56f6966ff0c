"""The run directory: which folders autoprep may write into, and which files it may delete.

A run directory is a folder that holds autoprep's run marker (`autoprep.json`). autoprep
writes a new run only into a folder that is missing, empty or already a run directory, never
into a folder that holds anything else; it refuses `/`, the home folder, the current folder
and any folder that contains them or the data. `overwrite` deletes only the files autoprep and
Keras Tuner write there (`OWN_FILES`, `trial_*` folders, temporary files), never a folder
itself or anything else the user put inside. Paths are compared after resolving symlinks.

One process at a time works in a run directory: `RunLock` holds an exclusive `flock` on
`autoprep.lock`, which names its holder (host and PID). The workers of a distributed search
neither lock nor clear it: the chief does.
"""

import contextlib
import json
import os
import shutil

from autoprep._files import atomic_write, remove_stale_temporaries
from autoprep.errors import RunDirectoryError
from autoprep.run.files import CACHE_DIR, LOCK_FILE, OWN_FILES, OWN_PATTERNS, RUN_FILE, TRIAL_DIR
from autoprep.run.lock import RunLock


def is_own_file(name) -> bool:
    """True for a name that autoprep or Keras Tuner writes at the top of a run directory."""
    return name in OWN_FILES or any(pattern.fullmatch(name) for pattern in OWN_PATTERNS)


def is_run_dir(path) -> bool:
    """True when `path` holds autoprep's run marker, a JSON object with the search settings."""
    try:
        with open(os.path.join(path, RUN_FILE), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "settings" in state


def check_run_dir(run_dir, data_dir, *, overwrite=False):
    """Refuses a run directory that autoprep must not write into (or clear, with `overwrite`).

    Called before any image is decoded.

    Raises:
        RunDirectoryError: `run_dir` is `/`, the home or current folder, contains one of
            them, overlaps the data, or is a folder with other files and no run marker.
    """
    run_real = os.path.realpath(os.fspath(run_dir))
    data_real = os.path.realpath(os.fspath(data_dir))
    if _contains(data_real, run_real):
        raise RunDirectoryError(
            f"The run directory {os.fspath(run_dir)!r} lies inside the data directory "
            f"{os.fspath(data_dir)!r}; its files would be read as images. Choose a run "
            "directory (`--out`, or `directory`/`project_name`) outside the data."
        )
    for place, path in (("the root folder /", "/"), ("your home folder", _home()),
                        ("the current folder", os.getcwd()), ("the data directory", data_real)):
        if _contains(run_real, os.path.realpath(path)):
            what = "is" if run_real == os.path.realpath(path) else "contains"
            raise RunDirectoryError(
                f"Refusing the run directory {os.fspath(run_dir)!r}: it {what} {place}, and "
                "autoprep writes (and with --overwrite deletes) its files there. Choose a new "
                "folder for the run, e.g. --out runs/NAME."
            )
    if os.path.exists(run_real) and not os.path.isdir(run_real):
        raise RunDirectoryError(
            f"The run directory {os.fspath(run_dir)!r} is a file, not a folder. Choose a new "
            "folder for the run, e.g. --out runs/NAME."
        )
    foreign = foreign_entries(run_dir)
    if foreign and not is_run_dir(run_dir):
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5
                                          else "")
        action = "clear" if overwrite else "write into"
        raise RunDirectoryError(
            f"The run directory {os.fspath(run_dir)!r} is a folder that autoprep did not create "
            f"(no {RUN_FILE}) and it holds {shown}; autoprep will not {action} it. Choose a new "
            "or empty folder for the run, e.g. --out runs/NAME."
        )


def foreign_entries(run_dir) -> list:
    """Sorted names in `run_dir` that autoprep did not write (folders end with "/")."""
    try:
        entries = list(os.scandir(run_dir))
    except FileNotFoundError:
        return []
    return sorted(entry.name + ("/" if entry.is_dir() else "")
                  for entry in entries if not is_own_file(entry.name))


def clear_run_dir(run_dir):
    """Deletes autoprep's own files of a run directory (checked by `check_run_dir`) but the
    lock and the cache of decoded images (reused if the data is the same, maybe mapped
    already); the folder and anything else in it stay."""
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if not is_own_file(entry.name) or entry.name in (LOCK_FILE, CACHE_DIR):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)


def open_run_dir(run_dir, settings, overwrite) -> dict:
    """Creates, resumes or (with `overwrite`) clears the run directory; returns its run state.

    Temporary files that a killed process left (its atomic writes) are removed.

    Raises:
        RunDirectoryError: the run directory holds a search with different settings.
    """
    path = os.path.join(run_dir, RUN_FILE)
    remove_left_temporaries(run_dir)
    if not overwrite and os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            previous = json.load(handle)
        different = [
            key for key, value in settings.items() if previous["settings"].get(key) != value
        ]
        if different:
            raise RunDirectoryError(
                f"{run_dir!r} holds a different search ({', '.join(different)} differ). "
                "Resume it with the same data and settings, pass overwrite=True (--overwrite) "
                "to start over, or choose another run directory."
            )
        return previous
    if overwrite and os.path.isdir(run_dir):
        clear_run_dir(run_dir)
    state = {"settings": settings, "interrupted": {}}
    os.makedirs(run_dir, exist_ok=True)
    write_run_state(run_dir, state)
    return state


def remove_left_temporaries(run_dir):
    """Removes the temporary files of dead processes at the top and in the trial folders."""
    if not os.path.isdir(run_dir):
        return
    with os.scandir(run_dir) as entries:
        trials = [e.path for e in entries
                  if TRIAL_DIR.fullmatch(e.name) and e.is_dir(follow_symlinks=False)]
    for folder in [run_dir, *trials]:
        remove_stale_temporaries(folder)


def write_run_state(run_dir, state):
    """Writes the run marker with the run's state (settings, interrupted trials)."""
    atomic_write(os.path.join(run_dir, RUN_FILE), json.dumps(state, indent=2))


def _contains(outer, inner) -> bool:
    """True when real path `inner` is `outer` or lies below it."""
    return os.path.commonpath([outer, inner]) == outer


def _home() -> str:
    home = os.path.expanduser("~")
    return home if home != "~" else "/"


def locked(run_dir, *, worker=False):
    """The lock of `run_dir` as a context manager; none for a distributed search's worker."""
    return contextlib.nullcontext() if worker else RunLock(run_dir)
