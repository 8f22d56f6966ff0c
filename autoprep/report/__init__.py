"""The morning report: one self-contained HTML page about a run, finished or not.

`build_report(result)` reads only the `TuneResult` (results.json), the image folder it names
and, for the augmentation preview and the class counts, the exported module of the best
pipeline. Sections: the answer, the search history, what mattered, the augmentation preview,
classes, the doctor's data findings. A section that cannot be built says why; the rest of the
page is still written. Images are PNG data URIs; the page runs no JavaScript.

Importing this package imports neither TensorFlow nor matplotlib; building a report does.
"""

import contextlib
import datetime
import os
import time

from autoprep._text import counted
from autoprep.report.findings import doctor_report
from autoprep.run.files import REPORT_FILE
from autoprep.run.result import seed_text


def report_path(run_dir) -> str:
    return os.path.join(os.fspath(run_dir), REPORT_FILE)


def write_report(result, path=None, *, doctor="auto", force=False) -> str:
    """Builds the report of `result` and writes it (atomically) to `path`.

    Args:
        result: A `TuneResult` (e.g. from `autoprep.load_result(run_dir)`).
        path: Where to write; default `RUN_DIR/report.html`.
        doctor: "auto" runs the doctor's data checks when that is cheap (`doctor_report`);
            a `doctor.Report` is shown as is; None skips them.
        force: Replace `path` even when it is a file autoprep did not write (the default
            `RUN_DIR/report.html` is the run's own file and always replaced).

    Returns:
        The path written.
    """
    from autoprep._files import atomic_write, check_replaceable
    from autoprep.report.page import REPORT_MARK

    if path is None:
        if result.run_dir is None:
            from autoprep.errors import ArgumentError

            raise ArgumentError("`path` is required: this result has no run directory. "
                                "Received: path=None")
        path, force = report_path(result.run_dir), True
    path = os.fspath(path)
    check_replaceable(path, mark=REPORT_MARK, what="report", force=force)
    atomic_write(path, build_report(result, doctor=doctor))
    return path


class Refresher:
    """Rewrites a running search's report after a trial, at most every `interval` seconds.

    The doctor runs once (when cheap) and its findings are reused. A failure to build the
    report never stops the search: `trial_ended` and `write` return a line saying what
    happened, with the time the report took (its cost to the search).

    Args:
        interval: Seconds between two refreshes during the search.
    """

    def __init__(self, *, interval: float = 300.0):
        self.interval = interval
        self.last = time.monotonic()
        self.seconds = []  # time each report took
        self._doctor = "auto"

    def trial_ended(self, result):
        """Refreshes the report when `interval` has passed; returns a log line or None."""
        if time.monotonic() - self.last < self.interval:
            return None
        return self.write(result)

    def write(self, result) -> str:
        """Writes RUN_DIR/report.html now; returns a line for the log."""
        started = time.monotonic()
        try:
            with _random_state_kept():  # the search's next trials draw as without the report
                if self._doctor == "auto":
                    self._doctor = doctor_report(result)
                path = write_report(result, doctor=self._doctor)
        except Exception as error:  # the report must never cost the search
            return f"report not written: {type(error).__name__}: {error}"
        finally:
            self.last = time.monotonic()
        self.seconds.append(self.last - started)
        return f"report: {path} (written in {self.seconds[-1]:.1f} s)"


@contextlib.contextmanager
def _random_state_kept():
    """Restores Python's and NumPy's global random state (Keras seeds new layers from them)."""
    import random

    import numpy as np

    python_state, numpy_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def build_report(result, *, doctor="auto") -> str:
    """The report of `result` as one HTML document (a str)."""
    from autoprep.report import page, sections

    context = sections.Context(result, doctor=doctor)
    built = [(anchor, title, sections.safely(builder, context))
             for anchor, title, builder in sections.SECTIONS]
    name = os.path.basename(os.path.normpath(result.run_dir or "")) or "autoprep run"
    return page.page(f"autoprep report: {name}", _meta(result), built)


def _meta(result) -> list:
    data = result.data or {}
    completed = sum(t.get("status") == "COMPLETED" for t in result.trials)
    state = {"stopped": "stopped by the time budget"}.get(result.state, result.state)
    lines = [
        f"run {result.run_dir or '?'} · search {state} · "
        f"{len(result.trials)} trials ({completed} completed, "
        f"{len(result.trials) - completed} failed), {counted(result.epochs, 'epoch')} each · "
        f"objective: {result.objective}",
        f"data {data.get('data_dir', '?')}: {len(data.get('class_names', []))} classes, "
        f"{sum(data.get('class_counts', []))} images"
        + (f", {data['image_size'][0]}x{data['image_size'][1]}" if data.get("image_size") else "")
        + (f", {data.get('channels')} channel(s)" if data.get("channels") else ""),
        "written " + datetime.datetime.now().isoformat(sep=" ", timespec="seconds"),
    ]
    if result.seed is not None:
        lines.insert(2, seed_text(result.seed))
    if result.state == "running":
        lines.append("The search is still running: `autoprep tune` rewrites this page every few "
                     "minutes and at the end.")
    return lines
