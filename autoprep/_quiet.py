"""Keeps what the user cannot act on out of autoprep's output; the one place that does it.

TensorFlow's start-up lines, when autoprep is the one importing TensorFlow (the CLI, and the
library's public names loaded on first use), and known lines of Keras and TensorFlow, filtered
inside autoprep's own calls only (`known_noise_filtered`), never by a filter installed at import.

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
the user has not chosen one (`autoprep/__init__.py`), and to 3 as the CLI does when its own
first use of a public name imports TensorFlow (`import_quietly`).
"""

import contextlib
import importlib
import logging
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
    import_quietly("tensorflow")


def import_quietly(name: str):
    """Imports module `name`; if that imports TensorFlow, without TensorFlow's start-up lines.

    Once TensorFlow is imported (by the user or earlier), a plain import: its log level is set.
    """
    if "tensorflow" in sys.modules:  # too late to change its log level
        return importlib.import_module(name)
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    if level in (None, "2"):  # 2: `import autoprep`'s default
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    try:
        with _stderr_filtered():
            return importlib.import_module(name)
    finally:
        if "tensorflow" not in sys.modules:  # the import of TensorFlow sets its level: later
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL")
            if level is not None:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = level


# Keras makes a training and a prediction function for every model it fits, and a trial builds
# a fresh model per fold: TensorFlow counts each as a retrace of the same code ("5 out of the
# last 5 calls to <function TensorFlowTrainer._make_function.<locals>.multi_step_on_iterator>
# triggered tf.function retracing"). Not the user's to fix; a retrace of the user's own
# functions still shows.
class _KerasTrainerRetraces(logging.Filter):
    def filter(self, record) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message
                    and "<function TensorFlowTrainer." in message)


@contextlib.contextmanager
def known_noise_filtered():
    """While inside (or in a function it decorates), TensorFlow's warning that Keras' trainer
    functions were retraced is dropped; every other line and warning passes."""
    logger = logging.getLogger("tensorflow")  # TensorFlow's Python logger (`tf.get_logger()`)
    noise = _KerasTrainerRetraces()
    logger.addFilter(noise)
    try:
        yield
    finally:
        logger.removeFilter(noise)
