"""The lock of a run directory: one process at a time works in it.

`RunLock` holds an exclusive `fcntl.flock` on `RUN_DIR/autoprep.lock`, whose contents name the
holder (host, PID, start, command) for the message another process gets. This module imports
only the standard library, so that taking the lock costs nothing.
"""

import contextlib
import fcntl
import json
import os
import socket
import sys
import time

from autoprep._text import printable
from autoprep.errors import RunDirectoryError
from autoprep.run.files import LOCK_FILE


class RunLock:
    """An exclusive lock on a run directory, held by one process; a context manager.

    The lock is a `fcntl.flock` on `RUN_DIR/autoprep.lock`, released by the kernel when its
    process dies; the file holds the holder's host and PID, for the message another process
    gets. A lock file left by a dead process on this host is taken over with a note; one from
    another host is not (autoprep cannot tell whether that process still runs).

    Args:
        run_dir: The run directory; created (with missing parents) when it does not exist, and
            removed again on release if it is still empty.
    """

    def __init__(self, run_dir):
        self.run_dir = os.fspath(run_dir)
        self.path = os.path.join(self.run_dir, LOCK_FILE)
        self._fd = None
        self._created = []

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc_info):
        self.release()

    def acquire(self) -> "RunLock":
        """Takes the lock or raises `RunDirectoryError` naming the process that holds it."""
        self._created = _make_dirs(self.run_dir)
        while self._fd is None:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                self._remove_created()
                raise RunDirectoryError(
                    f"The run directory {self.run_dir!r} is in use by {_describe(holder)}; one "
                    "search at a time works in a run directory. Wait for it to end (or stop "
                    "it), or choose another run directory."
                ) from None
            if _same_file(fd, self.path):
                self._fd = fd
            else:  # its holder removed the file between our open and flock: open it anew
                os.close(fd)
        self._take_over(_read_holder(self._fd))
        me = {"host": socket.gethostname(), "pid": os.getpid(),
              "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(me).encode(), 0)
        return self

    def _take_over(self, holder):
        """Notes a lock left by a dead process of this host; refuses one of another host."""
        if not holder:
            return
        if holder.get("host") != socket.gethostname():
            os.close(self._fd)  # keeps the other host's lock file
            self._fd = None
            raise RunDirectoryError(
                f"The run directory {self.run_dir!r} is locked by {_describe(holder)}, another "
                "host, so autoprep cannot tell whether it still runs. If that search is over, "
                f"delete {self.path} and rerun."
            )
        print(printable(f"autoprep: note: took over the lock of {self.run_dir} left by "
                        f"{_describe(holder)}, which ended without releasing it."),
              file=sys.stderr, flush=True)

    def release(self):
        """Removes the lock file and releases the lock (and removes folders it created if they
        are still empty)."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        os.close(self._fd)
        self._fd = None
        self._remove_created()

    def _remove_created(self):
        for path in reversed(self._created):
            try:
                os.rmdir(path)
            except OSError:  # not empty: it holds the run
                break
        self._created = []


def _make_dirs(path) -> list:
    """Creates `path` and its missing parents; returns the folders it created, outermost first."""
    missing = []
    while path and not os.path.isdir(path):
        missing.append(path)
        path = os.path.dirname(path)
    if missing:
        os.makedirs(missing[0], exist_ok=True)
    return missing[::-1]


def _read_holder(fd) -> dict:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "null")
    except ValueError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _same_file(fd, path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _describe(holder) -> str:
    if not holder:
        return "another autoprep process (starting up)"
    command = f", running `{holder['command']}`" if holder.get("command") else ""
    return (f"process {holder.get('pid')} on host {holder.get('host')} (since "
            f"{holder.get('since')}{command})")
