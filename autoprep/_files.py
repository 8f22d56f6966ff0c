"""Writing a file whole: atomic writes, their leftovers, and files autoprep may replace.

Every layer writes files (the run marker, Keras Tuner's state, results, the exported module,
the report), so these helpers sit at the bottom of the package and import only the standard
library.
"""

import contextlib
import glob
import hashlib
import os
import re
import secrets
import socket
import stat

from autoprep.errors import ArgumentError

# A temporary file of `atomic_write`: `.tmp-HOST-PID-TOKEN-NAME.part` beside the file NAME.
_TEMP_PREFIX, _TEMP_SUFFIX = ".tmp-", ".part"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
TEMPORARY_FILE = re.compile(re.escape(_TEMP_PREFIX) + ".*" + re.escape(_TEMP_SUFFIX))


def check_replaceable(path, *, mark: str, what: str, force=False):
    """Refuses to write over a folder, or over a file autoprep did not write.

    Args:
        path: The file about to be written.
        mark: How every file of this kind that autoprep writes starts.
        what: The kind of file, for the message (e.g. "module").
        force: Replace an existing file even when it does not start with `mark`.

    Raises:
        ArgumentError: `path` is a folder, or (without `force`) an existing file that does
            not start with `mark`.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ArgumentError(f"Cannot write the {what} to {path!r}: it is a folder. Pass a file "
                            "name (-o FILE).")
    if force or not os.path.lexists(path):
        return
    head = b""
    if os.path.isfile(path):  # never opens a FIFO or device
        with open(path, "rb") as handle:
            head = handle.read(len(mark.encode()))
    if head != mark.encode():
        raise ArgumentError(
            f"{path!r} exists and is not a {what} autoprep wrote, so it is not replaced. "
            "Choose another file (-o FILE), or pass --force (force=True) to replace it."
        )


def atomic_write(path, text):
    """Writes `text` (str, or bytes written as they are) to `path` through a temporary file
    and a rename: never half-written.

    The file gets the permissions of the file it replaces, or the usual ones (0666 less the
    umask) when new. Temporary files that a killed process left for `path` are removed.
    """
    directory, name = os.path.split(os.path.abspath(path))
    remove_stale_temporaries(directory, name)
    temporary = os.path.join(directory, f"{_TEMP_PREFIX}{_HOST}-{os.getpid()}-"
                                        f"{secrets.token_hex(4)}-{name}{_TEMP_SUFFIX}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    try:
        try:
            os.fchmod(fd, stat.S_IMODE(os.stat(path).st_mode))
        except FileNotFoundError:
            pass
        how = {"mode": "wb"} if isinstance(text, bytes) else {"mode": "w", "encoding": "utf-8"}
        with os.fdopen(fd, **how) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def atomic_create(path, text: str) -> bool:
    """Writes `text` to `path` whole (as `atomic_write`) unless `path` exists: of processes
    creating the same file at once, one wins and the others leave it as it is.

    Returns:
        True when this call created the file.
    """
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f"{_TEMP_PREFIX}{_HOST}-{os.getpid()}-"
                                        f"{secrets.token_hex(4)}-{name}{_TEMP_SUFFIX}")
    with open(temporary, "x", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(temporary, path)  # fails when `path` exists: never replaces it
        return True
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: create it in place, exclusively
        try:
            with open(path, "x", encoding="utf-8") as handle:
                handle.write(text)
            return True
        except FileExistsError:
            return False
    finally:
        os.remove(temporary)


def remove_stale_temporaries(directory, name=None):
    """Removes the temporary files of `atomic_write` in `directory` (for file `name`, or all)
    whose process is gone: a process of this host that no longer runs."""
    pattern = _TEMP_PREFIX + "*-" + ("*" if name is None else glob.escape(name)) + _TEMP_SUFFIX
    for path in glob.glob(os.path.join(glob.escape(os.fspath(directory)), pattern)):
        fields = os.path.basename(path)[len(_TEMP_PREFIX):].split("-", 3)
        host, pid = fields[0], fields[1] if len(fields) == 4 else ""
        if host == _HOST and pid.isdigit() and not _running(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


def _running(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
