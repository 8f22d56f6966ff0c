"""Every registered imbalance strategy: the class weights it learns, the batches its sampler
draws, where the weights go (fit, never compile), and that its exported sampler draws the same."""

from collections import Counter

import numpy as np
import pytest
import tensorflow as tf

from autoprep.choices.base import function_source
from autoprep.choices.imbalance import IMBALANCE_STRATEGIES, DeferredReweighting
from autoprep.choices.pipeline import Pipeline
from autoprep.errors import ArgumentError

COUNTS = np.array([20, 5, 2])
BETA = 0.9


def _effective_number(counts):
    return (1 - BETA) / (1 - BETA ** counts)


# Unnormalized class weights each strategy should learn from COUNTS (None: no weights).
RAW_WEIGHTS = {
    "none": None,
    "inverse_frequency": 1.0 / COUNTS,
    "sqrt_inverse": 1.0 / np.sqrt(COUNTS),
    "effective_number": _effective_number(COUNTS),
    "oversample": None,
    "undersample": None,
    "deferred_reweighting": _effective_number(COUNTS),
    "logit_adjusted_loss": None,  # adjusts the loss instead
    "posthoc_logit_adjustment": None,  # adjusts the predictions instead
}
PARAMETERS = {
    "effective_number": {"beta": BETA},
    "deferred_reweighting": {"beta": BETA, "start": 0.5},
}
WEIGHTED = [name for name, raw in RAW_WEIGHTS.items() if raw is not None]


@pytest.fixture
def labels():
    """A 20:5:2 label set, shuffled."""
    labels = np.repeat(np.arange(3), COUNTS)
    return np.random.default_rng(0).permutation(labels)


@pytest.fixture
def images(labels):
    """One 2x2 gray image per label whose pixels hold the image's index (to tell images apart)."""
    return np.broadcast_to(np.arange(len(labels), dtype=np.uint8)[:, None, None, None],
                           (len(labels), 2, 2, 1)).copy()


def strategy(name):
    return IMBALANCE_STRATEGIES.get(name)(**PARAMETERS.get(name, {})).validate()


def train_dataset(name, images, labels, *, batch_size=64, epochs=4, seed=0):
    pipeline = Pipeline(normalization="none", imbalance={"name": name, **PARAMETERS.get(name, {})})
    pipeline.fit(images, labels, num_classes=3)
    return pipeline.train_dataset(
        images, labels, num_classes=3, batch_size=batch_size, epochs=epochs, seed=seed
    )


def epoch_labels(dataset):
    return np.concatenate([batch[1].numpy() for batch in dataset])


def epoch_image_ids(dataset):
    return np.concatenate([batch[0].numpy()[:, 0, 0, 0] for batch in dataset]).astype(int)


@pytest.mark.parametrize("name", IMBALANCE_STRATEGIES.names())
def test_class_weights_follow_the_formula_with_mean_one_per_image(name, labels):
    fitted = strategy(name).fit(labels, num_classes=3)
    raw = RAW_WEIGHTS[name]
    if raw is None:
        assert getattr(fitted, "class_weight_", None) is None
        return
    weights = np.array(fitted.class_weight_)
    np.testing.assert_allclose(weights / weights[0], raw / raw[0], rtol=1e-5)
    np.testing.assert_allclose(weights[labels].mean(), 1.0, rtol=1e-5)


def test_weighting_strategies_rank_the_minority_above_the_majority(labels):
    weights = {name: strategy(name).fit(labels, num_classes=3).class_weight_ for name in WEIGHTED}
    for values in weights.values():
        assert values[0] < values[1] < values[2]
    assert weights["sqrt_inverse"][2] < weights["inverse_frequency"][2]


@pytest.mark.parametrize("name", IMBALANCE_STRATEGIES.names())
def test_class_weights_go_to_fit_and_nothing_to_compile(name, images, labels):
    _, fit_kwargs = train_dataset(name, images, labels, epochs=10)
    fitted = strategy(name).fit(labels, num_classes=3)
    assert fit_kwargs.pop("shuffle") is False  # the dataset shuffles: Keras would only warn
    if RAW_WEIGHTS[name] is None:
        assert fit_kwargs == {}
    elif fitted.deferred:
        (callback,) = fit_kwargs.pop("callbacks")
        assert isinstance(callback, DeferredReweighting) and callback.start_epoch == 5
        assert fit_kwargs == {}
    else:
        assert fit_kwargs == {"class_weight": dict(enumerate(fitted.class_weight_))}


@pytest.mark.parametrize("name", ["none", "inverse_frequency", "sqrt_inverse", "effective_number"])
def test_natural_sampling_shows_every_image_once_per_epoch(name, images, labels):
    dataset, _ = train_dataset(name, images, labels, batch_size=8)
    orders = [epoch_image_ids(dataset) for _ in range(2)]
    for order in orders:
        assert sorted(order) == list(range(len(labels)))
    assert list(orders[0]) != list(orders[1])  # reshuffled each epoch


@pytest.mark.parametrize("name", IMBALANCE_STRATEGIES.names())
def test_every_epoch_has_a_known_number_of_batches(name, images, labels):
    # Keras warns "your input ran out of data" after each epoch of unknown length.
    dataset, _ = train_dataset(name, images, labels, batch_size=4)
    assert int(dataset.cardinality()) == len(list(dataset)) > 0


def test_oversampling_balances_classes_at_the_training_set_size(images, labels):
    dataset, _ = train_dataset("oversample", images, labels, batch_size=8)
    epochs = [epoch_labels(dataset) for _ in range(8)]
    assert {len(epoch) for epoch in epochs} == {len(labels)}
    shares = np.bincount(np.concatenate(epochs), minlength=3) / (8 * len(labels))
    np.testing.assert_allclose(shares, 1 / 3, atol=0.1)


def test_undersampling_takes_min_count_per_class_with_a_new_draw_each_epoch(images, labels):
    dataset, _ = train_dataset("undersample", images, labels, batch_size=4)
    seen_majority = set()
    for _ in range(4):
        ids = epoch_image_ids(dataset)
        assert np.bincount(labels[ids], minlength=3).tolist() == [2, 2, 2]
        assert len(set(ids)) == 6
        seen_majority |= {i for i in ids if labels[i] == 0}
    assert len(seen_majority) > 2


def test_deferred_reweighting_gives_weights_of_one_until_start_epoch(images, labels):
    dataset, fit_kwargs = train_dataset("deferred_reweighting", images, labels, epochs=4)
    (callback,) = fit_kwargs["callbacks"]
    class_weight = np.array(strategy("deferred_reweighting").fit(labels, 3).class_weight_)
    assert callback.start_epoch == 2
    for epoch in range(4):
        callback.on_epoch_begin(epoch)
        batch_images, batch_labels, weights = next(iter(dataset))
        expected = class_weight[batch_labels.numpy()] if epoch >= 2 else 1.0
        np.testing.assert_allclose(weights.numpy(), np.broadcast_to(expected, weights.shape),
                                   rtol=1e-6)


@pytest.mark.parametrize(
    "name, parameters, message",
    [
        ("effective_number", {"beta": 1.0}, r"`beta` must be in \(0, 1\). Received: beta=1.0"),
        ("effective_number", {"beta": 0}, r"`beta` must be in \(0, 1\). Received: beta=0"),
        ("deferred_reweighting", {"start": 1.0}, r"`start` must be in \[0, 1\). Received: start=1"),
        ("deferred_reweighting", {"beta": -0.5}, r"`beta` must be in \(0, 1\)"),
    ],
)
def test_bad_parameters_are_rejected(name, parameters, message):
    with pytest.raises(ArgumentError, match=message):
        IMBALANCE_STRATEGIES.get(name)(**parameters).validate()
    with pytest.raises(ArgumentError, match=message):
        Pipeline(imbalance={"name": name, **parameters})


def _class_datasets(labels):
    ids = np.arange(len(labels))
    return [tf.data.Dataset.from_tensor_slices(ids[labels == c]) for c in range(3)]


@pytest.mark.parametrize("name", IMBALANCE_STRATEGIES.names())
def test_exported_sampler_draws_what_the_live_sampler_draws(name, labels):
    sampler = strategy(name).sampler
    namespace = {"tf": tf}
    exec(function_source(sampler, "sample"), namespace)
    live = sampler(_class_datasets(labels), 7)
    exported = namespace["sample"](_class_datasets(labels), 7)
    for _ in range(2):  # two epochs: the reshuffled second one agrees too
        live_ids, exported_ids = list(live.as_numpy_iterator()), list(exported.as_numpy_iterator())
        assert live_ids == exported_ids
        assert Counter(labels[live_ids]) == Counter(labels[exported_ids])


def test_exported_reweighting_code_behaves_like_the_live_code(labels):
    from autoprep.choices.imbalance import add_sample_weights

    namespace = {"tf": tf}
    exec(function_source(add_sample_weights) + function_source(DeferredReweighting), namespace)
    gate = tf.Variable(0.0, trainable=False)
    callback = namespace["DeferredReweighting"](gate, start_epoch=3)
    weights = [0.5, 2.0, 4.0]
    for epoch, expected_gate in [(0, 0.0), (2, 0.0), (3, 1.0), (5, 1.0)]:
        callback.on_epoch_begin(epoch)
        assert float(gate.numpy()) == expected_gate
        one_hot = tf.one_hot(labels, 3)
        _, _, exported = namespace["add_sample_weights"](None, one_hot, weights, gate)
        _, _, live = add_sample_weights(None, tf.constant(labels), weights, gate)
        np.testing.assert_allclose(exported.numpy(), live.numpy())


# -- logit adjustment (Menon et al. 2020) ----------------------------------------------------
PRIOR = COUNTS / COUNTS.sum()


def biased_outputs(labels, bias=2.0, seed=0):
    """Probabilities of a model that knows the class but leans to the majority by `bias`."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1, size=(len(labels), 3)) + 1.5 * np.eye(3)[labels]
    logits += bias * np.log(PRIOR)
    return tf.nn.softmax(logits).numpy()


def test_the_logit_adjusted_loss_is_cross_entropy_of_shifted_logits(labels):
    from autoprep.choices.imbalance import LogitAdjustedLoss

    logits = np.random.default_rng(1).normal(size=(len(labels), 3)).astype(np.float32)
    shifted = logits + 0.5 * np.log(PRIOR).astype(np.float32)
    expected = tf.keras.losses.sparse_categorical_crossentropy(labels, shifted, from_logits=True)
    on_logits = LogitAdjustedLoss(PRIOR, 0.5, from_logits=True)
    on_probabilities = LogitAdjustedLoss(PRIOR, 0.5, from_logits=False)
    one_hot = tf.one_hot(labels, 3)
    assert float(on_logits(labels, logits)) == pytest.approx(float(tf.reduce_mean(expected)))
    assert float(on_probabilities(labels, tf.nn.softmax(logits))) == pytest.approx(
        float(tf.reduce_mean(expected)), rel=1e-4)
    assert float(on_logits(one_hot, logits)) == pytest.approx(float(tf.reduce_mean(expected)))


@pytest.mark.parametrize("from_logits", [True, False])
def test_the_loss_strategy_recompiles_the_users_model_keeping_from_logits(from_logits, labels):
    import keras

    from autoprep.search.hypermodel import ensure_compiled, loss_description

    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation=None if from_logits else "softmax")])
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(
        from_logits=from_logits))
    pipeline = Pipeline(normalization="rescale_01", imbalance="logit_adjusted_loss")
    pipeline.fit(np.zeros((len(labels), 2, 2, 1), np.uint8), labels, num_classes=3)
    ensure_compiled(model, one_hot_labels=False)
    pipeline.imbalance.prepare_model(model, from_logits=loss_description(model.loss)[1])
    assert loss_description(model.loss) == ("logit_adjusted_loss", from_logits)
    assert model.loss.class_prior == pytest.approx(PRIOR.tolist())
    assert type(model.optimizer).__name__ == "SGD"
    dataset, fit_kwargs = pipeline.train_dataset(np.zeros((len(labels), 2, 2, 1), np.uint8),
                                                 labels, num_classes=3, batch_size=8, epochs=1)
    assert fit_kwargs == {"shuffle": False}
    assert np.isfinite(model.fit(dataset, epochs=1, verbose=0, **fit_kwargs).history["loss"][0])


def test_best_tau_undoes_a_majority_bias_on_validation_predictions(labels):
    from autoprep.choices.imbalance import best_tau
    from autoprep.objectives import score_predictions

    outputs = biased_outputs(labels)
    tau = best_tau(outputs, labels, PRIOR, "balanced_accuracy")
    assert tau > 0.5
    adjusted = np.log(outputs) - tau * np.log(PRIOR)
    assert score_predictions("balanced_accuracy", labels, adjusted) > score_predictions(
        "balanced_accuracy", labels, outputs)
    unbiased = tf.one_hot(labels, 3).numpy() * 0.8 + 0.2 / 3  # already right: ties -> tau 1
    assert best_tau(unbiased, labels, PRIOR) == 1.0
    logits = np.log(outputs) + 7.0  # logits instead of probabilities: the same tau
    assert best_tau(logits, labels, PRIOR, "macro_f1") == best_tau(outputs, labels, PRIOR,
                                                                   "macro_f1")


def test_posthoc_adjustment_tunes_tau_on_labels_and_round_trips(labels):
    strategy = IMBALANCE_STRATEGIES.get("posthoc_logit_adjustment")().fit(labels, 3)
    assert strategy.tau_ == 1.0 and strategy.class_prior_ == pytest.approx(PRIOR.tolist())
    outputs = biased_outputs(labels)
    tuned = strategy.adjust(outputs, labels)
    assert strategy.tau_ > 0.5
    np.testing.assert_allclose(tuned, np.log(outputs) - strategy.tau_ * np.log(PRIOR), atol=1e-4)
    rebuilt = IMBALANCE_STRATEGIES.get("posthoc_logit_adjustment").from_config(
        strategy.get_config())
    assert rebuilt.tau_ == strategy.tau_
    np.testing.assert_allclose(rebuilt.adjust(outputs), tuned, atol=1e-6)
    assert Pipeline(imbalance="posthoc_logit_adjustment").fit(
        np.zeros((len(labels), 2, 2, 1), np.uint8), labels, 3).train_dataset(
        np.zeros((len(labels), 2, 2, 1), np.uint8), labels, num_classes=3, batch_size=8,
        epochs=1)[1] == {"shuffle": False}


def exported_namespace(pipeline):
    """The exported module of a fitted pipeline, executed (it imports only TensorFlow)."""
    from autoprep.export.module import render_module

    source = render_module(pipeline, class_names=["a", "b", "c"], image_size=(2, 2), channels=1,
                           epochs=2)
    namespace = {"__name__": "exported"}
    exec(compile(source, "exported.py", "exec"), namespace)
    return namespace


def test_exported_module_applies_the_posthoc_adjustment_the_search_chose(labels):
    import keras

    images = np.repeat(np.arange(len(labels), dtype=np.uint8), 4).reshape(-1, 2, 2, 1)
    pipeline = Pipeline(normalization="rescale_01", imbalance="posthoc_logit_adjustment")
    pipeline.fit(images, labels, 3)
    outputs = biased_outputs(labels)
    pipeline.imbalance.adjust(outputs, labels)  # tuned as in a trial
    module = exported_namespace(pipeline)
    assert module["ADJUSTMENT_TAU"] == pipeline.imbalance.tau_ != 1.0
    np.testing.assert_allclose(module["adjust"](outputs), pipeline.imbalance.adjust(outputs),
                               atol=1e-6)
    np.testing.assert_allclose(module["adjust"](np.log(outputs)),  # logits work the same
                               pipeline.imbalance.adjust(outputs), atol=1e-4)
    model = keras.Sequential([keras.Input((2, 2, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    live = np.argmax(pipeline.imbalance.adjust(model.predict(pipeline.eval_dataset(images),
                                                             verbose=0)), axis=-1)
    np.testing.assert_array_equal(module["predict"](model, images), live)


def test_exported_module_provides_the_logit_adjusted_loss(labels):
    images = np.zeros((len(labels), 2, 2, 1), np.uint8)
    pipeline = Pipeline(normalization="rescale_01",
                        imbalance={"name": "logit_adjusted_loss", "tau": 0.5})
    pipeline.fit(images, labels, 3)
    module = exported_namespace(pipeline)
    logits = np.random.default_rng(2).normal(size=(len(labels), 3)).astype(np.float32)
    for from_logits in (True, False):
        outputs = logits if from_logits else tf.nn.softmax(logits).numpy()
        exported = module["make_loss"](from_logits=from_logits)(labels, outputs)
        live = pipeline.imbalance.adjusted_loss(from_logits)(labels, outputs)
        assert float(exported) == pytest.approx(float(live), rel=1e-6)
    assert module["FIT_KWARGS"] == {"shuffle": False}
