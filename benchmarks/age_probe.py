"""What a long search does to the speed of its own process, read with fixed work.

Usage:
    python benchmarks/age_probe.py [--trials 200] [--tuner random|bayesian]
                                   [--out results/age_probe]
    python benchmarks/age_probe.py --smoke --out /tmp/age   # seconds: checks the script
    python benchmarks/age_probe.py --render results/age_probe --findings FILE  # the page again

One `autoprep.tune` in this process, as in benchmarks/soak.py (`--trials` one-epoch trials,
seed 0, a tiny CNN, 320 generated RGB PNGs of 32 pixels). At trial 20, half way and at the end,
`on_trial_end` runs the same fixed workloads (`workloads`) twice: first in a fresh process that
imported the same libraries, ran the workloads twice and froze its objects as a search does
(`gc.freeze`), then in the search's own process. Both run them with the frame stack that
`autoprep.tune` reserves (autoprep/_frame_stack.py). The page's first run (before the
reservation, e625f48) had neither: the young process ran them near the bottom of its frame
stack, and the old one inside the search, where Keras' calls crossed the end of a chunk of
frame stack (results/frame_stack.md). Each workload runs REPS times with Python's automatic
garbage collection on, and REPS times with it off; the page keeps the CPU seconds of the
fastest run. Old / young, one workload at a time, is what the search left in its process for
that kind of work, with the machine held fixed (the two run within a minute); its growth from
trial 20 to the end is the process's age over the night, the measure results/soak.md's "old /
young" reads on whole trials. Before the workloads, the objects Python's collector tracks
outside the frozen ones are counted by type, after a full collection: what every trial leaves
for the collections to walk.
"""

import argparse
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthetic  # noqa: E402
from synthetic import command, libraries, machine, reread, save, tiny_cnn, write_folder  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPS = 7
TOP_TYPES = 8


def workloads() -> dict:
    """name -> a fixed piece of work: Python objects, NumPy, Keras, tf.data, training, a
    collection."""
    import keras
    import numpy as np
    import tensorflow as tf

    from autoprep.search.tf_adapter import custom_gradients_released

    rng = np.random.default_rng(0)
    images = rng.uniform(size=(256, 32, 32, 3)).astype("float32")
    labels = rng.integers(4, size=256)
    matrix = rng.normal(size=(300, 300))

    def python_objects():  # a dict of 60,000 tuples holding lists
        table = {str(i): (i, 2 * i, [i]) for i in range(60_000)}
        return sum(len(key) for key in table)

    def small_dicts():  # 60,000 small dicts made and dropped
        kept = [{"a": i, "b": [i, i]} for i in range(60_000)]
        del kept

    def numpy_product():  # compiled code, no Python objects
        for _ in range(10):
            matrix @ matrix

    def model():
        keras.backend.clear_session()
        built = tiny_cnn((32, 32, 3), 4)
        built.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        return built

    def tf_data():
        dataset = tf.data.Dataset.from_tensor_slices(images).map(
            lambda image: tf.image.flip_left_right(image) * 2.0).batch(32)
        for _ in dataset:
            pass

    def fit():
        with custom_gradients_released():  # as a trial does: no training graph kept
            model().fit(images, labels, epochs=1, batch_size=32, verbose=0)

    return {"python objects": python_objects, "small dicts": small_dicts,
            "numpy product": numpy_product, "keras model": model, "tf.data map": tf_data,
            "one-epoch fit": fit, "full collection": gc.collect}


def measure(reps=REPS) -> dict:
    """name (and name + ", collector off") -> the fastest CPU seconds of `reps` runs."""
    fastest = {}
    work = workloads()
    for _ in range(reps):
        for collector in (True, False):
            for name, function in work.items():
                if not collector:
                    if name == "full collection":
                        continue
                    name += ", collector off"
                    gc.disable()
                start = time.process_time()
                try:
                    function()
                finally:
                    gc.enable()
                seconds = time.process_time() - start
                fastest[name] = min(seconds, fastest.get(name, seconds))
    return fastest


def census() -> dict:
    """Objects the collector tracks outside the frozen ones, after a full collection."""
    gc.collect()
    types = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
    return {"objects": sum(types.values()), "frozen": gc.get_freeze_count(),
            "types": dict(types.most_common(TOP_TYPES))}


def young(reps) -> dict:
    """The workloads in this fresh process, after two warm-up runs and a freeze."""
    import tensorflow  # noqa: F401

    from autoprep._frame_stack import frame_stack_reserved

    reserved = frame_stack_reserved(measure)  # as `autoprep.tune` runs the search's
    reserved(2)
    gc.collect()
    gc.freeze()  # as `autoprep.search.tuners.startup_objects_frozen` does
    return reserved(reps)


class Checkpoints:
    """`on_trial_end`: at the given trial numbers, the young process's figures, then this one's."""

    def __init__(self, numbers, reps):
        self.numbers, self.reps, self.readings = set(numbers), reps, []

    def __call__(self, result, record):
        trial = len(result.trials)
        if trial not in self.numbers:
            return
        done = subprocess.run([sys.executable, os.path.abspath(__file__), "--young",
                               str(self.reps)], capture_output=True, text=True, check=True)
        fresh = json.loads(done.stdout.strip().splitlines()[-1])
        objects = census()
        self.readings.append({"trial": trial, "objects": objects, "young": fresh,
                              "old": measure(self.reps)})
        print(f"trial {trial}: {objects['objects']} objects tracked, not frozen", flush=True)


def markdown(run) -> str:
    readings = run["readings"]
    trials = [reading["trial"] for reading in readings]
    lines = [
        "# A search's process, old against young, on fixed work (issue 17)", "",
        f"One {run['tuner']} search of {run['trials']} one-epoch trials; at trials "
        f"{', '.join(map(str, trials))}, fixed workloads in a fresh process, then in the "
        "search's own (see benchmarks/age_probe.py). CPU seconds, the fastest of "
        f"{run['reps']} runs: old / young, and the old process's seconds.", "",
        "| workload | " + " | ".join(f"old / young, trial {t}" for t in trials) + " | "
        + " | ".join(f"old s, trial {t}" for t in trials) + " |",
        "|---" * (1 + 2 * len(trials)) + "|",
    ]
    for name in readings[0]["old"]:
        ratios = [f"{r['old'][name] / r['young'][name]:.2f}" if r["young"][name] else "-"
                  for r in readings]
        seconds = [f"{r['old'][name]:.4f}" for r in readings]
        lines.append(f"| {name} | " + " | ".join(ratios + seconds) + " |")
    lines += ["", "Objects the collector tracks outside the frozen ones, after a full "
              "collection (the most numerous types):", "",
              "| trial | objects | frozen | most numerous |", "|---|---|---|---|"]
    for reading in readings:
        objects = reading["objects"]
        kinds = ", ".join(f"{name} {count}" for name, count in objects["types"].items())
        lines.append(f"| {reading['trial']} | {objects['objects']} | {objects['frozen']} | "
                     f"{kinds} |")
    return "\n".join(lines + synthetic.findings_lines(run)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--tuner", choices=["random", "bayesian"], default="random")
    parser.add_argument("--out", default="results/age_probe")
    parser.add_argument("--smoke", action="store_true",
                        help="4 trials, checkpoints at 2 and 4, 1 run each: checks the script")
    synthetic.add_render_arguments(parser)
    parser.add_argument("--young", type=int, metavar="REPS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.young:
        print(json.dumps(young(args.young)))
        return
    if args.render:
        run = reread(args.render, args.findings)
        print(save(args.render, run, markdown(run)))
        return
    import autoprep

    trials, reps = (4, 1) if args.smoke else (args.trials, REPS)
    numbers = (2, 4) if args.smoke else sorted({min(20, trials), trials // 2, trials})
    checkpoints = Checkpoints(numbers, reps)
    with tempfile.TemporaryDirectory() as scratch:
        data = write_folder(os.path.join(scratch, "data"), 320, size=32, classes=4)
        autoprep.tune(tiny_cnn, data, max_trials=trials, epochs=1, tuner=args.tuner, seed=0,
                      directory=scratch, project_name=args.tuner, verbose=0, test_split=0,
                      baseline=False, reevaluate=0, on_trial_end=checkpoints)
    run = {"tuner": args.tuner, "trials": trials, "reps": reps,
           "readings": checkpoints.readings, "command": command(),
           "machine": {**machine(), "libraries": libraries()}}
    print(save(args.out, run, markdown(run)))


if __name__ == "__main__":
    main()
