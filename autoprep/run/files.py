"""The run directory's file names, in one table: what autoprep and Keras Tuner write there.

Every module that reads or writes a file of a run directory takes its name from here, and
`rundir` trusts this table alone for what `overwrite` may delete. Standard library only, so
that the CLI reads these names without loading TensorFlow.
"""

import re

from autoprep._files import TEMPORARY_FILE

RUN_FILE = "autoprep.json"  # the run marker, with the search settings and interrupted trials
LOCK_FILE = "autoprep.lock"  # the lock of the one process working in the run directory
LOG_FILE = "autoprep.log"  # the CLI's log of the search
RESULTS_FILE = "results.json"  # the result, rewritten after every trial
TRIALS_FILE = "trials.csv"  # one line per trial
PIPELINE_FILE = "best_pipeline.py"  # the best pipeline's exported module
REPORT_FILE = "report.html"  # the HTML report
CACHE_DIR = "cache"  # memory-mapped decoded images, keyed by the files: kept by `overwrite`
TENSORBOARD_DIR = "tensorboard"  # TensorBoard logs with the HParams of every trial
CONFUSION_FILE = "confusion.json"  # in a trial's folder: its validation confusion matrix
# In a trial's folder: its pooled validation probabilities (float16) and their image indices,
# for the mislabeled images of the chosen trial (`search/label_review.py`).
PREDICTIONS_FILE = "predictions.npz"

# Keras Tuner's names in its project directory (the run directory); `search/kt_adapter.py`
# holds the hook that relies on them and `tests/test_kt_adapter.py` checks it.
ORACLE_FILE = "oracle.json"  # the oracle's state
TRIAL_FILE = "trial.json"  # in a trial's folder
TRIAL_DIR = re.compile(r"trial_\d+")  # a trial's folder (trial.json, weights)
TUNER_FILE = re.compile(r"(tuner\d+|chief)\.json")  # a tuner's state

# What autoprep (and Keras Tuner, for the search state) writes at the top of a run directory.
OWN_FILES = (RUN_FILE, LOCK_FILE, CACHE_DIR, LOG_FILE, RESULTS_FILE, TRIALS_FILE,
             PIPELINE_FILE, ORACLE_FILE, TENSORBOARD_DIR, REPORT_FILE)
OWN_PATTERNS = (
    TUNER_FILE,
    TRIAL_DIR,
    TEMPORARY_FILE,  # a temporary file of an atomic write
)
