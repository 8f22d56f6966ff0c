"""`autoprep.tune`: decode once, split, search with Keras Tuner, refit the best, keep results.

The order of work is the data flow: read the image folder (decoded once), make the stratified
splits, check the user's model, search, then train the best pipeline (and the raw baseline)
on the development split and score both on the untouched test split. Results are written to
the run directory after every trial, so a crash never costs finished trials.
"""

import dataclasses
import hashlib
import json
import math
import os
import secrets
import sys
import threading
import time

import keras
import keras_tuner as kt
import numpy as np

from autoprep import objectives
from autoprep._files import atomic_write
from autoprep._frame_stack import frame_stack_reserved
from autoprep._quiet import known_noise_filtered
from autoprep.choices.pipeline import Pipeline
from autoprep.data import stats
from autoprep.data.decode import read_image_folder
from autoprep.data.index import MAX_PIXELS, index_directory
from autoprep.data.splits import SMALL_VALIDATION, make_splits
from autoprep.data.subset import Subset
from autoprep.errors import ArgumentError, RunDirectoryError
from autoprep.run import rundir
from autoprep.run.files import CACHE_DIR, CONFUSION_FILE, TENSORBOARD_DIR
from autoprep.run.progress import TrialClock
from autoprep.run.result import TuneResult, seed_text, validation_text
from autoprep.run.trial import FINISHED, TrialRecord, TrialStatus, trial_number
from autoprep.search import devices, kt_adapter, label_review, model_inputs, selection
from autoprep.search.hypermodel import TAU_METRIC, PipelineHyperModel, call_model_fn, trial_seed
from autoprep.search.names import check_tuner
from autoprep.search.space import PREFIX, SearchSpace, data_facts
from autoprep.search.tuners import StopSearch, first_values, make_tuner

BASELINE = {"normalization": "none", "augmentation": [], "imbalance": "none"}
SEEDS = 1_000_000  # an unseeded run draws its seed below this: short enough to type again
# The settings that older versions did not store, at the value those versions used: a run
# they wrote resumes when its settings are these (a dimension added to the search space since
# is missing from its stored space: it resumes when that dimension is at its default).
SETTING_DEFAULTS = {"device_input": False, "space": SearchSpace().get_config()}


@known_noise_filtered()
@frame_stack_reserved
def tune(
    model_fn,
    data_dir,
    *,
    max_trials: int = 20,
    epochs: int = 10,
    tuner: str = "bayesian",
    objective: str = "balanced_accuracy",
    image_size=None,
    batch_size: int = 32,
    validation_split: float = None,
    test_split: float = 0.2,
    cv=None,
    space: SearchSpace = None,
    directory="autoprep_runs",
    project_name: str = None,
    overwrite: bool = False,
    seed: int = None,
    verbose: int = 1,
    baseline: bool = True,
    final_repeats: int = 3,
    reevaluate: int = 3,
    time_budget: float = None,
    max_pixels: int = MAX_PIXELS,
    distribution_strategy=None,
    on_trial_end=None,
    memory_limit=None,
    on_plan=None,
    device_input: bool = False,
) -> TuneResult:
    """Searches normalization, augmentation and class-imbalance handling for `model_fn`.

    Args:
        model_fn: `model_fn(input_shape, num_classes)` returning a Keras model, compiled or
            not. If it accepts `hp`, it receives the trial's `keras_tuner.HyperParameters`.
        data_dir: A directory with one sub-folder of images per class.
        max_trials: Number of trials (configurations) to run, counting those already done
            in a resumed run.
        epochs: Training epochs per trial (and for the final refits).
        tuner: "bayesian", "random" or "hyperband".
        objective: "balanced_accuracy", "macro_f1", "accuracy" or "loss", on validation data.
        image_size: (height, width); default the model's input size when it is fixed (an
            `Input((224, 224, 3))`, a backbone built for one size, a KerasHub image
            converter's size), else the images' common size, or their median, scaled down to
            at most 256 pixels on the long side. A model fixed to another size than a given
            one is a `ModelError`.
        batch_size: Training batch size.
        validation_split: Fraction of all images in one validation split (without `cv`).
            Default: 0.2, or cross-validation when that split would be small (see `cv`).
        test_split: Fraction of all images held out for `test_score`; 0 for none.
        cv: None for one validation split, or (without `validation_split`) automatic
            stratified 3-fold cross-validation when a class would have fewer than 20
            validation images in one split of 0.2; an int k for stratified
            k-fold cross-validation; or a scikit-learn splitter. The predictions of all folds
            are pooled and scored once.
        space: An `autoprep.SearchSpace` to fix or narrow dimensions. When the model says
            what it expects of its pixels (preprocessing layers inside it, a Keras
            Applications backbone, a KerasHub image converter), the normalization is fixed to
            that (`result.data["input_convention"]`; see `autoprep.search.model_inputs`)
            unless `space` gives one: then the user's choice wins, with an
            `InputConventionWarning` when it contradicts the model.
        directory, project_name: The run directory is `directory/project_name`; the project
            name defaults to the data directory's name.
        overwrite: Start over instead of resuming an existing run directory.
        seed: Fixes splits, trial sampling, datasets and weight initialization. Default: the
            seed of the run being resumed, else one drawn at random and kept in the run
            directory (shown in the log, `autoprep show`, the report and `result.seed`), so
            that a resumed run keeps its splits and any run can be repeated. Required in a
            distributed search (the chief and every worker make the same splits from it).
        verbose: 0 silent, 1 one line per trial, 2 also Keras Tuner and Keras progress.
            With `on_trial_end`, the caller reports progress and autoprep prints no lines.
        baseline: Also train raw pixels / no augmentation / no balancing for comparison.
        final_repeats: How many times (seeds) the best pipeline and the baseline are trained
            for the test score, which is their mean: one training run is noisy.
        reevaluate: How many of the best configurations (with the search's first,
            data-seeded one) are trained again on reshuffled folds with fresh seeds before the
            winner is declared: the first configuration wins unless another beats it by more
            than one standard error of the difference (training noise plus the validation
            sample's), else the simplest within that noise. 0 keeps the best trial.
        time_budget: Seconds; no trial starts that the budget cannot plausibly fit.
        max_pixels: Image files whose header declares more pixels (height x width) are
            skipped, with that reason, before decoding (default 40 million).
        distribution_strategy: A `tf.distribute.Strategy` for each trial (e.g. several GPUs).
        on_trial_end: Called as `on_trial_end(result, trial)` after every trial, with the
            partial `TuneResult` and the finished trial's record; replaces the progress line.
        memory_limit: Bytes, or a size such as "512M" or "2G": decoded images larger than
            this are memory-mapped from RUN_DIR/cache (reused when the run is resumed) instead
            of held in RAM. Default: a quarter of the machine's RAM.
        on_plan: Called with the `DecodePlan` (image size, estimated decoded bytes, in RAM or
            memory-mapped) before decoding; replaces the first progress line.
        device_input: For a GPU: place the decoded images on it once and gather, augment and
            normalize each training batch inside the training step, instead of in a tf.data
            pipeline on the CPU cores (refused for memory-mapped images and with a
            `distribution_strategy`; trials with MixUp or CutMix keep tf.data).

    Returns:
        A `TuneResult`.

    Raises:
        DataError: bad data directory or too few images for the splits.
        ModelError: `model_fn` fails or builds a model with the wrong number of outputs.
        ArgumentError: bad argument values, or no `seed` in a distributed search.
        RunDirectoryError: the run directory holds a different search (pass `overwrite=True`),
            or is a folder autoprep must not write into (see `autoprep.run.rundir`).

    Example:
        >>> result = autoprep.tune(build_model, "data/", max_trials=10, epochs=5, seed=0)
        >>> result.best_config, result.test_score
        >>> result.export("pipeline.py")
    """
    started = time.monotonic()
    _check_arguments(max_trials=max_trials, epochs=epochs, batch_size=batch_size,
                     final_repeats=final_repeats, time_budget=time_budget, verbose=verbose,
                     reevaluate=reevaluate)
    objectives.check_objective(objective)
    check_tuner(tuner)
    space = space if space is not None else SearchSpace()
    if not isinstance(space, SearchSpace):
        raise ArgumentError(f"`space` must be an autoprep.SearchSpace. Received: {space!r}")
    devices.enable_memory_growth()  # before TensorFlow takes all of a GPU's memory

    project_name = project_name or _default_project_name(data_dir)
    run_dir = os.path.join(os.fspath(directory), project_name)
    worker = _is_worker()  # a worker never opens, locks or clears the chief's run directory
    rundir.check_run_dir(run_dir, data_dir, overwrite=overwrite and not worker)
    seed = _run_seed(seed, run_dir, overwrite=overwrite and not worker)
    keras.utils.set_random_seed(seed)
    rundir.claim_run_dir(run_dir)

    if on_plan is None and verbose and on_trial_end is None:
        on_plan = _print_plan
    # A worker maps its own temporary copy: only the chief writes into the run directory.
    cache_dir = None if worker else os.path.join(run_dir, CACHE_DIR)
    with rundir.locked(run_dir, worker=worker):  # released when tune returns or raises
        # The model is built before decoding: a fixed input shape sets the image size.
        index = index_directory(data_dir, max_pixels=max_pixels)
        planned = model_inputs.planned_shape(index, image_size)
        probe = model_inputs.probe_model(model_fn, planned, len(index.class_names),
                                         size_given=image_size is not None)
        folder = read_image_folder(data_dir, **probe.decode_arguments(planned), index=index,
                                   memory_limit=memory_limit, cache_dir=cache_dir,
                                   on_plan=_plan_reporter(on_plan, probe))
        splits = make_splits(
            folder.labels, folder.class_names, test_split=test_split, cv=cv, seed=seed,
            validation_split=0.2 if validation_split is None else validation_split,
            small_validation=SMALL_VALIDATION if validation_split is None else 0,
        )
        if folder.images.shape[1:] != probe.input_shape:
            call_model_fn(model_fn, folder.images.shape[1:], len(folder.class_names),
                          kt.HyperParameters())
        space, convention = model_inputs.fit_space(space, probe.convention, probe.model)
        settings = _settings(folder, space, objective=objective, tuner=tuner, epochs=epochs,
                             validation_split=validation_split, test_split=test_split, cv=cv,
                             seed=seed, batch_size=batch_size, device_input=device_input)
        run_state = None if worker else rundir.open_run_dir(run_dir, settings, overwrite,
                                                            defaults=SETTING_DEFAULTS)

        hypermodel = PipelineHyperModel(
            model_fn, folder, splits, space, objective=objective, batch_size=batch_size, seed=seed,
            distribution_strategy=distribution_strategy, device_input=device_input,
        )
        after = _test_trainings(test_split=test_split, final_repeats=final_repeats,
                                baseline=baseline)
        stopper = _Stopper(
            TrialClock(max_trials=max_trials, time_budget=time_budget, started=started),
            max_trials=max_trials, time_budget=time_budget, worker=worker,
            reserve=_reserve(after, reevaluate=reevaluate),
        )
        recorder = _Recorder(folder, splits, space, objective=objective, epochs=epochs,
                             run_dir=run_dir, data_dir=data_dir, seed=seed,
                             input_convention=convention)
        reporter = _Reporter(run_dir, verbose=verbose, on_trial_end=on_trial_end)
        if convention.normalization is not None or convention.given:
            reporter.say(f"model input: {convention.describe()}")
        run = _Run(stopper, recorder, reporter)
        if splits.method != "holdout" and verbose and not worker:
            print(f"validation: {validation_text(splits.describe())}", file=sys.stderr,
                  flush=True)
        if not worker:
            reporter.say(seed_text(seed))
        search = make_tuner(
            tuner, hypermodel,
            objective=kt.Objective(objectives.log_name(objective),
                                   objectives.direction(objective)),
            max_trials=max_trials, epochs=epochs, seed=seed,
            first_points=_seed_points(folder, splits, space, seed),
            # open_run_dir already cleared the run directory for `overwrite`.
            directory=os.fspath(directory), project_name=project_name, overwrite=False,
            on_trial_end=run.trial_ended, should_stop=run.should_stop,
            distribution_strategy=distribution_strategy,
        )
        if run.worker:
            return _run_worker(search, run, epochs, verbose)
        _fail_repeatedly_interrupted(search, run_state, run_dir)
        try:
            state = _search(search, run, epochs, verbose)
            run.close()
            result, hp = _choose(search, hypermodel, run, top=reevaluate, after=after,
                                 state=state)
            result.label_issues = _label_issues(search, result, folder, splits)
            if result.best_config is not None and test_split > 0:
                result = _final_scores(result, hp, hypermodel, baseline=baseline,
                                       repeats=final_repeats, verbose=reporter.prints)
        except BaseException:  # Ctrl-C, SIGTERM, repeated failures: keep what is done
            run.close()
            reporter.save(recorder.result(search, state="interrupted"))
            raise
        reporter.save(result)
        return result


def _seed_points(folder, splits, space, seed) -> list:
    """The data-seeded first configurations, from (at most `STATS_IMAGES` of) the training
    images."""
    train = stats.subsample(splits.folds[0][0], seed)
    facts = data_facts(Subset(folder.images)[train], folder.labels[train],
                       len(folder.class_names))
    return [space.hyperparameter_values(point) for point in space.seed_configurations(facts)]


def _print_plan(plan):
    print(plan.describe(), file=sys.stderr, flush=True)


def _plan_reporter(on_plan, probe):
    """`on_plan`, told that the model set the image size or channels when it did."""
    if on_plan is None or not probe.set_by_model:
        return on_plan
    return lambda plan: on_plan(dataclasses.replace(plan, size_reason=probe.set_by_model))


def _search(search, run, epochs, verbose) -> str:
    """Runs Keras Tuner's search loop; returns how it ended ("finished" or "stopped")."""
    # Keras Tuner gives each trial its own log directory and adds its HParams.
    board = keras.callbacks.TensorBoard(os.path.join(run.recorder.run_dir, TENSORBOARD_DIR),
                                        write_graph=False)
    try:
        search.search(epochs=epochs, verbose=verbose if verbose >= 2 else 0, callbacks=[board])
        return "finished"
    except StopSearch:
        return run.stopper.stop_reason


def _run_worker(search, run, epochs, verbose) -> TuneResult:
    """A worker of Keras Tuner's distributed mode: runs the chief's trials, keeps no results."""
    state = _search(search, run, epochs, verbose)
    recorder = run.recorder
    return TuneResult(best_config=None, best_score=None, objective=recorder.objective, trials=[],
                      data=recorder.data_facts(), epochs=recorder.epochs,
                      state=f"worker {state}", run_dir=recorder.run_dir)


def _is_worker() -> bool:
    """True in a Keras Tuner worker process of a distributed search (the chief keeps results)."""
    return kt_adapter.is_distributed_worker()


def _check_arguments(**values):
    rules = {
        "max_trials": lambda v: isinstance(v, int) and v >= 1,
        "epochs": lambda v: isinstance(v, int) and v >= 1,
        "batch_size": lambda v: isinstance(v, int) and v >= 1,
        "final_repeats": lambda v: isinstance(v, int) and v >= 1,
        "time_budget": lambda v: v is None or (isinstance(v, (int, float)) and v > 0),
        "verbose": lambda v: v in (0, 1, 2),
        "reevaluate": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    }
    expected = {"time_budget": "None or seconds > 0", "verbose": "0, 1 or 2",
                "reevaluate": "an int >= 0"}
    for name, value in values.items():
        if not rules[name](value):
            raise ArgumentError(
                f"`{name}` must be {expected.get(name, 'an int >= 1')}. Received: {name}={value!r}"
            )


def _default_project_name(data_dir) -> str:
    name = os.path.basename(os.path.normpath(os.path.abspath(os.fspath(data_dir))))
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "autoprep"


def _run_seed(seed, run_dir, *, overwrite) -> int:
    """The seed of the run: `seed`; else the seed of the run being resumed; else a new one.

    Raises:
        ArgumentError: no `seed` in a distributed search: the chief and the workers, which
            do not read each other's run directories, could not agree on the splits.
        RunDirectoryError: the run to resume was started without a seed (by an older
            version): its splits cannot be made again.
    """
    if seed is not None:
        return seed
    if kt_adapter.is_distributed():
        raise ArgumentError(
            "A distributed search needs a seed: pass the same --seed S (`seed=S`) to the chief "
            "and to every worker, so that they make the same splits. Received: seed=None"
        )
    stored = None if overwrite else rundir.stored_settings(run_dir)
    if stored is None:  # a new run
        return secrets.randbelow(SEEDS)
    if stored.get("seed") is None:
        raise RunDirectoryError(
            f"{run_dir!r} holds a search started without a seed by an older autoprep: its "
            "validation and test splits cannot be made again, so resuming it would score "
            "trials on other images and train on images of its test split. `autoprep show` "
            "and `autoprep export` still read it; start over with --overwrite "
            "(overwrite=True) or choose another run directory."
        )
    return stored["seed"]


def _settings(folder, space, *, objective, tuner, epochs, validation_split, test_split, cv,
              seed, batch_size, device_input) -> dict:
    """The settings a resumed search must share with the run it resumes (in the run marker).

    A key added here gets its former value in `SETTING_DEFAULTS`, so that runs of older
    versions still resume.
    """
    return {
        "data": _data_fingerprint(folder), "space": space.get_config(), "objective": objective,
        "tuner": tuner, "epochs": epochs, "image_size": list(folder.image_size),
        "validation_split": validation_split, "test_split": test_split, "cv": repr(cv),
        "seed": seed, "batch_size": batch_size, "device_input": device_input,
    }


def _test_trainings(*, test_split, final_repeats, baseline) -> int:
    """Trial-long trainings after the choice: the test scores of the chosen pipeline and of
    the baseline, `final_repeats` each (none without a test split)."""
    return final_repeats * (1 + bool(baseline)) if test_split > 0 else 0


def _reserve(after, *, reevaluate) -> int:
    """Trial-long trainings the time budget keeps for after the search: the re-evaluations of
    the `reevaluate` best configurations and the first one, then the `after` test trainings."""
    return after + ((reevaluate + 1) * selection.REPEATS if reevaluate else 0)


def _data_fingerprint(folder) -> dict:
    """The images of a search: folder, classes and a digest of every file's name and label."""
    digest = hashlib.sha256()
    for path, label in zip(folder.paths, folder.labels):
        digest.update(os.fsencode(f"{label}:{path}\n"))  # names need not be UTF-8
    return {
        "data_dir": os.path.abspath(folder.root),
        "class_names": folder.class_names,
        "num_images": len(folder.paths),
        "files_sha256": digest.hexdigest(),
    }


def _fail_repeatedly_interrupted(search, run_state, run_dir):
    """A trial interrupted by a crash is run again once; interrupted again, it is failed."""
    oracle = search.oracle
    for trial_id in kt_adapter.retry_queue(oracle):
        count = run_state["interrupted"].get(trial_id, 0) + 1
        run_state["interrupted"][trial_id] = count
        if count > 1:
            kt_adapter.fail_interrupted_trial(
                oracle, trial_id,
                "The process died twice while running this trial; it is not retried.",
            )
    rundir.write_run_state(run_dir, run_state)


class _Stopper:
    """Job 1, stopping: ends the search at `max_trials` or before the time budget runs out.

    `reserve` counts the trainings that follow the search (re-evaluations, test scores), in
    units of one trial, so the budget keeps room for them.
    """

    def __init__(self, clock, *, max_trials, time_budget, reserve, worker):
        self.clock, self.max_trials, self.time_budget = clock, max_trials, time_budget
        self.reserve, self.worker = reserve, worker
        self.stop_reason = "finished"

    def should_stop(self, search) -> bool:
        self.clock.trial_started()
        if not self.worker:  # a worker's trial count is the chief's business
            oracle = search.oracle
            done = sum(t.status in (TrialStatus.COMPLETED, TrialStatus.FAILED)
                       for t in oracle.trials.values())
            if done >= self.max_trials and not kt_adapter.retry_queue(oracle):
                self.stop_reason = "finished"
                return True
        self.stop_reason = "stopped"
        return not self.fits(1 + self.reserve)

    def fits(self, trials: float) -> bool:
        """Whether `trials` more trial-long trainings fit in the time budget."""
        estimate = self.clock.mean_duration()
        if self.time_budget is None or estimate is None:
            return True
        return self.clock.elapsed() + estimate * trials <= self.time_budget


class _Recorder:
    """Job 2, recording: Keras Tuner's trials as `TrialRecord`s and a `TuneResult`."""

    def __init__(self, folder, splits, space, *, objective, epochs, run_dir, data_dir, seed,
                 input_convention=None):
        self.folder, self.splits, self.space = folder, splits, space
        self.objective, self.epochs, self.run_dir = objective, epochs, run_dir
        self.data_dir, self.seed, self.input_convention = data_dir, seed, input_convention
        self._fitted = {}
        self._records = {}  # trial id: (what the record was made from, the record)

    def trial_record(self, trial, worker=None) -> TrialRecord:
        values = trial.hyperparameters.values
        try:
            config = self.space.pipeline(trial.hyperparameters.copy()).get_config()
        except Exception:  # a space changed by hand; keep the raw values
            config = None
        if config is not None and trial.metrics.exists(TAU_METRIC):
            # The post-hoc adjustment's tau tuned on the trial's validation predictions.
            config["imbalance"]["tau_"] = trial.metrics.get_last_value(TAU_METRIC)
        score = trial.score
        return TrialRecord(
            trial_id=trial.trial_id,
            status=TrialStatus(trial.status),
            score=None if score is None or not math.isfinite(score) else float(score),
            config=config,
            model_hyperparameters={
                k: v for k, v in values.items()
                if not k.startswith(PREFIX) and not k.startswith("tuner/")
            },
            message=trial.message,
            worker=worker,
        )

    def records(self, search) -> list:
        """The finished trials' records in trial order (a resumed oracle reloads its trials in
        the order the file system lists their folders)."""
        oracle = search.oracle
        records = [self._finished_record(t, kt_adapter.trial_worker(oracle, t.trial_id))
                   for t in oracle.trials.values() if t.status in FINISHED]
        return sorted(records, key=lambda r: (r.number is None, r.number or 0, r.trial_id))

    def _finished_record(self, trial, worker) -> TrialRecord:
        """`trial_record`, made again only when the trial changed: every trial's record is
        read after each trial, and a pipeline per record would make that quadratic."""
        made_from = (trial.status, trial.score, trial.message, worker)
        cached = self._records.get(trial.trial_id)
        if cached is None or cached[0] != made_from:
            cached = self._records[trial.trial_id] = (made_from, self.trial_record(trial, worker))
        return cached[1]

    def result(self, search, *, state, chosen=None) -> TuneResult:
        """The search so far; its best trial, or `chosen` = (record, selection, mean, std)."""
        trials = self.records(search)
        best, selection, score, std = chosen or (self.best(trials), None, None, None)
        return TuneResult(
            best_config=None if best is None else self.fitted_config(best),
            best_score=None if best is None else (best.score if score is None else score),
            objective=self.objective,
            trials=trials,
            data=self.data_facts(),
            epochs=self.epochs,
            state=state,
            run_dir=self.run_dir,
            best_trial_id=None if best is None else best.trial_id,
            confusion={} if best is None else _load_confusion(search, best.trial_id),
            best_score_std=std,
            validation=self.splits.describe(),
            selection=selection,
            seed=self.seed,
        )

    def best(self, trials):
        """The record with the best search score, or None."""
        scored = [t for t in trials if t.completed]
        if not scored:
            return None
        return objectives.best(scored, objectives.direction(self.objective),
                               key=lambda t: t.score)

    def fitted_config(self, record) -> dict:
        """The trial's pipeline with constants learned on the development split."""
        key = json.dumps(record.config, sort_keys=True)
        if key not in self._fitted:
            development = self.splits.development
            pipeline = Pipeline.from_config(record.config)
            pipeline.fit(
                Subset(self.folder.images)[development],  # read in chunks, not copied
                self.folder.labels[development],
                len(self.folder.class_names),
            )
            self._fitted[key] = pipeline.get_config()
        return self._fitted[key]

    def data_facts(self) -> dict:
        folder = self.folder
        return {
            "data_dir": os.path.abspath(os.fspath(self.data_dir)),
            "class_names": folder.class_names,
            "class_counts": folder.class_counts.tolist(),
            "image_size": list(folder.image_size),
            "channels": folder.channels,
            "skipped": [list(item) for item in folder.skipped],
            "max_pixels": folder.max_pixels,
            "test_size": int(len(self.splits.test)),
            "folds": len(self.splits.folds),
            # What the model expects of its pixels (absent in runs of older versions).
            "input_convention": None if self.input_convention is None
            else self.input_convention.to_dict(),
        }


class _Reporter:
    """Job 3, saving and reporting: results on disk, a progress line, the user's callback."""

    def __init__(self, run_dir, *, verbose, on_trial_end):
        self.run_dir = run_dir
        self.on_trial_end = on_trial_end
        self.prints = bool(verbose) and on_trial_end is None  # the caller reports otherwise
        self._exported = None  # the best trial and score of the module last written

    def save(self, result):
        """Writes the result; while the search runs, the best pipeline's module only when the
        best trial or its score changed (the final result always writes it)."""
        best = (result.best_trial_id, result.best_score)
        running = result.state == "running"
        result.save(self.run_dir, module=not running or best != self._exported)
        self._exported = best if running else None

    def say(self, text):
        if self.prints:
            print(text, file=sys.stderr, flush=True)

    def trial_ended(self, result, record, clock):
        self.save(result)
        self.say(clock.line(result, record))
        if self.on_trial_end is not None:
            self.on_trial_end(result, record)


class _Run:
    """Follows a search: the tuner's two hooks, wired to the stopping, recording and saving jobs.

    The chief of a distributed search runs no trial: `trial_ended` is called there on the
    oracle server's thread as each worker ends a trial (see `kt_adapter.WorkerTrials`), hence
    the lock; `close` stops the recording before the result after the search is written.
    """

    def __init__(self, stopper, recorder, reporter):
        self.stopper, self.recorder, self.reporter = stopper, recorder, reporter
        self.worker = stopper.worker
        self._lock = threading.Lock()
        self._closed = False

    def should_stop(self, search) -> bool:
        return self.stopper.should_stop(search)

    def trial_ended(self, search, trial, evaluation):
        with self._lock:
            if self._closed:  # a lost worker that came back after the search
                return
            self.stopper.clock.trial_ended()
            _save_confusion(search, trial, evaluation)
            _save_predictions(search, trial, evaluation)
            if self.worker:
                self.reporter.say(f"{search.tuner_id}: trial {trial_number(trial.trial_id)} "
                                  f"{trial.status} score={trial.score}")
                return
            result = self.recorder.result(search, state="running")
            record = next(t for t in result.trials if t.trial_id == trial.trial_id)
            self.reporter.trial_ended(result, record, self.stopper.clock)

    def close(self):
        """Waits for a trial being recorded; records none after."""
        with self._lock:
            self._closed = True


def _choose(search, hypermodel, run, *, top, after, state) -> tuple:
    """Re-evaluates the top configurations and the first one on reshuffled folds with fresh
    seeds (as long as the time budget allows), then applies the one-standard-error rule.

    Args:
        top: How many of the best configurations are re-evaluated (0: none).
        after: Trial-long trainings still to come after the choice (the test scores).

    Returns:
        (result, hp): the `TuneResult` with the chosen pipeline, and its hyperparameters.
    """
    recorder, stopper = run.recorder, run.stopper
    records = recorder.records(search)
    best = recorder.best(records)
    direction = objectives.direction(recorder.objective)
    first = recorder.space.pipeline(first_values(search.oracle)).get_config()
    pool = selection.candidates(records, top=top, direction=direction, default_config=first)
    hps = {t.trial_id: t.hyperparameters for t in search.oracle.trials.values()}
    if best is None or top < 1 or len(pool) < 2:
        return recorder.result(search, state=state), None if best is None else hps[best.trial_id]
    run.reporter.say(f"re-evaluating {len(pool)} configurations {selection.REPEATS} times "
                     "on reshuffled folds...")
    seed = hypermodel.seed
    for repeat in range(1, selection.REPEATS + 1):
        if not stopper.fits(len(pool) + after):
            break
        folds = recorder.splits.reshuffled(None if seed is None else seed + repeat)
        for candidate in pool:
            hp = hps[candidate.trial_id]
            evaluation = hypermodel.evaluate(
                Pipeline.from_config(candidate.config), hp, folds, epochs=recorder.epochs,
                seed=None if seed is None else trial_seed(seed + repeat, hp),
            )
            candidate.add(evaluation)
    if not pool[0].scores:
        run.reporter.say("no time left to re-evaluate: the best trial score wins")
        return recorder.result(search, state=state), hps[best.trial_id]
    winner, reason = selection.one_standard_error(pool, direction=direction,
                                                  objective=recorder.objective)
    run.reporter.say(f"chosen: {reason}")
    record = next(r for r in records if r.trial_id == winner.trial_id)
    chosen = (record, {"rule": "one_standard_error", "repeats": len(winner.scores),
                       "reason": reason, "chosen_trial_id": winner.trial_id,
                       "chosen_trial": winner.number,
                       "candidates": [c.to_dict() for c in pool]},
              winner.mean, winner.std)
    return recorder.result(search, state=state, chosen=chosen), hps[winner.trial_id]


def _save_confusion(search, trial, evaluation):
    """Keeps the trial's validation confusion matrix in its directory (read by `result`)."""
    if trial.status == "COMPLETED" and evaluation is not None and evaluation.confusion is not None:
        path = os.path.join(search.get_trial_dir(trial.trial_id), CONFUSION_FILE)
        atomic_write(path, json.dumps(evaluation.confusion))


def _save_predictions(search, trial, evaluation):
    """Keeps the trial's pooled validation probabilities in its directory (for `review`)."""
    if (trial.status == "COMPLETED" and evaluation is not None
            and evaluation.probabilities is not None):
        label_review.save(search.get_trial_dir(trial.trial_id), evaluation)


def _label_issues(search, result, folder, splits):
    """cleanlab on the chosen trial's pooled out-of-fold predictions (None without one)."""
    if result.best_trial_id is None:
        return None
    return label_review.review(search.get_trial_dir(result.best_trial_id),
                               trial=result.best_trial, folder=folder,
                               validation=splits.describe(),
                               development=len(splits.development))


def _load_confusion(search, trial_id) -> dict:
    """{"validation": matrix} of a trial, or {} when it was not recorded."""
    path = os.path.join(search.get_trial_dir(trial_id), CONFUSION_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        return {"validation": json.load(handle)}


def _final_scores(result, hp, hypermodel, *, baseline, repeats, verbose) -> TuneResult:
    """Trains the best pipeline (and the raw baseline) on the development split `repeats` times
    with different seeds; their test scores and means go into the result."""
    hp = hp.copy()
    if verbose:
        print("training the best pipeline on the development split for the test score...",
              file=sys.stderr, flush=True)
    start = hypermodel.seed
    seeds = [None if start is None else start + repeat for repeat in range(repeats)]

    def scores(config, name):
        evaluations = [hypermodel.test_evaluation(
            Pipeline.from_config(config).clone(), hp, epochs=result.epochs, seed=seed,
            tau=config["imbalance"].get("tau_"),  # the tau chosen on validation
        ) for seed in seeds]
        matrices = [evaluation.confusion for evaluation in evaluations]
        if None not in matrices:  # summed over the repeats
            result.confusion[name] = np.sum(matrices, axis=0).tolist()
        return [evaluation.score for evaluation in evaluations]

    result.test_scores = scores(result.best_config, "test")
    result.test_score = float(np.mean(result.test_scores))
    if baseline:
        result.baseline_scores = scores(Pipeline(**BASELINE).get_config(), "baseline_test")
        result.baseline_score = float(np.mean(result.baseline_scores))
    if verbose:
        print(result.summary(), file=sys.stderr, flush=True)
    return result
