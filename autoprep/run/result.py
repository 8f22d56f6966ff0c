"""Result: what a search found, on disk after every trial, and how to load and export it."""

import copy
import csv
import dataclasses
import io
import json
import os

from autoprep._files import atomic_write
from autoprep._text import counted, summarize
from autoprep.errors import ArgumentError, RunDirectoryError
from autoprep.run.files import PIPELINE_FILE, RESULTS_FILE, TRIALS_FILE
from autoprep.run.trial import TrialRecord, failure_reason, number_of, trial_number


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
        trials: One `TrialRecord` per finished trial: trial_id, number, status, score,
            config, message, worker (of a distributed search).
        data: Facts of the data: data_dir, class_names, class_counts, image_size, channels,
            skipped files.
        epochs: Epochs per trial.
        state: "running", "finished", "interrupted" or "stopped" (by the time budget).
        best_trial_id: Keras Tuner's id of the best trial (`best_trial` is its number).
        confusion: Confusion matrices (rows: true class, columns: predicted) of the best
            pipeline on "validation" (its trial's pooled predictions of the last epoch) and "test",
            and of the baseline on "baseline_test" (summed over the repeats); a key is absent
            when not recorded (runs of older versions have none).
        validation: How trials were validated: method ("holdout", "cv" or "auto_cv"), folds,
            pooled, reason, train_only_classes.
        selection: How the winner was chosen: rule, and the re-evaluated candidates with
            their scores, mean, std and complexity.
        seed: The seed of the search: the one given, or the one drawn for an unseeded run
            (`tune(seed=...)` / `--seed` with it repeats the search). None in runs of older
            versions.
        label_issues: Images that look mislabeled, found by cleanlab in the chosen trial's
            pooled out-of-fold predictions once the search is over (no extra training; see
            `autoprep.search.label_review`): source ("search"), trial, method, development,
            images (checked), out_of_fold_accuracy, checked, reason, and issues: [{path,
            given, suggested, score, suggested_probability}], most likely mislabeled first.
            None before the winner is chosen and in runs of older versions.
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
    seed: int = None
    label_issues: dict = None

    def __post_init__(self):
        self.trials = [t if isinstance(t, TrialRecord) else TrialRecord.from_dict(t)
                       for t in self.trials]

    @property
    def best_trial(self):
        """The number of the best (chosen) trial, as shown in the log, `show` and the report."""
        record = next((t for t in self.trials if t.trial_id == self.best_trial_id), None)
        return record.number if record is not None else trial_number(self.best_trial_id)

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

    # `export` hands the record to the exporter (a layer below: export/module.py never reads
    # this module); `save` writes best_pipeline.py through it. The report, a layer above,
    # is `autoprep.write_report(result)`: the record does not know its consumers.
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
        from autoprep.export.module import write_module

        return write_module(self, path, force=force)

    def to_dict(self) -> dict:
        return copy.deepcopy(self._as_json())

    def _as_json(self) -> dict:
        """The fields as JSON values, sharing the record's own objects (see
        `TrialRecord.as_json`); `run_dir` is where the file is, not in it."""
        state = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                 if field.name != "run_dir"}
        state["trials"] = [trial.as_json() for trial in self.trials]
        return state

    @classmethod
    def from_dict(cls, state: dict, run_dir=None) -> "TuneResult":
        return cls(**state, run_dir=run_dir)

    def save(self, run_dir, *, module: bool = True):
        """Writes results.json, trials.csv and (with `module`) best_pipeline.py into `run_dir`,
        atomically."""
        atomic_write(os.path.join(run_dir, RESULTS_FILE), results_json(self._as_json()))
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
        if self.seed is not None:
            lines.append(seed_text(self.seed))
        if self.test_score is not None:
            lines.append(f"test {self.objective}: {_mean_text(self.test_scores)}")
        if self.baseline_score is not None:
            lines.append(f"baseline test {self.objective} (raw pixels): "
                         f"{_mean_text(self.baseline_scores)}")
        if self.label_issues is not None:
            lines.append(label_issues_text(self.label_issues))
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


def label_issues_text(found: dict) -> str:
    """One line on the images that look mislabeled after the search (`result.label_issues`)."""
    if not found.get("checked"):
        return f"label issues: not looked for: {found.get('reason')}"
    issues = found.get("issues") or []
    scope = (f"{found.get('images')} out-of-fold predictions of trial {found.get('trial')}"
             + (", one validation split only" if found.get("method") == "holdout" else ""))
    if not issues:
        return f"label issues: none found in {scope}"
    top = issues[0]
    flagged = found.get("flagged") or len(issues)
    verb = "looks" if flagged == 1 else "look"
    return (f"label issues: {counted(flagged, 'image')} {verb} mislabeled (top: "
            f"{top['path']} -> {top['suggested']}; cleanlab on {scope})")


def seed_text(seed) -> str:
    """The line that shows a run's seed and how to repeat the run with it."""
    return f"seed: {seed} (--seed {seed}, or tune(seed={seed}), repeats this search)"


def _mean_text(scores) -> str:
    """`0.9512 (mean of 3 trainings: 0.9400, 0.9600, 0.9536)`, or one score."""
    if len(scores) == 1:
        return f"{scores[0]:.4f}"
    each = ", ".join(f"{score:.4f}" for score in scores)
    return f"{sum(scores) / len(scores):.4f} (mean of {len(scores)} trainings: {each})"


def results_json(state: dict) -> str:
    """results.json's text for `state`: indented, each trial on one line of its own.

    Indenting, the standard library encodes in Python; without it, in C. After every trial of
    a 200-trial search, the indented trials took 0.026 s to write, 0.004 s early on: one
    compact line per trial keeps the file readable and its writing about flat.
    """
    fields = []
    for key, value in state.items():
        if key == "trials" and value:
            text = "[\n" + ",\n".join(f"    {json.dumps(trial)}" for trial in value) + "\n  ]"
        else:  # a newline in JSON text is between tokens (strings escape theirs)
            text = json.dumps(value, indent=2).replace("\n", "\n  ")
        fields.append(f"  {json.dumps(key)}: {text}")
    return "{\n" + ",\n".join(fields) + "\n}"


def trials_csv(trials) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["trial", "status", "score", "pipeline", "message", "worker"])
    for trial in trials:
        config = trial.get("config")
        writer.writerow([
            number_of(trial),
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
