"""What a search costs beside its training, how fast the exported module feeds a model, and how
soon each tuner gets near its best (issue 10, section 3; issue 17, section 2). One run measures
every figure.

Usage:
    python benchmarks/search_cost.py [--trials 16] [--epochs 8]
                                     [--tuners bayesian random hyperband] [--images 4000]
                                     [--repeats 3] [--dir DIR] [--out results/search_cost]
                                     [--before OLD.json]
    python benchmarks/search_cost.py --smoke --out /tmp/smoke   # seconds: checks the script
    python benchmarks/search_cost.py --render results/search_cost  # the page again from its JSON

1. Search overhead. The demo's search (the embedded digits, the demo model, `--trials` x
   `--epochs`, seed 0) runs once per tuner with timing wrappers installed around
   `keras.Model.fit`, `keras.Model.predict` (the validation predictions), and the search's
   other steps: building the trial's pipeline and model, its validation metrics, saving
   results (autoprep's files, Keras Tuner's state, its per-epoch checkpoint and TensorBoard
   logs), and Keras Tuner's choice of the next trial. Time is charged to the innermost wrapped
   call (a profiler's exclusive time), so the parts add up to the search's wall time.
   After the Bayesian search, in its process, each proposal its Gaussian process made is
   made again from the same trials by Keras Tuner's own acquisition optimizer (50 L-BFGS-B
   restarts, a `predict` per point) and by autoprep's batched one: seconds, `predict` calls
   and the acquisition value each reached, on the same fitted process.
2. The exported module's training dataset (`make_datasets(..., seed=0)`, batch 32), with the
   search's chosen augmentation and with augmentation off, in images/s for the first epoch
   (listing, decoding and caching included) and in steady state, against two limits measured
   in the same run on the same training files: tf.data decode-only (list + read + decode, a
   parallel map) and cached uint8 tensors with no work (batches of the decoded array). The
   per-element pipeline of the article in /work/shared/seed/ (decode, standardize and augment
   one image per map call, no cache, no parallelism) is the slow reference. Measured on the
   demo's digits (the search's module) and on `--images` synthetic 64x64 RGB PNGs (the same
   configuration fitted on them).
3. Time to 95 % of the best score: from the search runs of part 1, the seconds (and trials)
   after which each tuner's best trial reached 95 % of the best score of all of them.
With `--before`, the page compares part 1 and part 3 with an earlier run's JSON.
"""

import argparse
import functools
import gc
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save, write_folder  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import keras_tuner as kt  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.gaussian_process import GaussianProcessRegressor  # noqa: E402

import autoprep  # noqa: E402
from autoprep import objectives  # noqa: E402
from autoprep.choices import imbalance  # noqa: E402
from autoprep.choices.pipeline import Pipeline  # noqa: E402
from autoprep.data.decode import read_image_folder  # noqa: E402
from autoprep.data.demo import demo_model, write_digits_folder  # noqa: E402
from autoprep.export.module import render_module  # noqa: E402
from autoprep.run import files  # noqa: E402
from autoprep.run.result import validation_text  # noqa: E402
from autoprep.search import hypermodel, kt_adapter, loop, tuners  # noqa: E402
from autoprep.search.space import SearchSpace  # noqa: E402

BATCH = 32
TARGET_RATIO = 1.10  # search wall time / training and evaluation
TARGET_STEADY = 0.9  # exported module, augmentation off / cached tensors
TARGET_FIRST = 0.8  # exported module's first epoch / decode-only
NEAR_BEST = 0.95
# What the search's time is charged to; every other second of the search is Keras Tuner's loop.
PARTS = ("training", "evaluation", "pipeline", "model", "metrics", "saving", "proposal",
         "search loop")
OVERHEAD = PARTS[2:]
# Inclusive seconds inside the parts above (not added to them): what the overhead is made of.
PROBES = ("full garbage collections", "tf.data map tracing", "model_fn and compile")


class Clock:
    """Charges the time inside wrapped callables to their part, innermost call first.

    `install(owner, attribute, part)` wraps `owner.attribute`; `restore()` undoes every wrap.
    Time is counted only inside the search (the "search loop" part, outermost), so work before
    and after it (decoding, the final training) is left out. Calls made while saving (e.g.
    rebuilding each trial's pipeline for results.json) stay charged to saving.
    `fit_seconds` is the whole time inside `keras.Model.fit`, callbacks included.
    """

    def __init__(self):
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.calls = dict.fromkeys(PARTS, 0)
        self.fit_seconds, self.started, self.proposals = 0.0, None, []
        self._stack, self._mark, self._undo = [], 0.0, []

    def install(self, owner, attribute, part):
        original = getattr(owner, attribute)
        self._undo.append((owner, attribute, owner.__dict__.get(attribute)))
        clock = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if not clock._stack and part != "search loop":
                return original(*args, **kwargs)
            outermost_fit = attribute == "fit" and part == "training" and (
                "training" not in clock._stack)
            clock._enter("saving" if clock._stack and clock._stack[-1] == "saving" else part)
            start = clock._mark
            try:
                return original(*args, **kwargs)
            finally:
                clock._leave()
                if outermost_fit:
                    clock.fit_seconds += clock._mark - start
                if part == "proposal":
                    clock.proposals.append(clock._mark - start)

        setattr(owner, attribute, timed)

    def _enter(self, part):
        now = time.perf_counter()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._mark
        else:
            self.started = self.started or now
        self._stack.append(part)
        self.calls[part] += 1
        self._mark = now

    def _leave(self):
        now = time.perf_counter()
        self.seconds[self._stack.pop()] += now - self._mark
        self._mark = now

    def restore(self):
        for owner, attribute, original in reversed(self._undo):
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)
        self._undo = []


class Probes:
    """Inclusive seconds of a few calls inside the search (while `clock` counts), by probe."""

    def __init__(self, clock):
        self.clock, self.seconds = clock, dict.fromkeys(PROBES, 0.0)
        self._undo, self._started = [], 0.0

    def install(self):
        for owner, attribute, probe in ((tf.data.Dataset, "map", PROBES[1]),
                                        (hypermodel, "call_model_fn", PROBES[2]),
                                        (hypermodel, "ensure_compiled", PROBES[2])):
            self._wrap(owner, attribute, probe)
        gc.callbacks.append(self._collected)

    def _wrap(self, owner, attribute, probe):
        original = getattr(owner, attribute)
        self._undo.append((owner, attribute, original))
        probes = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if probes.clock._stack:
                    probes.seconds[probe] += time.perf_counter() - start

        setattr(owner, attribute, timed)

    def _collected(self, phase, info):
        if phase == "start":
            self._started = time.perf_counter()
        elif info["generation"] == 2 and self.clock._stack:
            self.seconds[PROBES[0]] += time.perf_counter() - self._started

    def restore(self):
        gc.callbacks.remove(self._collected)
        for owner, attribute, original in reversed(self._undo):
            setattr(owner, attribute, original)


def install_wrappers(clock):
    """Wraps the search's steps (see the module docstring) with `clock`."""
    from keras_tuner.src.engine import oracle, tuner, tuner_utils
    from tensorboard.plugins.hparams import api as hparams_api

    logs = [(board, name) for board in (keras.callbacks.TensorBoard, hparams_api.KerasCallback)
            for name in ("set_model", "on_train_begin", "on_train_end", "on_epoch_begin",
                         "on_epoch_end", "on_train_batch_begin", "on_train_batch_end")
            if name in board.__dict__]
    model_hooks = [(tuner.Tuner, "_try_build"), (kt_adapter.OneCollectionPerBuild, "_try_build"),
                   (hypermodel.PipelineHyperModel, "build_with"),
                   (hypermodel.PipelineHyperModel, "seed_trial")]
    pipeline_hooks = [(Pipeline, "fit"), (Pipeline, "train_dataset"), (Pipeline, "eval_dataset"),
                      (SearchSpace, "pipeline"),
                      (hypermodel.PipelineHyperModel, "train_and_predict")]
    metric_hooks = [(hypermodel.PipelineHyperModel, "fit"),
                    (hypermodel.PipelineHyperModel, "evaluate"),
                    (hypermodel.PipelineHyperModel, "score"), (hypermodel, "confusion"),
                    (imbalance.ImbalanceStrategy, "adjust"),
                    (imbalance.PosthocLogitAdjustment, "adjust")]
    saving_hooks = [(tuners._Hooks, "on_trial_end"), (tuners._Hooks, "on_search_begin"),
                    (tuner_utils.SaveBestEpoch, "on_epoch_end"), *logs]
    hooks = {"training": [(keras.Model, "fit")], "evaluation": [(keras.Model, "predict")],
             "model": model_hooks, "pipeline": pipeline_hooks, "metrics": metric_hooks,
             "saving": saving_hooks, "proposal": [(oracle.Oracle, "create_trial")],
             "search loop": [(loop, "_search")]}
    for part, places in hooks.items():
        for owner, attribute in places:
            clock.install(owner, attribute, part)


def instrumented_search(data_dir, run_dir, *, tuner, trials, epochs, **options):
    """One demo-sized search with the clock installed: its parts, trials and whole time.
    `options` go to `autoprep.tune` (the smoke run validates on one split)."""
    clock = Clock()
    install_wrappers(clock)
    probes = Probes(clock)
    probes.install()
    ended = []
    try:
        start = time.perf_counter()
        result = autoprep.tune(
            demo_model, data_dir, max_trials=trials, epochs=epochs, tuner=tuner, seed=0,
            directory=run_dir, project_name=tuner, verbose=0, baseline=False, final_repeats=1,
            reevaluate=0, on_trial_end=lambda result, record: ended.append(
                (time.perf_counter(), record.score, record.status.value)), **options,
        )
        whole = time.perf_counter() - start
    finally:
        probes.restore()
        clock.restore()
    return result, {
        "tuner": tuner, "trials": len(ended), "epochs": epochs,
        "validation": validation_text(result.validation),
        "folds": result.validation.get("folds", 1),
        "search_seconds": sum(clock.seconds.values()), "tune_seconds": whole,
        "fit_inclusive_seconds": clock.fit_seconds, "proposal_seconds": clock.proposals,
        "parts_seconds": dict(clock.seconds), "calls": dict(clock.calls),
        "probes_seconds": dict(probes.seconds),
        "trial_ends": [(t - clock.started, score, status) for t, score, status in ended],
    }


def child_search(tuner, data_dir, out, *, trials, epochs):
    """Runs one search in this process and writes its figures (and the winner) to `out`; after a
    Bayesian search, its proposals made again by both optimizers (`replay_proposals`)."""
    runs = os.path.join(os.path.dirname(out), "runs")
    asked = []  # how many trials there were when the Gaussian process proposed one
    propose = tuners._BatchedAcquisition.populate_space

    def recorded(oracle, trial_id):
        done = sum(t.status == "COMPLETED" for t in oracle.trials.values())
        if done >= oracle.num_initial_points:
            asked.append(len(oracle.trials))
        return propose(oracle, trial_id)

    tuners._BatchedAcquisition.populate_space = recorded
    try:
        result, run = instrumented_search(data_dir, runs, tuner=tuner, trials=trials,
                                          epochs=epochs)
    finally:
        tuners._BatchedAcquisition.populate_space = propose
    run.update(best_config=result.best_config, load_average_end=list(os.getloadavg()))
    if asked:
        objective = kt.Objective(objectives.log_name(result.objective),
                                 objectives.OBJECTIVES[result.objective][0])
        run["proposal_replay"] = replay_proposals(os.path.join(runs, tuner), asked,
                                                  objective=objective, max_trials=trials)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(run, handle)


class _Predictions:
    """Counts `GaussianProcessRegressor.predict` calls while inside."""

    def __enter__(self):
        self.calls, original = 0, GaussianProcessRegressor.predict

        def counted(gpr, *args, **kwargs):
            self.calls += 1
            return original(gpr, *args, **kwargs)

        self._original = original
        GaussianProcessRegressor.predict = counted
        return self

    def __exit__(self, *exc):
        GaussianProcessRegressor.predict = self._original


def replay_proposals(project_dir, asked, *, objective, max_trials) -> list:
    """Each Gaussian process proposal of a finished Bayesian search (after `asked` trials) made
    again from the same trials by Keras Tuner's optimizer and by autoprep's batched one.

    Both oracles reload the run; Keras Tuner's draws its random starts in order, as it would
    have in the search. The acquisition values (lower is better) of both points are computed
    on the process Keras Tuner fitted (the same data, kernel and seed as autoprep's).
    """
    with open(os.path.join(project_dir, files.ORACLE_FILE), encoding="utf-8") as handle:
        state = json.load(handle)

    def reloaded(kind):
        oracle = kind(objective=objective, max_trials=max_trials, seed=state["seed"],
                      num_initial_points=state["num_initial_points"])
        oracle._set_project_dir(os.path.dirname(project_dir), os.path.basename(project_dir))
        oracle.reload()
        oracle.ongoing_trials, oracle.verbose = {}, 0
        return oracle

    theirs, ours = reloaded(kt.oracles.BayesianOptimizationOracle), reloaded(
        tuners.BayesianOptimizationOracle)
    ours.prior = SearchSpace().random_values  # the demo's space
    trials = dict(theirs.trials)
    order = sorted(trials, key=int)
    points = {}  # oracle: the unit-cube points it proposed, in order
    for oracle in (theirs, ours):
        points[oracle] = []
        oracle._vector_to_values = functools.partial(_keep_point, points[oracle],
                                                     oracle._vector_to_values)
    replayed = []
    for count in asked:
        theirs.trials = ours.trials = {i: trials[i] for i in order[:count]}
        with _Predictions() as theirs_calls:
            start_time = time.perf_counter()
            theirs.populate_space("replay")
            theirs_seconds = time.perf_counter() - start_time
        with _Predictions() as our_calls:
            start_time = time.perf_counter()
            tuners._BatchedAcquisition.populate_space(ours, "replay")
            our_seconds = time.perf_counter() - start_time
        their_point, our_point = points[theirs][-1], points[ours][-1]
        acquisition = tuners._BatchedAcquisition._acquisition
        replayed.append({
            "trials": count, "keras_tuner_seconds": theirs_seconds,
            "batched_seconds": our_seconds, "keras_tuner_predicts": theirs_calls.calls,
            "batched_predicts": our_calls.calls,
            "keras_tuner_acquisition": float(acquisition(theirs, their_point[None])[0]),
            "batched_acquisition": float(acquisition(theirs, our_point[None])[0]),
            "load_average": os.getloadavg()[0]})
    return replayed


def _keep_point(kept, read, vector):
    kept.append(np.array(vector))
    return read(vector)


def search_run(tuner, digits, workdir, args) -> dict:
    """One search's figures: in a fresh process, so that no search pays for the objects an
    earlier one left (Keras Tuner collects garbage before every trial); the smoke run searches
    in this process, on one validation split."""
    if args.smoke:
        result, run = instrumented_search(digits, os.path.join(workdir, "runs"), tuner=tuner,
                                          trials=args.trials, epochs=args.epochs,
                                          validation_split=0.2, test_split=0)
        return dict(run, best_config=result.best_config)
    out = os.path.join(workdir, f"{tuner}.json")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--trials", str(args.trials),
                    "--epochs", str(args.epochs), "--child", tuner, digits, out], check=True)
    with open(out, encoding="utf-8") as handle:
        return json.load(handle)


def figures_of(run):
    """Ratio and per-trial overhead of one instrumented search."""
    parts, trials = run["parts_seconds"], max(run["trials"], 1)
    trained = parts["training"] + parts["evaluation"]
    overhead = sum(parts[name] for name in OVERHEAD)
    return {"ratio": run["search_seconds"] / trained,
            "overhead_per_trial": overhead / trials,
            "per_trial": {name: parts[name] / trials for name in PARTS}}


# -- 2. The exported module's training dataset -----------------------------------------------
def load_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def epoch_seconds(dataset, epochs):
    """Wall seconds of each full pass over `dataset`, and the images of the last pass."""
    times, images = [], 0
    for _ in range(epochs):
        start, images = time.perf_counter(), 0
        for batch in dataset:
            images += int(tf.shape(batch[0] if isinstance(batch, tuple) else batch)[0])
        times.append(time.perf_counter() - start)
    return times, images


def rates(build, epochs):
    """(first-epoch images/s, steady images/s) of the dataset `build()` returns; the first
    epoch includes `build()` (listing files for the exported module)."""
    start = time.perf_counter()
    dataset = build()
    setup = time.perf_counter() - start
    times, images = epoch_seconds(dataset, epochs)
    steady = statistics.median(times[1:]) if len(times) > 1 else times[0]
    return images / (setup + times[0]), images / steady


def article_dataset(paths, labels, *, channels, image_size, mean, std, augmented):
    """The article's per-element pipeline: one image per map call, no cache, no parallelism.

    Its Example 1 standardizes with the training split's mean and std (its `normalize`
    returns the whole array by mistake; the intended per-image version is used), its Example 2
    is the augmentation (RandomFlip, RandomRotation(0.2), RandomZoom(0.2)) applied per image.
    """
    augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                     keras.layers.RandomRotation(0.2),
                                     keras.layers.RandomZoom(0.2)])

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels,
                                   expand_animations=False)
        return tf.image.resize(image, image_size), label

    def normalize(image, label):
        return (tf.cast(image, tf.float32) - mean) / std, label

    dataset = tf.data.Dataset.from_tensor_slices((paths, labels)).map(decode).map(normalize)
    if augmented:
        dataset = dataset.map(lambda image, label: (augmentation(image, training=True), label))
    return dataset.batch(BATCH)


def decode_only(root):
    """tf.data list + read + decode of every image file under `root`, a parallel map."""
    files = tf.data.Dataset.list_files(os.path.join(root, "*", "*"), shuffle=False)
    return files.map(lambda path: tf.io.decode_image(tf.io.read_file(path),
                                                     expand_animations=False),
                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
                     ).batch(BATCH).prefetch(tf.data.AUTOTUNE)


def write_module(path, config, folder, *, augmentation=True, epochs):
    """Renders the exported module of `config` fitted on `folder` (augmentation off: none)."""
    config = dict(config, augmentation=config["augmentation"] if augmentation else [])
    pipeline = Pipeline.from_config(config).clone()
    pipeline.fit(folder.images, folder.labels, len(folder.class_names))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(render_module(pipeline, class_names=folder.class_names,
                                   image_size=folder.image_size, channels=folder.channels,
                                   epochs=epochs))
    return load_module(path)


def throughput(root, config, workdir, name, *, epochs, repeats, search_epochs):
    """Images/s of the exported module's training dataset and of the limits, on `root`."""
    folder = read_image_folder(root)
    chosen = write_module(os.path.join(workdir, f"{name}_chosen.py"), config, folder,
                          epochs=search_epochs)
    plain = write_module(os.path.join(workdir, f"{name}_plain.py"), config, folder,
                         augmentation=False, epochs=search_epochs)
    paths, labels = plain.list_files(root)
    train, _ = plain.split_files(paths, labels, validation_split=0.2, seed=0)
    train_paths, train_labels = [p for p, _ in train], [y for _, y in train]
    index = {path: i for i, path in enumerate(os.path.join(root, p) for p in folder.paths)}
    cached = folder.images[[index[p] for p in train_paths]]
    mean = cached.mean(axis=(0, 1, 2)).astype("float32")
    std = cached.std(axis=(0, 1, 2)).astype("float32") + 1e-6
    article = functools.partial(article_dataset, train_paths, train_labels,
                                channels=folder.channels, image_size=folder.image_size,
                                mean=mean, std=std)
    builders = {
        "decode-only (tf.data list + read + decode)": lambda: decode_only(root),
        "cached uint8 tensors, no work": lambda: tf.data.Dataset.from_tensor_slices(
            (cached, train_labels)).batch(BATCH).prefetch(tf.data.AUTOTUNE),
        "exported module, augmentation off": lambda: plain.make_datasets(
            root, validation_split=0.2, batch_size=BATCH, seed=0)[0],
        **({"exported module, chosen augmentation": lambda: chosen.make_datasets(
            root, validation_split=0.2, batch_size=BATCH, seed=0)[0]}
           if config["augmentation"] else {}),
        "article, per element, augmentation off": lambda: article(augmented=False),
        "article, per element, its augmentation": lambda: article(augmented=True),
    }
    decode_only(root)  # warm-up: the files in the page cache, tf.data started once
    measured = {key: [] for key in builders}
    for _ in range(repeats):
        for key, build in builders.items():
            measured[key].append(rates(build, epochs if "article" not in key else 2))
    best = {key: [max(first for first, _ in values), max(steady for _, steady in values)]
            for key, values in measured.items()}
    return {"folder": name, "images": len(folder.paths), "train_images": len(train_paths),
            "load_average_end": list(os.getloadavg()),
            "image_shape": list(folder.images.shape[1:]), "augmentation": config["augmentation"],
            "config": config,
            "runs": measured, "best": best}


# -- 3. Time to 95 % of the best score -------------------------------------------------------
def time_to_near_best(runs):
    """For each tuner, the seconds and trials after which its best reached 95 % of the best
    score of all runs (None if never)."""
    scores = [score for run in runs for _, score, _ in run["trial_ends"] if score is not None]
    best = max(scores) if scores else None
    reached = {}
    for run in runs:
        hit = next(((seconds, trial + 1) for trial, (seconds, score, _) in
                    enumerate(run["trial_ends"])
                    if best is not None and score is not None and score >= NEAR_BEST * best),
                   None)
        own = max((s for _, s, _ in run["trial_ends"] if s is not None), default=None)
        reached[run["tuner"]] = {"seconds": None if hit is None else hit[0],
                                 "trials": None if hit is None else hit[1], "own_best": own,
                                 "search_seconds": run["search_seconds"],
                                 "trials_run": run["trials"]}
    return best, reached


# -- The page --------------------------------------------------------------------------------
def git_commit() -> str:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "autoprep"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes in autoprep/" if dirty else "")


def verdict(value, target, *, at_most=False) -> str:
    met = value <= target if at_most else value >= target
    return "met" if met else "**missed**"


def load(run) -> str:
    """The 1-minute load average when a search ended (each runs in its own process)."""
    return f"{run['load_average_end'][0]:.1f}" if "load_average_end" in run else ""


def search_section(runs) -> str:
    rows = []
    for run in runs:
        figures = figures_of(run)
        per = figures["per_trial"]
        rows.append(f"| {run['tuner']} | {run['trials']} | {run['search_seconds']:.1f} | "
                    f"{per['training'] * run['trials']:.1f} | "
                    f"{per['evaluation'] * run['trials']:.1f} | **{figures['ratio']:.3f}** | "
                    f"{figures['overhead_per_trial']:.2f} | "
                    + " | ".join(f"{per[name]:.2f}" for name in OVERHEAD)
                    + f" | {load(run)} |")
    main = figures_of(runs[0])
    return f"""## 1. Search wall time against training and evaluation

The demo's search ({runs[0]['trials']} trials x {runs[0]['epochs']} epochs on the embedded \
digits, the demo model, seed 0; validation: {runs[0]['validation']}), each tuner in a fresh \
process, timed by wrappers around `keras.Model.fit` and `keras.Model.predict` and around every \
other step of the search. "training" is the time inside `model.fit` that no inner wrapper \
claims (Keras' own set-up included); "evaluation" is `model.predict` of the validation images \
after each scored epoch (inside `fit`, through a callback). Overhead per trial, in seconds: \
"pipeline" builds the trial's pipeline and datasets (statistics, class weights, tf.data); \
"model" builds and compiles the model (before fold 0's, `keras.backend.clear_session` and its \
garbage collection); "metrics" pools the predictions and scores them; "saving" writes autoprep's \
results, Keras Tuner's state, its weights checkpoint (Hyperband's trials only) and the \
TensorBoard logs (these two run inside `fit`, as callbacks, and are charged here, not to \
training); "proposal" is Keras Tuner's choice of the next trial; "search loop" is the rest of \
Keras Tuner's loop.

| tuner | trials | search s | training s | evaluation s | search / (training + evaluation) \
| overhead s per trial | {' | '.join(OVERHEAD)} | load at the end |
|---|---|---|---|---|---|---|{'---|' * len(OVERHEAD)}---|
{chr(10).join(rows)}

Target: search wall time / (training + evaluation) <= {TARGET_RATIO} for the demo's search \
({runs[0]['tuner']}): **{main['ratio']:.3f}**, \
{verdict(main['ratio'], TARGET_RATIO, at_most=True)}. \
Counting the whole time inside `model.fit` as training (the checkpoint and TensorBoard \
callbacks included), the ratio is \
{runs[0]['search_seconds'] / (runs[0]['fit_inclusive_seconds']):.3f}.
"""


def gap_section(runs) -> str:
    """What the overhead is made of (the probes), and what the target would take."""
    if not all("probes_seconds" in run for run in runs):
        return ""
    rows = "\n".join(
        f"| {run['tuner']} | {figures_of(run)['overhead_per_trial']:.2f} | "
        + " | ".join(f"{run['probes_seconds'][name] / max(run['trials'], 1):.2f}"
                     for name in PROBES) + " |" for run in runs)
    main = runs[0]
    trials = max(main["trials"], 1)
    figures = figures_of(main)
    trained = (main["parts_seconds"]["training"] + main["parts_seconds"]["evaluation"]) / trials
    budget = (TARGET_RATIO - 1) * trained
    probes = {name: seconds / trials for name, seconds in main["probes_seconds"].items()}
    folds = main["folds"]  # the estimate: a trial's maps traced once, no full collections
    kept = figures["overhead_per_trial"] - probes[PROBES[1]] * (1 - 1 / folds) - probes[PROBES[0]]
    return f"""
### What the overhead is made of

Inclusive seconds per trial inside the parts above (not added to them): every full garbage \
collection (`gc.callbacks`), `tf.data.Dataset.map` (tracing each map function of the trial's \
training and validation datasets, once per fold), and the user's `model_fn` with its \
compilation.

| tuner | overhead s per trial | {' | '.join(PROBES)} |
|---|---|{'---|' * len(PROBES)}
{rows}

The target for {main['tuner']}: at most {budget:.2f} s of overhead per trial \
({TARGET_RATIO - 1:.2f} x {trained:.2f} s of training and evaluation); measured \
{figures['overhead_per_trial']:.2f} s, {figures['overhead_per_trial'] - budget:+.2f} s from it. \
The folds of a trial already share one trace of its augmentation layers \
(`TracedAugmentation`). Tracing the rest of each map function once per trial too, instead of \
once per fold of {folds} (the normalization's learned constants passed as arguments instead of \
captured, so that one trace serves every fold), and full collections that cost nothing (each \
walks what the trials before left behind, issue 17 section 1) would save at most \
{figures['overhead_per_trial'] - kept:.2f} s: at best {kept:.2f} s of overhead would be left, \
a ratio of about {(trained + kept) / trained:.3f}.
"""


def proposal_section(runs) -> str:
    """The Bayesian proposals made again by both optimizers (empty without any)."""
    replay = next((run["proposal_replay"] for run in runs if run.get("proposal_replay")), None)
    if not replay:
        return ""
    rows = "\n".join(
        f"| {r['trials']} | {r['keras_tuner_seconds']:.2f} | {r['keras_tuner_predicts']:,} | "
        f"{r['keras_tuner_acquisition']:.4f} | {r['batched_seconds']:.2f} | "
        f"{r['batched_predicts']:,} | {r['batched_acquisition']:.4f} | "
        f"{r['load_average']:.1f} |" for r in replay)
    theirs = sum(r["keras_tuner_seconds"] for r in replay)
    ours = sum(r["batched_seconds"] for r in replay)
    better = sum(r["batched_acquisition"] < r["keras_tuner_acquisition"] - 1e-6 for r in replay)
    worse = sum(r["batched_acquisition"] > r["keras_tuner_acquisition"] + 1e-6 for r in replay)
    return f"""
### Bayesian proposals, made again from the same trials

After the Bayesian search, in its process, each proposal of its Gaussian process is made again \
from the trials it was made from: by Keras Tuner's optimizer (L-BFGS-B from 50 random starts, \
numerical gradients, one `GaussianProcessRegressor.predict` call per point) and by autoprep's \
(`tuners._BatchedAcquisition`: one `predict` of 4,096 uniform points and 256 draws of the \
space's prior, picked from 1,024 drawn once per search, then L-BFGS-B from the best 5, each \
gradient one `predict` of d + 1 points; BLAS on one thread). The acquisition is Keras \
Tuner's `mean - beta * std` of the negated score (lower is better), both points scored on the \
process Keras Tuner fitted.

| trials before it | Keras Tuner s | its predict calls | its acquisition | batched s \
| its predict calls | its acquisition | load |
|---|---|---|---|---|---|---|---|
{rows}

In all: {theirs:.1f} s against {ours:.1f} s; the batched optimizer reached a better acquisition \
value {better} times, a worse one {worse} times, the same (within 1e-6) \
{len(replay) - better - worse} times.
"""


def before_section(result) -> str:
    """Part 1 and part 3 against an earlier run (`--before`), empty without one."""
    before = result.get("before")
    if not before:
        return ""
    old = {run["tuner"]: run for run in before["search"]}
    rows = []
    for run in result["search"]:
        previous = old.get(run["tuner"])
        if previous is None:
            continue
        for label, figures in (("before", previous), ("now", run)):
            per = figures["per_trial"]
            rows.append(f"| {run['tuner']} | {label} | **{figures['ratio']:.3f}** | "
                        f"{figures['overhead_per_trial']:.2f} | "
                        + " | ".join(f"{per[name]:.2f}" for name in OVERHEAD) + " |")
    threshold = NEAR_BEST * before["best_score"]
    reached = []
    for run in result["search"]:
        previous = before["time_to_95"].get(run["tuner"])
        now = next(((seconds, trial + 1) for trial, (seconds, score, _) in
                    enumerate(run["trial_ends"]) if score is not None and score >= threshold),
                   None)
        then = ("not reached" if not previous or previous["trials"] is None else
                f"trial {previous['trials']}, {previous['seconds']:.0f} s")
        reached.append(f"| {run['tuner']} | {then} | "
                       + ("not reached" if now is None else f"trial {now[1]}, {now[0]:.0f} s")
                       + " |")
    load_then = ", ".join(f"{x:.1f}" for x in before["load_average_start"])
    return f"""
## Against the earlier measurement

The same protocol measured at commit {before['commit']} (load average at its start \
{load_then}). Overhead per trial in seconds, by part.

| tuner | run | search / (training + evaluation) | overhead s per trial | \
{' | '.join(OVERHEAD)} |
|---|---|---|---|{'---|' * len(OVERHEAD)}
{chr(10).join(rows)}

The first trial reaching 95 % of the earlier run's best score ({before['best_score']:.3f}, \
so {threshold:.3f}):

| tuner | before | now |
|---|---|---|
{chr(10).join(reached)}
"""


def chosen_text(augmentation) -> str:
    if not augmentation:
        return "The search chose no augmentation: its module is the augmentation-off one."
    return f"The chosen augmentation: `{json.dumps(augmentation)}`."


def throughput_section(measured) -> str:
    parts = []
    for figures in measured:
        best = figures["best"]
        decode = best["decode-only (tf.data list + read + decode)"][0]
        cached = best["cached uint8 tensors, no work"][1]
        rows = "\n".join(f"| {key} | {first:,.0f} | {steady:,.0f} | {first / decode:.2f}x | "
                         f"{steady / cached:.2f}x |" for key, (first, steady) in best.items())
        off = best["exported module, augmentation off"]
        shape = "x".join(map(str, figures["image_shape"]))
        parts.append(f"""### {figures['folder']}: {figures['images']:,} images of {shape}, \
{figures['train_images']:,} in the training split

| training dataset | first epoch, images/s | steady state, images/s | first epoch / \
decode-only | steady / cached tensors |
|---|---|---|---|---|
{rows}

Targets: steady state with augmentation off >= {TARGET_STEADY}x the cached tensors: \
**{off[1] / cached:.2f}x**, {verdict(off[1] / cached, TARGET_STEADY)}; first epoch >= \
{TARGET_FIRST}x decode-only: **{off[0] / decode:.2f}x**, {verdict(off[0] / decode, TARGET_FIRST)}.
{chosen_text(figures['augmentation'])} Load average (1 minute) at the end: \
{figures['load_average_end'][0]:.1f}.
""")
    return """## 2. The exported module's training dataset

`make_datasets(folder, validation_split=0.2, batch_size=32, seed=0)[0]` of the module exported \
for the search's winner, iterated in Python (`for batch in dataset`). "First epoch" includes \
`make_datasets` (listing the files, reading their headers, decoding the training images once \
into memory); "steady state" is the median of the later epochs. Decode-only lists, reads and \
decodes every image of the folder with a parallel map (no resize, no cache); the cached \
tensors are batches of the decoded training images (`from_tensor_slices(...).batch(32)`, no \
shuffle, no work). The article's pipeline decodes every epoch (no cache): its first epoch \
differs from the later ones only by its set-up (tracing) and noise. Best of the repeats for \
every figure.

""" + "\n".join(parts)


def near_best_section(best, reached) -> str:
    rows = "\n".join(
        f"| {tuner} | {r['trials_run']} | {r['search_seconds']:.0f} | {r['own_best']:.3f} | "
        + ("not reached | |" if r["seconds"] is None else
           f"{r['seconds']:.0f} | {r['trials']} |")
        for tuner, r in reached.items())
    return f"""## 3. Time to 95 % of the best score

The best validation score over every trial of the runs of part 1 (balanced accuracy, same \
splits and seed for every tuner): {best:.3f}; 95 % of it: {NEAR_BEST * best:.3f}. Seconds are \
counted from the start of the search to the end of the first trial that reached it.

| tuner | trials run | search s | its best score | seconds to 95 % | trials to 95 % |
|---|---|---|---|---|---|
{rows}

Hyperband schedules its own trials (`--epochs` is its maximum per trial) and stops when its \
brackets are done: the trial budget caps it, it does not fill it.
"""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--tuners", nargs="+", default=["bayesian", "random", "hyperband"])
    parser.add_argument("--images", type=int, default=4000,
                        help="synthetic 64x64 PNGs for part 2 (0: the digits only)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--throughput-epochs", type=int, default=6)
    parser.add_argument("--dir", help="folder for the synthetic images (kept)")
    parser.add_argument("--out", default="results/search_cost")
    parser.add_argument("--smoke", action="store_true",
                        help="1 trial of 1 epoch on one validation split, one tuner, the digits "
                        "only: checks the script")
    parser.add_argument("--before", metavar="OLD.json",
                        help="an earlier run's JSON: the page compares parts 1 and 3 with it")
    parser.add_argument("--render", metavar="OUT",
                        help="write OUT.md again from OUT.json (the page's text, same figures)")
    parser.add_argument("--child", nargs=3, metavar=("TUNER", "DATA", "OUT"),
                        help=argparse.SUPPRESS)  # one search in this process, for the parent
    args = parser.parse_args(argv)
    if args.smoke:
        args.trials, args.epochs, args.tuners, args.images = 1, 1, args.tuners[:1], 0
        args.repeats, args.throughput_epochs = 1, 2
    if args.render:
        with open(args.render + ".json", encoding="utf-8") as handle:
            result = json.load(handle)
        return print(save(args.render, result, page(result)))
    if args.child:
        return child_search(*args.child, trials=args.trials, epochs=args.epochs)
    before = None
    if args.before:
        with open(args.before, encoding="utf-8") as handle:
            old = json.load(handle)
        before = {key: old[key] for key in ("commit", "search", "best_score", "time_to_95",
                                            "load_average_start")}
        for run in before["search"]:
            run.pop("proposal_replay", None)
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        digits = write_digits_folder(os.path.join(workdir, "digits"))
        runs = [search_run(tuner, digits, workdir, args) for tuner in args.tuners]
        config = runs[0].pop("best_config")
        measured = [throughput(digits, config, workdir, "the demo's digits",
                               epochs=args.throughput_epochs, repeats=args.repeats,
                               search_epochs=args.epochs)]
        if args.images:
            root = write_folder(args.dir or os.path.join(workdir, "synthetic"), args.images)
            measured.append(throughput(root, config, workdir, "synthetic PNGs",
                                       epochs=args.throughput_epochs, repeats=args.repeats,
                                       search_epochs=args.epochs))
    best, reached = time_to_near_best(runs)
    result = {"benchmark": "search_cost", "commit": git_commit(), "settings": vars(args),
              "search": [dict(run, **figures_of(run)) for run in runs],
              "throughput": measured, "best_score": best, "time_to_95": reached,
              "load_average_start": list(load_start), "machine": machine(),
              "command": command(), **({"before": before} if before else {})}
    print(save(args.out, result, page(result)))


def page(result) -> str:
    """The results page of `result` (the JSON the run wrote)."""
    load_start = ", ".join(f"{x:.1f}" for x in result["load_average_start"])
    return (f"# What a search costs beside its training (issue 10, section 3; issue 17, "
            f"section 2)\n\n"
            f"Measured at commit {result['commit']}; load average at the start {load_start}.\n\n"
            + search_section(result["search"]) + gap_section(result["search"])
            + proposal_section(result["search"])
            + before_section(result) + "\n" + throughput_section(result["throughput"])
            + "\n" + near_best_section(result["best_score"], result["time_to_95"]))


if __name__ == "__main__":
    main()
