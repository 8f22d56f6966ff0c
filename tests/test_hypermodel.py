"""Compiling the user's model for the labels a pipeline yields."""

import keras
from helpers import tiny_model

from autoprep.search.hypermodel import ensure_compiled


def test_uncompiled_models_get_a_matching_loss():
    probabilities = ensure_compiled(tiny_model((4, 4, 1), 3), one_hot_labels=False)
    assert isinstance(probabilities.loss, keras.losses.SparseCategoricalCrossentropy)
    assert probabilities.loss.get_config()["from_logits"] is False
    logits = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    ensure_compiled(logits, one_hot_labels=False)
    assert logits.loss.get_config()["from_logits"] is True


def test_a_compiled_model_keeps_optimizer_and_logits_when_labels_are_mixed():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    optimizer = keras.optimizers.SGD(0.5)
    model.compile(
        optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    ensure_compiled(model, one_hot_labels=False)
    assert isinstance(model.loss, keras.losses.SparseCategoricalCrossentropy)
    ensure_compiled(model, one_hot_labels=True)
    assert isinstance(model.loss, keras.losses.CategoricalCrossentropy)
    assert model.loss.get_config()["from_logits"] is True and model.optimizer is optimizer


def _scored(imbalance, monkeypatch, per_epoch=None):
    """`evaluate` of a hold-out fold trained 4 epochs whose model outputs [0.7, 0.3] for the
    validation images of class 0 and [0.6, 0.4] for those of class 1 (no training); or trained
    8 epochs (2 scored) with `per_epoch[k]` for every image after the k-th scored epoch."""
    import types

    import numpy as np

    from autoprep.choices.pipeline import Pipeline
    from autoprep.search.hypermodel import PipelineHyperModel

    labels = np.array([0] * 40 + [1] * 10 + [0] * 8 + [1] * 2)
    folder = types.SimpleNamespace(images=np.zeros((60, 2, 2, 1), np.uint8), labels=labels,
                                   class_names=["a", "b"])
    train, val = np.arange(50), np.arange(50, 60)
    hypermodel = PipelineHyperModel(None, folder, None, None, objective="balanced_accuracy",
                                    batch_size=4)

    def train_and_predict(model, pipeline, train, evaluate, *, keep, **kwargs):
        pipeline.fit(folder.images[train], labels[train], 2)
        outputs = np.where(labels[evaluate, None] == 0, [0.7, 0.3], [0.6, 0.4])
        if per_epoch is not None:
            return [np.tile(outputs, (len(evaluate), 1)) for outputs in per_epoch[-keep:]]
        return [outputs] * keep

    monkeypatch.setattr(hypermodel, "train_and_predict", train_and_predict)
    pipeline = Pipeline(imbalance=imbalance)
    model = types.SimpleNamespace(loss=None)
    return hypermodel.evaluate(pipeline, None, [(train, val)], model=model,
                               epochs=4 if per_epoch is None else 8)


def test_a_trial_scores_the_post_hoc_adjustment_at_its_best_tau(monkeypatch):
    plain = _scored("none", monkeypatch)
    assert plain.score == 0.5 and plain.tau is None  # always the majority class
    adjusted = _scored("posthoc_logit_adjustment", monkeypatch)
    # Adjusted by tau * log(0.8 / 0.2): class 1 images flip to class 1 from tau 0.3 on, class
    # 0 images from tau 0.62 on; the grid's 0.5 separates them.
    assert adjusted.tau == 0.5 and adjusted.score == 1.0


def test_an_evaluation_carries_the_confusion_of_the_last_epoch(monkeypatch):
    adjusted = _scored("posthoc_logit_adjustment", monkeypatch)
    assert adjusted.confusion == [[8, 0], [0, 2]]  # rows: true class, after the adjustment
    assert _scored("none", monkeypatch).confusion == [[8, 0], [2, 0]]


def test_an_evaluation_keeps_the_mean_probabilities_of_the_scored_epochs(monkeypatch):
    import numpy as np

    plain = _scored("none", monkeypatch)
    assert plain.indices.tolist() == list(range(50, 60))  # the images, in the order of labels
    assert np.allclose(plain.probabilities[plain.labels == 0], [0.7, 0.3])
    assert plain.probabilities.dtype == np.float32
    # Logits after the post-hoc adjustment: softmax, and the adjusted classes win.
    adjusted = _scored("posthoc_logit_adjustment", monkeypatch)
    assert np.allclose(adjusted.probabilities.sum(axis=1), 1)
    assert (adjusted.probabilities.argmax(axis=1) == adjusted.labels).all()
    # The mean of the scored epochs (the last 2 of 8); the confusion is the last epoch's.
    averaged = _scored("none", monkeypatch, per_epoch=[[0.9, 0.1], [0.1, 0.9]])
    assert np.allclose(averaged.probabilities, [0.5, 0.5])
    assert averaged.confusion == [[0, 8], [0, 2]]
    from autoprep.search.hypermodel import as_probabilities

    logits = np.array([[2.0, 0.0], [0.0, 0.0]])
    assert np.allclose(as_probabilities(logits, True), [[0.8808, 0.1192], [0.5, 0.5]], atol=1e-4)
    assert np.allclose(as_probabilities([[0.2, 0.8]], False), [[0.2, 0.8]])
    assert np.allclose(as_probabilities([[0.2, 0.8]], True), [[0.3543, 0.6457]], atol=1e-4)


def test_the_folds_of_a_trial_share_one_traced_augmentation(monkeypatch):
    import types

    import numpy as np

    from autoprep.choices.augmentation import TracedAugmentation
    from autoprep.choices.pipeline import Pipeline
    from autoprep.search.hypermodel import PipelineHyperModel

    labels = np.arange(30) % 2
    folder = types.SimpleNamespace(images=np.zeros((30, 2, 2, 1), np.uint8), labels=labels,
                                   class_names=["a", "b"])
    hypermodel = PipelineHyperModel(None, folder, None, None, objective="accuracy",
                                    batch_size=4)
    given = []

    def train_and_predict(model, pipeline, train, evaluate, *, keep, augmentation, **kwargs):
        given.append(augmentation)
        return [np.tile([0.5, 0.5], (len(evaluate), 1))] * keep

    monkeypatch.setattr(hypermodel, "train_and_predict", train_and_predict)
    monkeypatch.setattr(hypermodel, "build_with",
                        lambda pipeline, hp: types.SimpleNamespace(loss=None))
    folds = [(np.setdiff1d(np.arange(30), part), part) for part in np.split(np.arange(30), 3)]
    augmenting = Pipeline(augmentation=[{"name": "rotation", "intensity": 0.1}])
    hypermodel.evaluate(augmenting, None, folds, epochs=1)
    assert len(given) == 3 and isinstance(given[0], TracedAugmentation)
    assert given[1] is given[0] and given[2] is given[0]
    given.clear()
    hypermodel.evaluate(Pipeline(), None, folds, epochs=1)
    assert given == [None] * 3
