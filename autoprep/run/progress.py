"""Progress of a search: elapsed time, trial durations, the ETA and the line per finished trial.

One computation for both audiences: `tune(verbose=1)` prints `TrialClock.line` to stderr, and
`autoprep tune` prints the same line to the terminal and its log file.
"""

import time

from autoprep.data.sizes import half_size, size_option
from autoprep.run.trial import failure_text, trial_name, trial_text


def clock(seconds) -> str:
    """`h:mm:ss` for a number of seconds."""
    seconds = max(0, int(round(seconds)))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrialClock:
    """Times the trials of a search and estimates the time left.

    A trial's duration runs from `trial_started` (or, without that call, from the previous
    trial's end or the clock's start) to `trial_ended`.

    Args:
        max_trials: The trial budget, for `trial n/N` and the ETA.
        time_budget: Seconds or None; the ETA never exceeds what is left of it.
        started: `time.monotonic()` at the start of the search (default: now).
    """

    def __init__(self, *, max_trials, time_budget=None, started=None):
        self.max_trials = max_trials
        self.time_budget = time_budget
        self.started = time.monotonic() if started is None else started
        self.durations = []
        self._mark = self.started

    def trial_started(self):
        self._mark = time.monotonic()

    def trial_ended(self):
        now = time.monotonic()
        self.durations.append(now - self._mark)
        self._mark = now

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def mean_duration(self):
        """The mean duration of the trials timed so far, or None before the first."""
        return sum(self.durations) / len(self.durations) if self.durations else None

    def eta(self, done) -> float:
        """Seconds left for the trials not yet `done`, capped by what is left of the budget."""
        remaining = max(0, self.max_trials - done) * (self.mean_duration() or 0.0)
        if self.time_budget is not None:
            remaining = min(remaining, max(0.0, self.time_budget - self.elapsed()))
        return remaining

    def line(self, result, record) -> str:
        """The progress line of the finished trial `record` of the partial `result`; after the
        first trial timed, a second line says what a trial costs (`cost_text`)."""
        line = trial_line(result, record, max_trials=self.max_trials, elapsed=self.elapsed(),
                          eta=self.eta(len(result.trials)))
        if len(self.durations) != 1:
            return line
        cost = cost_text(self.durations[0], image_size=(result.data or {}).get("image_size"),
                         epochs=result.epochs, folds=(result.data or {}).get("folds", 1))
        return f"{line}\n{cost}" if cost else line


def cost_text(seconds, *, image_size, epochs, folds=1) -> str:
    """What a trial took at its image size and, for large images, what half the size saves
    ("" without an image size)."""
    if not image_size:
        return ""
    height, width = image_size
    trainings = f"{epochs} epoch{'s' * (epochs != 1)}" + (f" on {folds} folds" if folds > 1
                                                           else "")
    text = f"  a trial ({trainings}) took {clock(seconds)} at {height}x{width}"
    half = half_size(image_size)
    if half is not None:
        text += f"; {size_option(half)} would take about a quarter of that"
    return text


def trial_line(result, record, *, max_trials, elapsed, eta) -> str:
    """The progress line of a finished trial: its number, config, score, best so far, elapsed,
    ETA."""
    if record["score"] is None:
        score = f"failed ({failure_text(record)})"
    else:
        score = f"{result.objective}={record['score']:.4f}"
    best = "-" if result.best_score is None else f"{result.best_score:.4f}"
    return (f"{trial_name(record)}/{max_trials}  {trial_text(record)}  {score}  best={best}  "
            f"elapsed {clock(elapsed)}  ETA {clock(eta)}")
