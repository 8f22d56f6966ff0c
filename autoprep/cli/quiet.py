"""Keeps TensorFlow's start-up lines out of the CLI's output; the one place that does it.

TensorFlow's C++ side logs while it is imported, before absl logging is initialized, so
TF_CPP_MIN_LOG_LEVEL does not reach these lines (TensorFlow 2.21 on a CPU-only machine):

    WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
    I0000 00:00:... port.cc:153] oneDNN custom operations are on. ...
    I0000 00:00:... cudart_stub.cc:31] Could not find cuda drivers on your machine, ...
    I0000 00:00:... cpu_feature_guard.cc:227] This TensorFlow binary is optimized ...
    To enable the following instructions: AVX2 ... rebuild TensorFlow with ...

Later lines (`failed call to cuInit` at the first operation) obey TF_CPP_MIN_LOG_LEVEL=3. So the
CLI sets TF_CPP_MIN_LOG_LEVEL=3 (unless the user asked for more with 0 or 1) and imports
TensorFlow once with file descriptor 2 sent to a temporary file; every captured line that is
not such a start-up note is written back to stderr. The library only sets the level to 2 when
the user has not chosen one (`autoprep/__init__.py`).
"""

import contextlib
import os
import re
import sys

# Start-up notes: the absl preamble, info/warning lines in glog format, and known notes that
# other TensorFlow versions log at error level on machines without a GPU.
_NOTES = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] "
    r"|To enable the following instructions:"
    r"|.*(Unable to register cu|failed call to cuInit|TF-TRT Warning))"
)


def start_up_note(line) -> bool:
    """True for a line TensorFlow logs while starting that says nothing about the user's work."""
    return bool(_NOTES.match(line))


@contextlib.contextmanager
def _stderr_filtered():
    """Sends file descriptor 2 to a temporary file; writes back the lines that are not notes."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode(errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not start_up_note(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def import_tensorflow():
    """Imports TensorFlow without its start-up lines (a no-op once it is imported)."""
    if "tensorflow" in sys.modules:  # too late to change its log level
        return
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") in (None, "2"):  # 2: `import autoprep`'s default
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    with _stderr_filtered():
        import tensorflow  # noqa: F401
