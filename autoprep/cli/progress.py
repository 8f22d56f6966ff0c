"""What `autoprep tune` prints: one line per finished trial, also appended to the run's log."""

import functools
import os
import sys
import time

from autoprep.run.convention import recorded
from autoprep.run.files import LOG_FILE, PIPELINE_FILE
from autoprep.run.progress import TrialClock, clock
from autoprep.run.result import seed_text, validation_text
from autoprep.run.rundir import is_run_dir

AFTER_SEARCH = ("re-evaluating the best configurations, then training the chosen pipeline and "
                "the baseline on the development split for the test score")


class Progress:
    """Prints progress lines and appends them, time-stamped, to the run's log file.

    Lines wait in memory until the run directory exists with its run marker and the search
    has opened it (an `--overwrite` run deletes the old log with autoprep's other files
    first), then every `flush` appends them: a folder autoprep refused gets no log.

    Args:
        run_dir: The run directory, holding the log file.
        max_trials: The trial budget, for `trial n/N` and the ETA.
        time_budget: Seconds or None; caps the ETA.
        stream: Where the lines are printed (default stdout).
        after: What follows the last trial, for the line printed then ("": no line).
    """

    def __init__(self, run_dir, *, max_trials, time_budget=None, stream=None,
                 after=AFTER_SEARCH):
        self.run_dir = run_dir
        self.max_trials = max_trials
        self.stream = stream
        self.after = after
        self.clock = TrialClock(max_trials=max_trials, time_budget=time_budget)
        self._pending = []
        self._told_setup = False
        self._planned = False

    def planned(self, plan):
        """The `on_plan` hook of `autoprep.tune`: says the decoding plan; the first model built
        after it starts the first trial's clock (`timed`), not the decoding."""
        self.say(plan.describe())
        self._planned = True

    def timed(self, model_fn):
        """`model_fn`, starting the first trial's clock when it is first called after the plan
        (the images are decoded by then; the call before the plan only probes the model)."""

        @functools.wraps(model_fn)  # its signature too: `hp` is passed when it takes one
        def build(*args, **kwargs):
            if self._planned and not self.clock.durations:
                self.clock.trial_started()
                self._planned = False
            return model_fn(*args, **kwargs)

        return build

    def say(self, text, *, console=True, error=False):
        """Prints `text` (to stderr when `error`) and queues it for the log file."""
        if console:
            print(text, file=sys.stderr if error else (self.stream or sys.stdout), flush=True)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        self._pending.extend(f"{stamp}  {line}" for line in text.splitlines())

    def flush(self):
        """Appends the queued lines to RUN_DIR/autoprep.log (when the run directory exists)."""
        if not self._pending or not is_run_dir(self.run_dir):
            return
        with open(os.path.join(self.run_dir, LOG_FILE), "a", encoding="utf-8") as handle:
            handle.write("\n".join(self._pending) + "\n")
        self._pending = []

    def trial_ended(self, result, record):
        """The `on_trial_end` hook of `autoprep.tune`: one line per finished trial."""
        self.clock.trial_ended()
        validation = result.validation or {}
        if not self._told_setup:
            if validation.get("method", "holdout") != "holdout":
                self.say(f"validation: {validation_text(validation)}")
            if result.seed is not None:
                self.say(seed_text(result.seed))
            convention = recorded(result.data)
            if convention is not None and (convention.normalization or convention.given):
                self.say(f"model input: {convention.describe()}")
        self._told_setup = True
        self.say(self.clock.line(result, record))
        done = len(result.trials)
        if done >= self.max_trials and result.best_config is not None and self.after:
            self.say(f"search done; {self.after}...")
        self.flush()

    def finished(self, result):
        """The closing lines: state, best pipeline, test score against the baseline, files."""
        completed = sum(t["status"] == "COMPLETED" for t in result.trials)
        failed = len(result.trials) - completed
        how = {"stopped": "stopped by the time budget"}.get(result.state, result.state)
        self.say(f"search {how}: {len(result.trials)} trials ({completed} completed, {failed} "
                 f"failed) in {clock(self.clock.elapsed())}")
        self.say(result.summary())
        if result.best_config is not None:
            self.say(f"best pipeline module: {os.path.join(result.run_dir, PIPELINE_FILE)}")
            self.say(f"copy it with: autoprep export {result.run_dir} -o pipeline.py")
        self.flush()
