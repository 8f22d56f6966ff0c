"""What the report says, computed from a `TuneResult` alone: no TensorFlow, no plotting.

The trial table (one row per completed trial, one column per searched dimension), the search
history, scores grouped by choice, the importance ranking of the dimensions (permutation
importance of a scikit-learn random forest) and per-class recall from confusion matrices.
"""

import dataclasses

import numpy as np

from autoprep import objectives
from autoprep.run.trial import failure_text, number_of

# Below this many completed trials, or this out-of-bag R^2, the ranking is called uncertain.
CONFIDENT_TRIALS = 20
CONFIDENT_R2 = 0.2
MIN_TRIALS_FOR_RANKING = 4
CONFUSION_SOURCES = {
    "validation": "best pipeline, validation split",
    "test": "best pipeline, test split",
    "baseline_test": "raw-pixel baseline, test split",
}


@dataclasses.dataclass
class TrialTable:
    """Completed trials as columns: `columns[name]` holds one value per row of `scores`.

    Attributes:
        scores: The objective of each completed trial, in trial order.
        trial_ids: Keras Tuner's trial ids of the rows.
        columns: Dimension name -> values (str for categories, float for numbers).
    """

    scores: np.ndarray
    trial_ids: list
    columns: dict

    def is_category(self, name) -> bool:
        return any(isinstance(value, str) for value in self.columns[name])

    def varied(self) -> list:
        """The dimensions that took more than one value."""
        return [name for name, values in self.columns.items()
                if len(set(_encoded(values).tolist())) > 1]


def _dimensions(trial) -> dict:
    """Dimension name -> value of one trial's config and model hyperparameters."""
    config = trial["config"]
    values = {"normalization": config["normalization"]["name"]}
    for op in config["augmentation"]:
        values.update(_op_dimensions(op))
    imbalance = config["imbalance"]
    values["imbalance"] = imbalance["name"]
    for key, value in imbalance.items():
        if key != "name" and not key.endswith("_"):
            values[f"imbalance {key}"] = value
    for key, value in trial.get("model_hyperparameters", {}).items():
        values[f"model {key}"] = value
    return values


def _op_dimensions(op) -> dict:
    """An augmentation op's settings: `rotation` for its intensity or mode, `op key` else."""
    return {
        op["name"] if key in ("intensity", "mode") else f"{op['name']} {key}": value
        for key, value in op.items() if key != "name" and not key.endswith("_")
    }


def trial_table(trials) -> TrialTable:
    """The completed, scored trials as a table; an op absent from a trial is off (0 or none)."""
    rows = [t for t in trials if t.get("score") is not None and t.get("config")]
    dims = [_dimensions(t) for t in rows]
    names = list(dict.fromkeys(name for row in dims for name in row))
    augmentation = {name for t in rows for op in t["config"]["augmentation"]
                    for name in _op_dimensions(op)}
    columns = {}
    for name in names:
        present = [row[name] for row in dims if name in row]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            # An absent op is off (0); an absent parameter of another choice is undefined.
            absent = 0.0 if name in augmentation else float("nan")
            columns[name] = [float(row.get(name, absent)) for row in dims]
        else:
            columns[name] = [str(row.get(name, "none")) for row in dims]
    return TrialTable(np.array([t["score"] for t in rows], float), [t["trial_id"] for t in rows],
                      columns)


@dataclasses.dataclass
class History:
    """Trial numbers, their scores (None for a failed trial), best so far, and the failures."""

    scores: list
    best_so_far: list
    failures: list  # (trial number, status, reason)
    numbers: list = None


def history(trials, objective) -> History:
    direction = objectives.direction(objective)
    scores, best, failures, numbers, current = [], [], [], [], None
    for position, trial in enumerate(trials, start=1):
        number = number_of(trial)
        number = number if isinstance(number, int) else position
        numbers.append(number)
        score = trial.get("score")
        scores.append(score)
        if score is not None:
            current = score if current is None else objectives.best([current, score], direction)
        else:
            failures.append((number, trial.get("status", ""), failure_text(trial)))
        best.append(current)
    return History(scores, best, failures, numbers)


def grouped_scores(table: TrialTable, name: str, objective: str) -> list:
    """(value, scores) per value of a categorical dimension, the best mean first."""
    values = np.array(table.columns[name])
    groups = [(v, table.scores[values == v]) for v in dict.fromkeys(values)]
    return objectives.ranked(groups, objectives.direction(objective),
                             key=lambda group: float(np.mean(group[1])))


@dataclasses.dataclass
class Importance:
    """How much each searched dimension matters to the score.

    Attributes:
        ranking: (dimension, mean importance, std) by permutation importance, largest first.
        fixed: Dimensions that never changed (importance undefined).
        r2: Out-of-bag R^2 of the forest: how much of the score variance it explains.
        trials: Completed trials used.
        uncertain: True when there are too few trials or the forest explains too little.
        reason: Why no ranking was computed (then `ranking` is empty).
    """

    ranking: list
    fixed: list
    r2: float = None
    trials: int = 0
    uncertain: bool = True
    reason: str = ""


def importance(table: TrialTable, *, seed: int = 0) -> Importance:
    """Permutation importance of a random forest fitted to predict the score from the dimensions.

    Categorical dimensions are ordinal-coded, so each dimension is one column and permuting it
    measures the whole dimension.
    """
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    varied = table.varied()
    fixed = [name for name in table.columns if name not in varied]
    n = len(table.scores)
    if n < MIN_TRIALS_FOR_RANKING or not varied:
        why = (f"needs at least {MIN_TRIALS_FOR_RANKING} completed trials ({n} so far)"
               if n < MIN_TRIALS_FOR_RANKING else "no dimension changed between trials")
        return Importance([], fixed, trials=n, reason=why)
    features = np.column_stack([_encoded(table.columns[name]) for name in varied])
    forest = RandomForestRegressor(n_estimators=100, min_samples_leaf=2, oob_score=True,
                                   random_state=seed, n_jobs=1)
    forest.fit(features, table.scores)
    permuted = permutation_importance(forest, features, table.scores, n_repeats=5,
                                      random_state=seed, n_jobs=1)
    ranking = sorted(zip(varied, permuted.importances_mean, permuted.importances_std),
                     key=lambda item: -item[1])
    r2 = float(forest.oob_score_)
    return Importance([(name, float(m), float(s)) for name, m, s in ranking], fixed, r2=r2,
                      trials=n, uncertain=n < CONFIDENT_TRIALS or r2 < CONFIDENT_R2)


def _encoded(values) -> np.ndarray:
    if any(isinstance(v, str) for v in values):
        codes = {v: i for i, v in enumerate(sorted(set(values)))}
        return np.array([codes[v] for v in values], float)
    values = np.array(values, float)
    return np.where(np.isnan(values), -1.0, values)  # undefined: its own value, below 0


def recall(matrix) -> list:
    """Per-class recall (None for a class absent from the split) of a confusion matrix."""
    matrix = np.asarray(matrix, float)
    support = matrix.sum(axis=1)
    return [None if s == 0 else float(matrix[i, i] / s) for i, s in enumerate(support)]


def spread(scores) -> dict:
    """Mean, standard deviation (ddof=1), min and max of repeated scores, or {}."""
    if not scores:
        return {}
    values = np.asarray(scores, float)
    std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(values.mean()), "std": std, "min": float(values.min()),
            "max": float(values.max()), "n": len(values)}
