"""Search the preprocessing of `model.build_model` on the embedded digits, from Python.

    python examples/tune_digits.py

Writes the digits folder to `autoprep_runs/example_data`, searches 10 trials of 8 epochs (it
prints one line per trial and the result) and exports the winning pipeline to
`autoprep_runs/example_pipeline.py`.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model import build_model  # noqa: E402

import autoprep  # noqa: E402
from autoprep.data.demo import write_digits_folder  # noqa: E402

DATA_DIR = os.path.join("autoprep_runs", "example_data")


def main():
    if not os.path.isdir(DATA_DIR):
        write_digits_folder(DATA_DIR)
    space = autoprep.SearchSpace(flip="none")  # digits must not be mirrored
    result = autoprep.tune(build_model, DATA_DIR, max_trials=10, epochs=8, space=space,
                           directory="autoprep_runs", project_name="example", seed=0)
    print("exported:", result.export(os.path.join("autoprep_runs", "example_pipeline.py")))


if __name__ == "__main__":
    main()
