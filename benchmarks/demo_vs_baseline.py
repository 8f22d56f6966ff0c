"""Tuned pipeline vs. raw-pixel baseline on the embedded long-tailed digits (the README demo).

Runs the README's demo command (`autoprep demo`) in a temporary directory and reads its
`results.json`: after the search, the best pipeline and the baseline (raw pixels, no
augmentation, no balancing) are each trained on the development split with the same model
and epochs, three times with different seeds, and scored on the untouched test split.
Writes `results/demo_vs_baseline.json`.

    python benchmarks/demo_vs_baseline.py
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

RESULTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")


def main():
    with tempfile.TemporaryDirectory() as workdir:
        run_dir = os.path.join(workdir, "demo")
        started = time.time()
        subprocess.run([sys.executable, "-m", "autoprep", "demo", "--out", run_dir], check=True)
        seconds = time.time() - started
        with open(os.path.join(run_dir, "results.json")) as handle:
            result = json.load(handle)
    report = {
        "command": "python benchmarks/demo_vs_baseline.py  (runs: autoprep demo)",
        "demo_seconds": round(seconds, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "objective": result["objective"],
        "trials": len(result["trials"]),
        "epochs": result["epochs"],
        "class_counts": result["data"]["class_counts"],
        "best_pipeline": result["best_config"],
        "best_validation_score": result["best_score"],
        "test_score": result["test_score"],
        "test_scores": result["test_scores"],
        "baseline_test_score": result["baseline_score"],
        "baseline_test_scores": result["baseline_scores"],
        "tuned_beats_baseline": result["test_score"] > result["baseline_score"],
    }
    with open(os.path.join(RESULTS, "demo_vs_baseline.json"), "w") as handle:
        json.dump(report, handle, indent=2)
    print(json.dumps({k: report[k] for k in ("test_scores", "baseline_test_scores",
                                             "tuned_beats_baseline", "demo_seconds")}))


if __name__ == "__main__":
    main()
