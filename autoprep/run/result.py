"""Result: what a search found, on disk after every trial, and how to load and export it."""

import contextlib
import csv
import dataclasses
import glob
import hashlib
import io
import json
import os
import re
import secrets
import socket
import stat

from autoprep.errors import ArgumentError, RunDirectoryError
from autoprep.run.trial import TrialRecord

RESULTS_FILE = "results.json"
TRIALS_FILE = "trials.csv"
PIPELINE_FILE = "best_pipeline.py"


# A temporary file of `atomic_write`: `.tmp-HOST-PID-TOKEN-NAME.part` beside the file NAME.
_TEMP_PREFIX, _TEMP_SUFFIX = ".tmp-", ".part"
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


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


def atomic_write(path, text: str):
    """Writes `text` to `path` through a temporary file and a rename: never half-written.

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
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


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


@dataclasses.dataclass
class TuneResult:
    """The outcome of `autoprep.tune`, complete or partial.

    Attributes:
        best_config: JSON-ready config of the best pipeline: normalization, augmentation and
            imbalance strategy, with constants learned on the development split (all images
            outside the test split).
        best_score: Validation objective of the chosen pipeline: the mean of its
            re-evaluations when the top configurations were re-evaluated (see `selection`),
            else its trial's score (pooled out-of-fold predictions with several folds).
        best_score_std: Spread of the chosen pipeline's score: the standard deviation over
            its re-evaluations (None without re-evaluation).
        test_score: Objective of the best pipeline on the held-out test split, trained on the
            development split: the mean of `test_scores` (None when not computed).
        baseline_score: The same for raw pixels, no augmentation and no balancing.
        test_scores, baseline_scores: One score per training seed (`final_repeats`).
        objective: The objective's name.
        trials: One `TrialRecord` per finished trial: trial_id, status, score, config, message,
            worker (of a distributed search).
        data: Facts of the data: data_dir, class_names, class_counts, image_size, channels,
            skipped files.
        epochs: Epochs per trial.
        state: "running", "finished", "interrupted" or "stopped" (by the time budget).
        best_trial_id: Keras Tuner's id of the best trial.
        confusion: Confusion matrices (rows: true class, columns: predicted) of the best
            pipeline on "validation" (its trial's pooled predictions of the last epoch) and "test",
            and of the baseline on "baseline_test" (summed over the repeats); a key is absent
            when not recorded (runs of older versions have none).
        validation: How trials were validated: method ("holdout", "cv" or "auto_cv"), folds,
            pooled, reason, train_only_classes.
        selection: How the winner was chosen: rule, and the re-evaluated candidates with
            their scores, mean, std and complexity.
    """

    best_config: dict
    best_score: float
    objective: str
    trials: list
    data: dict
    epochs: int
    test_score: float = None
    baseline_score: float = None
    test_scores: list = None
    baseline_scores: list = None
    state: str = "finished"
    best_trial_id: str = None
    confusion: dict = dataclasses.field(default_factory=dict)
    run_dir: str = None
    best_score_std: float = None
    validation: dict = None
    selection: dict = None

    def __post_init__(self):
        self.trials = [t if isinstance(t, TrialRecord) else TrialRecord.from_dict(t)
                       for t in self.trials]

    @property
    def pipeline(self) -> "Pipeline":  # noqa: F821
        """The best pipeline, fitted (learned constants restored from `best_config`).

        Raises:
            RunDirectoryError: when `best_config` holds keys or values no choice declares
                (a results.json edited by hand or by someone else).
        """
        from autoprep.choices.pipeline import Pipeline

        try:
            return Pipeline.from_config(self.best_config).check_sizes(
                channels=self.data["channels"], num_classes=len(self.data["class_names"])
            )
        except ArgumentError as error:
            where = os.path.join(self.run_dir, RESULTS_FILE) if self.run_dir else "best_config"
            raise RunDirectoryError(
                f"{where}: `best_config` is not a pipeline autoprep wrote: {error} "
                "Rerun the search or restore the file."
            ) from None

    def export(self, path, *, force: bool = False) -> str:
        """Writes the best pipeline as a standalone module that imports only TensorFlow.

        Args:
            path: The module file to write.
            force: Replace `path` even when it is a file autoprep did not write.

        Returns:
            The path written.

        Raises:
            ArgumentError: `path` is a folder, or a file autoprep did not write (without
                `force`).
        """
        from autoprep.data.index import MAX_PIXELS
        from autoprep.export.module import GENERATED_MARK, render_module

        check_replaceable(path, mark=GENERATED_MARK, what="module", force=force)

        info = {
            "objective": self.objective,
            "best_validation_score": self.best_score,
            "test_score": self.test_score,
            "baseline_test_score": self.baseline_score,
            "trials": len(self.trials),
            "epochs": self.epochs,
            "data_dir": self.data.get("data_dir"),
        }
        source = render_module(
            self.pipeline,
            class_names=self.data["class_names"],
            image_size=self.data["image_size"],
            channels=self.data["channels"],
            epochs=self.epochs,
            skipped_files=[path for path, _ in self.data.get("skipped", [])],
            max_pixels=self.data.get("max_pixels", MAX_PIXELS),
            info=info,
        )
        path = os.fspath(path)
        atomic_write(path, source)
        return path

    def report(self, path=None, *, force: bool = False) -> str:
        """Writes the HTML report of this result: one self-contained page with plots.

        Args:
            path: The file to write; default `report.html` in the run directory.
            force: Replace `path` even when it is a file autoprep did not write.

        Returns:
            The path written.
        """
        from autoprep.report import write_report

        return write_report(self, path, force=force)

    def to_dict(self) -> dict:
        state = dataclasses.asdict(self)
        state.pop("run_dir")
        state["trials"] = [trial.to_dict() for trial in self.trials]
        return state

    @classmethod
    def from_dict(cls, state: dict, run_dir=None) -> "TuneResult":
        return cls(**state, run_dir=run_dir)

    def save(self, run_dir, *, module: bool = True):
        """Writes results.json, trials.csv and (with `module`) best_pipeline.py into `run_dir`,
        atomically."""
        atomic_write(os.path.join(run_dir, RESULTS_FILE), json.dumps(self.to_dict(), indent=2))
        atomic_write(os.path.join(run_dir, TRIALS_FILE), trials_csv(self.trials))
        if module and self.best_config is not None:
            self.export(os.path.join(run_dir, PIPELINE_FILE), force=True)  # the run's own file

    def summary(self) -> str:
        """A few lines for a terminal."""
        lines = [f"state: {self.state}", f"objective: {self.objective}"]
        if self.best_config is not None:
            lines.append(f"best pipeline: {summarize(self.best_config)}")
            spread = "" if self.best_score_std is None else (
                f" ± {self.best_score_std:.4f} (std over {self.selection['repeats']} "
                "re-evaluations)")
            lines.append(f"best validation {self.objective}: {self.best_score:.4f}{spread}")
        if self.selection and self.selection.get("reason"):
            lines.append(f"chosen: {self.selection['reason']}")
        if self.validation:
            lines.append(f"validation: {validation_text(self.validation)}")
        if self.test_score is not None:
            lines.append(f"test {self.objective}: {_mean_text(self.test_scores)}")
        if self.baseline_score is not None:
            lines.append(f"baseline test {self.objective} (raw pixels): "
                         f"{_mean_text(self.baseline_scores)}")
        return "\n".join(lines)


def validation_text(validation: dict) -> str:
    """One line saying how trials were validated, e.g. why cross-validation was chosen."""
    if validation["method"] == "holdout":
        text = "one validation split"
    else:
        text = f"pooled out-of-fold predictions of {validation['folds']}-fold cross-validation"
    if validation["method"] == "auto_cv":
        text += f", chosen because {validation['reason']}"
    if validation.get("train_only_classes"):
        text += ("; not validated (kept in training): "
                 + ", ".join(validation["train_only_classes"]))
    return text


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Failure)\b.*?:")


def summarize(config: dict) -> str:
    """A one-line summary of a pipeline config, e.g. `per_channel | rotation=0.1 | oversample`."""
    ops = ", ".join(
        f"{op['name']}={op.get('mode', op.get('intensity'))}" for op in config["augmentation"]
    )
    imbalance = config["imbalance"]
    extras = ", ".join(
        f"{k}={v}" for k, v in imbalance.items() if k != "name" and not k.endswith("_")
    )
    imbalance_text = imbalance["name"] + (f"({extras})" if extras else "")
    return f"{config['normalization']['name']} | {ops or 'no augmentation'} | {imbalance_text}"


def failure_reason(message) -> str:
    """The reason of a failed trial from its traceback: the exception line, unwrapped.

    Keras wraps an error raised inside a layer as `Exception encountered when calling X.call().`
    followed by the original message; the reason is then that message.
    """
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in (message or "").splitlines()]
    lines = [line for line in lines if line]
    exception_lines = [i for i, line in enumerate(lines) if _EXCEPTION_LINE.match(line)]
    if not exception_lines:
        return lines[-1] if lines else ""
    index = exception_lines[-1]
    reason = lines[index]
    if "Exception encountered when calling" in reason and index + 1 < len(lines):
        reason = reason.split(":", 1)[0] + ": " + lines[index + 1]
    return reason


def _mean_text(scores) -> str:
    """`0.9512 (mean of 3 trainings: 0.9400, 0.9600, 0.9536)`, or one score."""
    if len(scores) == 1:
        return f"{scores[0]:.4f}"
    each = ", ".join(f"{score:.4f}" for score in scores)
    return f"{sum(scores) / len(scores):.4f} (mean of {len(scores)} trainings: {each})"


def trials_csv(trials) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial_id", "status", "score", "pipeline", "message", "worker"])
    for trial in trials:
        config = trial.get("config")
        writer.writerow([
            trial["trial_id"],
            trial["status"],
            "" if trial.get("score") is None else trial["score"],
            summarize(config) if config else "",
            failure_reason(trial.get("message")),
            trial.get("worker") or "",
        ])
    return buffer.getvalue()


def find_run_dir(path) -> str:
    """The run directory holding results.json: `path` itself or its only project below it."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, RESULTS_FILE)):
        return path
    candidates = []
    if os.path.isdir(path):
        candidates = [
            os.path.join(path, name)
            for name in sorted(os.listdir(path))
            if os.path.isfile(os.path.join(path, name, RESULTS_FILE))
        ]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(os.path.basename(c) for c in candidates)
        raise RunDirectoryError(
            f"{path!r} holds several searches ({names}); pass one of them to load_result."
        )
    raise RunDirectoryError(
        f"No autoprep results in {path!r}: expected {RESULTS_FILE} there or in one project "
        "folder below it. Results appear after the first trial of a search finishes."
    )


def load_result(path) -> TuneResult:
    """Reloads a finished or partial search from its run (or parent) directory.

    Args:
        path: The run directory (`directory/project_name` of `tune`), or `directory` when it
            holds a single project.

    Raises:
        RunDirectoryError: when no results are found, or several projects match.

    Example:
        >>> result = autoprep.load_result("autoprep_runs/digits")
        >>> result.export("pipeline.py")
    """
    run_dir = find_run_dir(path)
    with open(os.path.join(run_dir, RESULTS_FILE), encoding="utf-8") as handle:
        try:
            state = json.load(handle)
        except json.JSONDecodeError as error:
            raise RunDirectoryError(
                f"{run_dir}/{RESULTS_FILE} is not valid JSON: {error}"
            ) from None
    try:
        return TuneResult.from_dict(state, run_dir=run_dir)
    except (TypeError, ValueError, AttributeError) as error:  # a results.json edited by hand
        raise RunDirectoryError(
            f"{run_dir}/{RESULTS_FILE} is not a results file this autoprep can read: {error}"
        ) from None
