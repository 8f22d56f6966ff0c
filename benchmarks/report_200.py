"""Times `autoprep report` on a 200-trial run: synthetic results over the real demo images.

The trials (configs, scores, a few failures with reasons) and the confusion matrices are made
up; the image folder is the embedded digits demo, so the augmentation preview, the class counts
and the doctor run on real images. The report is built as users build it, by the command
`autoprep report RUN_DIR` in a fresh process (TensorFlow import included), `--repeats` times.

Usage:
    python benchmarks/report_200.py [--trials 200] [--repeats 3] [--out results/report_200]

Writes `<out>.json` and `<out>.md` with the seconds (wall and CPU), the machine's load and the
command.
"""

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np

NORMALIZATIONS = ["none", "rescale_01", "rescale_pm1", "per_channel", "per_image", "robust"]
IMBALANCE = ["none", "inverse_frequency", "sqrt_inverse", "oversample", "undersample"]
OPS = {"rotation": 0.5, "zoom": 1.0, "translation": 1.0, "contrast": 1.0, "brightness": 1.0}
FAILED_EVERY = 20  # one trial in 20 fails


def synthetic_trials(n, rng) -> list:
    """`n` trials whose score depends on normalization and rotation, plus noise; some fail."""
    trials = []
    for i in range(n):
        ops = [{"name": op, "intensity": round(float(rng.uniform(0, top)), 3)}
               for op, top in OPS.items() if rng.random() < 0.5]
        config = {"normalization": {"name": str(rng.choice(NORMALIZATIONS))},
                  "augmentation": ops, "imbalance": {"name": str(rng.choice(IMBALANCE))}}
        rotation = next((op["intensity"] for op in ops if op["name"] == "rotation"), 0.0)
        score = (0.6 + 0.25 * (config["normalization"]["name"] != "none") - 0.3 * rotation
                 + rng.normal(0, 0.03))
        failed = i % FAILED_EVERY == FAILED_EVERY - 1
        trials.append({
            "trial_id": f"{i:03d}", "status": "FAILED" if failed else "COMPLETED",
            "score": None if failed else float(np.clip(score, 0, 1)), "config": config,
            "model_hyperparameters": {},
            "message": "Traceback ...\nFailedTrialError: The training loss became nan in epoch 3"
            if failed else None,
        })
    return trials


def write_run(run_dir, data_dir, trials, rng):
    """results.json of a finished run over `data_dir`, the best config fitted on its images."""
    from autoprep.choices.pipeline import Pipeline
    from autoprep.data.decode import read_image_folder
    from autoprep.run.result import TuneResult

    folder = read_image_folder(data_dir)
    best = max((t for t in trials if t["score"] is not None), key=lambda t: t["score"])
    config = Pipeline.from_config(best["config"]).fit(
        folder.images, folder.labels, len(folder.class_names)).get_config()
    k = len(folder.class_names)

    def confusion(accuracy):
        counts = folder.class_counts // 5
        return [[int(c * accuracy) if i == j else int(c * (1 - accuracy) / (k - 1))
                 for j in range(k)] for i, c in enumerate(counts)]

    result = TuneResult(
        best_config=config, best_score=best["score"], objective="balanced_accuracy",
        trials=trials, epochs=8, state="finished", best_trial_id=best["trial_id"],
        test_scores=[0.93, 0.95, 0.94], test_score=0.94, baseline_scores=[0.88, 0.86, 0.9],
        baseline_score=0.88,
        confusion={"validation": confusion(0.95), "test": confusion(0.94),
                   "baseline_test": confusion(0.88)},
        data={"data_dir": os.path.abspath(data_dir), "class_names": folder.class_names,
              "class_counts": folder.class_counts.tolist(),
              "image_size": list(folder.image_size), "channels": folder.channels,
              "skipped": [], "test_size": int(folder.class_counts.sum() // 5), "folds": 1},
    )
    os.makedirs(run_dir, exist_ok=True)
    result.save(run_dir)


def timed_report(run_dir) -> dict:
    """Runs `autoprep report RUN_DIR` in a fresh process: wall and CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autoprep", "report", run_dir], check=True,
                   stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_1min": os.getloadavg()[0]}


def in_process_refresh(run_dir) -> dict:
    """A rewrite as `autoprep tune` does it between trials: in its process, imports done."""
    import autoprep
    from autoprep.report import Refresher

    refresher = Refresher(interval=0)
    result = autoprep.load_result(run_dir)
    refresher.write(result)  # the first one imports TensorFlow, matplotlib and runs the doctor
    started, cpu = time.perf_counter(), time.process_time()
    refresher.write(result)
    return {"wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(time.process_time() - cpu, 2), "load_1min": os.getloadavg()[0]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join("results", "report_200"))
    args = parser.parse_args()
    from autoprep.data.demo import write_digits_folder

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as root:
        data_dir = write_digits_folder(os.path.join(root, "digits"))
        run_dir = os.path.join(root, "run")
        write_run(run_dir, data_dir, synthetic_trials(args.trials, rng), rng)
        runs = [timed_report(run_dir) for _ in range(args.repeats)]
        refresh = in_process_refresh(run_dir)
        size = os.path.getsize(os.path.join(run_dir, "report.html"))
        with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as handle:
            data = json.load(handle)["data"]
    facts = {
        "trials": args.trials,
        "images": f"digits demo: {sum(data['class_counts'])} images "
                  f"{data['image_size'][0]}x{data['image_size'][1]}, "
                  f"{len(data['class_names'])} classes",
        "runs": runs, "best_wall_s": min(r["wall_s"] for r in runs),
        "best_cpu_s": min(r["cpu_s"] for r in runs), "report_bytes": size,
        "refresh_in_tune": refresh,
        "cores": os.cpu_count(), "machine": platform.machine(),
        "python": platform.python_version(),
        "command": shlex.join(["python", "benchmarks/report_200.py", *sys.argv[1:]]),
    }
    with open(args.out + ".json", "w", encoding="utf-8") as handle:
        json.dump(facts, handle, indent=2)
    lines = [
        f"# autoprep report on a {args.trials}-trial run", "",
        f"`autoprep report RUN_DIR` (a fresh process, TensorFlow import included) on "
        f"{args.trials} synthetic trials over the {facts['images']}: best of "
        f"{args.repeats}, **{facts['best_wall_s']:.1f} s** wall, {facts['best_cpu_s']:.1f} s "
        f"CPU, on {facts['cores']} cores ({facts['machine']}, Python {facts['python']}); "
        f"target: under 10 s. The page is {size / 1e6:.2f} MB.", "",
        "Each run (wall and CPU seconds, 1-minute load average of the machine while it ran):", "",
        *[f"- {r['wall_s']} s wall, {r['cpu_s']} s CPU, load {r['load_1min']:.1f}" for r in runs],
        "", f"A rewrite during `autoprep tune` (in its process, imports done, the doctor's "
        f"findings kept from the first report): {refresh['wall_s']} s wall, {refresh['cpu_s']} s "
        f"CPU (load {refresh['load_1min']:.1f}); at most one every "
        "REPORT_REFRESH_SECONDS = 300 s of search.",
        "", "The load average above the number of cores means the machine was shared while "
        "measuring: wall time is then mostly waiting for a core, and the CPU time is the "
        "report's own cost." if max(r["load_1min"] for r in runs) > (os.cpu_count() or 1) else
        "The machine was quiet while measuring.",
        "", f"Command: `{facts['command']}`",
    ]
    with open(args.out + ".md", "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
