"""The run directory: which folders autoprep may write into, and which files it may delete.

A run directory is a folder that holds autoprep's run marker (`autoprep.json`), and only
such a folder: file names prove nothing (a folder of the user's may hold a `results.json`).
autoprep writes a run only into a folder that is missing, empty or already a run directory,
and writes the marker into a new one before anything else (`claim_run_dir`); it refuses any
other folder, `/`, the home folder, the current folder and any folder that contains them or
the data. A run directory of an older autoprep without the marker is read by `show` and
`export` (`run.result.load_result`), never resumed or cleared. `overwrite` deletes only the
files autoprep and Keras Tuner write there (`OWN_FILES`, `trial_*` folders, temporary files),
never a folder itself or anything else the user put inside. Paths are compared after
resolving symlinks.

One process at a time works in a run directory: `RunLock` holds an exclusive `flock` on
`autoprep.lock`, which names its holder (host and PID). The workers of a distributed search
neither lock nor clear it: the chief does.
"""

import contextlib
import json
import os
import shutil

from autoprep._files import atomic_create, atomic_write, remove_stale_temporaries
from autoprep.errors import RunDirectoryError
from autoprep.run.files import (
    CACHE_DIR,
    LOCK_FILE,
    OWN_FILES,
    OWN_PATTERNS,
    RESULTS_FILE,
    RUN_FILE,
    TRIAL_DIR,
)
from autoprep.run.lock import RunLock


def is_own_file(name) -> bool:
    """True for a name that autoprep or Keras Tuner writes at the top of a run directory."""
    return name in OWN_FILES or any(pattern.fullmatch(name) for pattern in OWN_PATTERNS)


def is_run_dir(path) -> bool:
    """True when `path` holds autoprep's run marker, a JSON object with the search settings
    (None in a run directory whose first search has not started yet)."""
    return _marker(path) is not None


def _marker(path):
    """The run marker's state in `path`, or None when there is no (readable) marker."""
    try:
        with open(os.path.join(path, RUN_FILE), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) and "settings" in state else None


def stored_settings(run_dir):
    """The settings of the search a run directory holds, or None (no run started there)."""
    state = _marker(run_dir)
    return None if state is None else state["settings"]


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
    entries = _entries(run_dir)
    if entries and not is_run_dir(run_dir):
        shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5
                                          else "")
        action = "clear" if overwrite else "write into"
        older = (f" If it is a run of an older autoprep (it has a {RESULTS_FILE} and no run "
                 "marker), `autoprep show` and `autoprep export` still read it; it cannot be "
                 "resumed: search again in a new folder, or move its files away first."
                 if RESULTS_FILE in entries else "")
        raise RunDirectoryError(
            f"The run directory {os.fspath(run_dir)!r} is a folder that autoprep did not create "
            f"(no {RUN_FILE}) and it holds {shown}; autoprep will not {action} it. Choose a new "
            f"or empty folder for the run, e.g. --out runs/NAME.{older}"
        )


def _entries(run_dir) -> list:
    """Sorted names in `run_dir` (folders end with "/"); [] when it does not exist."""
    try:
        entries = list(os.scandir(run_dir))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entry.name + ("/" if entry.is_dir() else "") for entry in entries)


def claim_run_dir(run_dir):
    """Makes a missing or empty folder (checked by `check_run_dir`) a run directory: creates
    it with a run marker that holds no settings yet, before anything else is written there.
    A run directory is left as it is (another process may have claimed it first)."""
    os.makedirs(run_dir, exist_ok=True)
    atomic_create(os.path.join(run_dir, RUN_FILE),
                  json.dumps({"settings": None, "interrupted": {}}, indent=2))


def clear_run_dir(run_dir):
    """Deletes autoprep's own files of a run directory (checked by `check_run_dir`) but the
    run marker (rewritten next: the folder stays a run directory throughout), the lock and the
    cache of decoded images (reused if the data is the same, maybe mapped already); the folder
    and anything else in it stay."""
    with os.scandir(run_dir) as entries:
        for entry in entries:
            if not is_own_file(entry.name) or entry.name in (RUN_FILE, LOCK_FILE, CACHE_DIR):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)


def open_run_dir(run_dir, settings, overwrite, *, defaults=None) -> dict:
    """Starts, resumes or (with `overwrite`) clears the run directory; returns its run state.

    Temporary files that a killed process left (its atomic writes) are removed.

    Args:
        run_dir: A run directory (see `claim_run_dir`).
        settings: What a resumed search must share with the search it resumes.
        overwrite: Start over: clear the run directory's own files.
        defaults: The values of settings that older versions did not store: a stored run
            without such a key had this value.

    Raises:
        RunDirectoryError: the run directory holds a search with different settings.
    """
    remove_left_temporaries(run_dir)
    previous = None if overwrite else _marker(run_dir)
    if previous is not None and previous["settings"] is not None:
        different = differing_settings(previous["settings"], settings, defaults or {})
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


_MISSING = object()


def differing_settings(stored, settings, defaults) -> list:
    """The names of `settings` whose value differs from the stored one.

    A key missing from `stored` (at the top, or inside a stored mapping such as the search
    space's config) has its value in `defaults` (at the same place), so that a run of an
    older version, which did not store a setting added since, resumes when that setting has
    its default value.
    """
    return [key for key, value in settings.items()
            if not _same(stored.get(key, defaults.get(key, _MISSING)), value,
                         defaults.get(key, _MISSING))]


def _same(stored, value, default) -> bool:
    if not (isinstance(stored, dict) and isinstance(value, dict)):
        return stored == value
    default = default if isinstance(default, dict) else {}
    return all(_same(stored.get(key, default.get(key, _MISSING)), value.get(key, _MISSING),
                     default.get(key, _MISSING))
               for key in {*stored, *value})


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
