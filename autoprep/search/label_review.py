"""Mislabeled images after a search, from the predictions it already made: no extra training.

Every trial predicts each validation image with a model that did not train on it. `save`
keeps a completed trial's pooled predictions in its folder (`PREDICTIONS_FILE`: the class
probabilities of `Evaluation.probabilities` in float16 and their int32 image indices, 2 bytes x
classes + 4 bytes per validated image: 240 KB for 10,000 images in 10 classes; every trial
keeps its own, as the winner is known only at the end). Once the winner is chosen, `review`
hands the chosen trial's file to cleanlab (`autoprep.data.mislabeled`, the code of `autoprep
doctor`'s label check): 0.05 s for those 10,000 images, after about 3 s to import cleanlab
(results/label_review.md, `python benchmarks/label_review.py`).

What is checked follows the validation:
- cross-validation ("cv", "auto_cv"): every development image (all but the test split; a
  class too small to validate is kept in training and not checked);
- one validation split ("holdout"): its images only (a quarter of the development images at
  the default split), and the result says so. They are predicted out of sample like the folds'
  images, so the list is sound, only shorter; `autoprep doctor` checks every image.

No list (`checked` False, with the reason) when the chosen trial's predictions are not in its
folder (trials of older versions, or run by the workers of a distributed search), when a class
has fewer than `MIN_CLASS_IMAGES` checked images, or when the predictions' balanced accuracy
is below `chance_bar` (the model's mistakes would say more about it than about the labels).
"""

import io
import os
import warnings

import numpy as np

from autoprep._files import atomic_write
from autoprep.data.mislabeled import chance_bar, find_issues
from autoprep.objectives import score_predictions
from autoprep.run.files import PREDICTIONS_FILE

MIN_CLASS_IMAGES = 10  # fewer checked images in a class: its cleanlab threshold is a guess
MAX_LISTED = 1000  # the most suspect files kept in results.json (all are counted: `flagged`)


def save(trial_dir, evaluation):
    """Writes the pooled validation probabilities of `evaluation` (an `Evaluation`) and their
    image indices into the trial's folder."""
    buffer = io.BytesIO()
    np.savez(buffer, indices=np.asarray(evaluation.indices, np.int32),
             probabilities=np.asarray(evaluation.probabilities, np.float16))
    atomic_write(os.path.join(trial_dir, PREDICTIONS_FILE), buffer.getvalue())


def load(trial_dir) -> tuple:
    """(indices, probabilities) saved in a trial's folder, one row per image (a custom
    splitter that validates an image twice: the mean), or None when there is no file."""
    path = os.path.join(trial_dir, PREDICTIONS_FILE)
    if not os.path.isfile(path):
        return None
    with np.load(path) as saved:
        indices, probabilities = saved["indices"], saved["probabilities"].astype(np.float32)
    images, rows = np.unique(indices, return_inverse=True)
    sums = np.zeros((len(images), probabilities.shape[1]), np.float64)
    np.add.at(sums, rows, probabilities)
    return images, sums / np.bincount(rows)[:, None]


def review(trial_dir, *, trial, folder, validation, development) -> dict:
    """cleanlab on the chosen trial's pooled out-of-fold predictions.

    Args:
        trial_dir: The chosen trial's folder.
        trial: Its number (as the log and `show` name it).
        folder: The search's `ImageFolder` (labels, paths, class names).
        validation: How trials were validated (`Splits.describe()`).
        development: The number of development images (all but the test split).

    Returns:
        The JSON-ready `TuneResult.label_issues`: source ("search"), trial, method,
        development, images (checked), out_of_fold_accuracy, checked (False: no list, see
        reason), reason (why not checked, or why only some images were), flagged (how many
        cleanlab flagged), issues (the first `MAX_LISTED` of them as
        `autoprep.data.mislabeled.find_issues` gives them, most likely mislabeled first).
    """
    found = {"source": "search", "trial": trial, "method": validation["method"],
             "development": int(development), "images": 0, "out_of_fold_accuracy": None,
             "checked": False, "reason": None, "flagged": 0, "issues": []}
    saved = load(trial_dir)
    if saved is None:
        found["reason"] = (f"trial {trial} kept no pooled validation predictions in its folder "
                           "(a trial of an older autoprep, or run by a worker of a "
                           "distributed search)")
        return found
    indices, probabilities = saved
    labels = folder.labels[indices]
    found["images"] = len(indices)
    found["reason"] = _not_checked(labels, probabilities, folder.class_names, found)
    if found["reason"] is not None:
        return found
    try:
        issues = find_issues(labels, probabilities, class_names=folder.class_names,
                             paths=[folder.paths[i] for i in indices])
    except Exception as error:  # a side finding: the search's result is kept whatever happens
        found["reason"] = f"cleanlab failed: {type(error).__name__}: {error}"
        return found
    found["checked"], found["flagged"], found["issues"] = True, len(issues), issues[:MAX_LISTED]
    if validation["method"] == "holdout":
        found["reason"] = (f"one validation split: only its {len(indices)} of the {development} "
                           "development images were checked (cross-validation, or autoprep "
                           "doctor, checks them all)")
    return found


def _not_checked(labels, probabilities, class_names, found):
    """Why the predictions cannot tell mislabeled images (None when they can); sets the
    out-of-fold accuracy in `found`."""
    counts = np.bincount(labels, minlength=len(class_names))
    small = [f"{class_names[c]} ({counts[c]})" for c in np.flatnonzero(counts)
             if counts[c] < MIN_CLASS_IMAGES]
    if small:
        return (f"too few validated images in class(es) {', '.join(small)}: cleanlab needs "
                f"at least {MIN_CLASS_IMAGES} of each class")
    with warnings.catch_warnings():  # a class predicted but not validated
        warnings.simplefilter("ignore", UserWarning)
        accuracy = score_predictions("balanced_accuracy", labels, probabilities)
    found["out_of_fold_accuracy"] = round(accuracy, 4)
    bar = chance_bar(np.count_nonzero(counts))
    if accuracy < bar:
        return (f"the chosen pipeline's balanced accuracy on these predictions is "
                f"{accuracy:.2f}, below {bar:.2f}: its mistakes say more about the model than "
                "about the labels")
    return None
