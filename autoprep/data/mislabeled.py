"""Mislabeled images: cleanlab's confident learning on out-of-fold class probabilities.

Both `autoprep doctor` (probabilities from its own short cross-validated training) and
`autoprep.tune` (the chosen trial's pooled out-of-fold predictions, no extra training) call
`find_issues`. `cleanlab.filter.find_label_issues` estimates how often each class is filed as
each other one and flags the images that account for it; they are ranked by cleanlab's label
quality score (self-confidence: the probability the models give the folder's class; lower is
more suspect). cleanlab is imported only inside `find_issues`.
"""

import warnings

import numpy as np

RELIABLE_SHARE = 0.5  # the models must cover this share of the way from chance to 1


def chance_bar(num_classes) -> float:
    """Out-of-fold balanced accuracy the models must reach for their mistakes to say more about
    the labels than about the models: chance + half the way to 1 (0.75 for 2 classes)."""
    chance = 1.0 / num_classes
    return chance + RELIABLE_SHARE * (1.0 - chance)


def find_issues(labels, probabilities, *, class_names, paths) -> list:
    """cleanlab's flagged images, most likely mislabeled first, as JSON-ready dicts.

    Args:
        labels: The int class of each row: the folder its image is filed in.
        probabilities: (rows, classes) out-of-fold class probabilities (rows are normalized
            to sum to 1 here, e.g. after a float16 round trip).
        class_names: The name of each class index.
        paths: The file of each row, relative to the data directory.

    Returns:
        [{"path", "given", "suggested", "score", "suggested_probability"}]: the file, the
        class it is filed in, the other class it looks like most, cleanlab's label quality
        score (0-1, lower is more suspect) and the probability of the suggested class.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    with warnings.catch_warnings():  # "too few examples" of a class: the list says enough
        warnings.simplefilter("ignore", UserWarning)
        ranked = find_label_issues(labels, probabilities, n_jobs=1,
                                   return_indices_ranked_by="self_confidence")
        scores = get_label_quality_scores(labels, probabilities, method="self_confidence")
    others = probabilities.copy()
    others[np.arange(len(labels)), labels] = -1  # the class it looks like: never its own
    suggested = others.argmax(axis=1)
    return [{"path": paths[i], "given": class_names[labels[i]],
             "suggested": class_names[suggested[i]], "score": round(float(scores[i]), 4),
             "suggested_probability": round(float(probabilities[i, suggested[i]]), 4)}
            for i in ranked]
