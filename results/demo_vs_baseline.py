"""Tuned pipeline vs. raw-pixel baseline on the embedded long-tailed digits (the README demo).

Runs the README's demo command (`autoprep demo`) into a temporary directory, reads its
`results.json` (test score of the best pipeline and of the baseline, both trained on the
development split with the same model and epochs), then retrains both on three more seeds to
show how much of the gap is seed noise. Writes `demo_vs_baseline.json` next to this script.

    python results/demo_vs_baseline.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import keras_tuner as kt
import numpy as np

import autoprep
from autoprep.data import read_image_folder
from autoprep.demo import demo_model
from autoprep.hypermodel import PipelineHyperModel
from autoprep.pipeline import Pipeline
from autoprep.search import BASELINE
from autoprep.splits import make_splits

HERE = os.path.dirname(os.path.abspath(__file__))
EXTRA_SEEDS = (1, 2, 3)


def main():
    with tempfile.TemporaryDirectory() as workdir:
        run_dir = os.path.join(workdir, "demo")
        started = time.time()
        subprocess.run([sys.executable, "-m", "autoprep", "demo", "--out", run_dir], check=True)
        seconds = time.time() - started
        result = autoprep.load_result(run_dir)
        settings = json.load(open(os.path.join(run_dir, "autoprep.json")))["settings"]
        folder = read_image_folder(result.data["data_dir"])
        splits = make_splits(folder.labels, folder.class_names, seed=settings["seed"],
                             validation_split=settings["validation_split"],
                             test_split=settings["test_split"])
        reruns = {"tuned": [], "baseline": []}
        for seed in EXTRA_SEEDS:
            hypermodel = PipelineHyperModel(demo_model, folder, splits, autoprep.SearchSpace(),
                                            objective=result.objective,
                                            batch_size=settings["batch_size"], seed=seed)
            for name, config in (("tuned", Pipeline.from_config(result.best_config).clone()),
                                 ("baseline", Pipeline(**BASELINE))):
                reruns[name].append(
                    hypermodel.test_score(config, kt.HyperParameters(), epochs=result.epochs))
    report = {
        "command": "python results/demo_vs_baseline.py  (runs: autoprep demo)",
        "objective": result.objective,
        "demo_seconds": round(seconds, 1),
        "trials": len(result.trials),
        "epochs": result.epochs,
        "class_counts": result.data["class_counts"],
        "best_pipeline": result.best_config,
        "best_validation_score": result.best_score,
        "test_score": result.test_score,
        "baseline_test_score": result.baseline_score,
        "reruns": {
            "seeds": list(EXTRA_SEEDS),
            **{f"{name}_test_scores": [round(s, 4) for s in scores]
               for name, scores in reruns.items()},
            **{f"{name}_mean": round(float(np.mean(scores)), 4)
               for name, scores in reruns.items()},
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    with open(os.path.join(HERE, "demo_vs_baseline.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({k: report[k] for k in ("test_score", "baseline_test_score", "reruns")},
                     indent=2))


if __name__ == "__main__":
    main()
