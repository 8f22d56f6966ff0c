"""Out-of-fold class probabilities: a short stratified k-fold training of a small network.

Every image gets probabilities from a model that never trained on it: the images trained on
are predicted by the fold that held them out, the others (large folders are subsampled) by
the mean of the fold models. The network is the small fixed probe CNN below on images
resized to `PROBE_SIDE` pixels, or the user's own model (`train_folds` takes any builder).

Nothing here touches a global random state: weights come from seeded initializers and batches
from a seeded NumPy generator, so a report refreshed during a search leaves the search alone.
"""

import dataclasses
import time

import keras
import numpy as np

from autoprep.doctor._hashing import area_resize

PROBE_SIDE = 32  # images are resized to at most this many pixels a side for the probe
FOLD_STEPS = 300  # training steps of each fold, whatever the folder's size ...
MAX_EPOCHS = 40  # ... unless that would be more epochs than this (small folds)
PROBE_LEARNING_RATE = 3e-3
BATCH_SIZE = 32
FOLDS = 5
MAX_TRAINED = 2000  # larger folders: a stratified sample this big is trained on
_PREDICT_BATCH = 256


@dataclasses.dataclass
class OutOfFold:
    """Class probabilities of every image from models that did not train on it.

    Attributes:
        probabilities: (n, num_classes) array.
        trained: Indices of the images the folds trained on (all, or a stratified sample).
        accuracy: Balanced accuracy of the held-out predictions on `trained`.
        seconds: Wall time of the training and prediction.
        folds, epochs: How the models were trained.
    """

    probabilities: np.ndarray
    trained: np.ndarray
    accuracy: float
    seconds: float
    folds: int
    epochs: int


def probe_side(image_size) -> int:
    """The probe's square input side: `PROBE_SIDE`, or less for smaller images (at least 8)."""
    return int(min(PROBE_SIDE, max(8, max(image_size))))


def probe_inputs(images, side) -> np.ndarray:
    """Images (0-255) resized to side x side, standardized per channel (label-free), float32."""
    small = area_resize(images, side, side)
    mean = small.mean(axis=(0, 1, 2))
    std = small.std(axis=(0, 1, 2)) + 1e-3
    return ((small - mean) / std).astype(np.float32)


def probe_network(input_shape, num_classes, *, seed=0):
    """The fixed probe: three 3x3 convolutions (8, 16, 32 filters) with batch normalization,
    global average pooling and a softmax; seeded initializers, compiled with Adam."""
    layers = [keras.Input(shape=input_shape)]
    for i, filters in enumerate((8, 16, 32)):
        layers += [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False,
                                kernel_initializer=keras.initializers.HeNormal(seed=seed + i)),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
        if i < 2:
            layers.append(keras.layers.MaxPooling2D())
    layers += [
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(num_classes, activation="softmax",
                           kernel_initializer=keras.initializers.GlorotUniform(seed=seed + 3)),
    ]
    model = keras.Sequential(layers)
    model.compile(optimizer=keras.optimizers.Adam(PROBE_LEARNING_RATE),
                  loss="sparse_categorical_crossentropy")
    return model


def training_sample(labels, *, limit=MAX_TRAINED, seed=0) -> np.ndarray:
    """Sorted indices of a stratified sample of about `limit` images (all when fewer); each
    class keeps its share, and at least `2 * FOLDS` images when it has them."""
    labels = np.asarray(labels)
    if len(labels) <= limit:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        keep = min(len(members), max(2 * FOLDS, round(limit * len(members) / len(labels))))
        chosen.append(rng.choice(members, keep, replace=False))
    return np.sort(np.concatenate(chosen))


def fold_epochs(fitted) -> int:
    """Epochs of a fold fitted on `fitted` images: enough for `FOLD_STEPS` steps (6 epochs
    for the largest sample, 1,600 images; 12 for 800), at most `MAX_EPOCHS`. Every folder
    then costs about the same training, bounded whatever its size."""
    return int(min(MAX_EPOCHS, -(-FOLD_STEPS * BATCH_SIZE // max(fitted, 1))))


def training_steps(trained, *, folds=FOLDS) -> int:
    """Training steps of `train_folds` on `trained` images."""
    fitted = trained - trained // folds
    return folds * -(-fitted * fold_epochs(fitted) // BATCH_SIZE)


def step_seconds(model, inputs, labels, transform, *, steps=3) -> float:
    """Median seconds of a training step on a batch, after one untimed step (tracing); the
    model's weights and optimizer state are put back afterwards."""
    resettable = _Resettable(model)
    rows = np.arange(min(BATCH_SIZE, len(labels)))
    batch, targets = transform(inputs[rows]), np.asarray(labels)[rows]
    times = []
    for _ in range(steps + 1):
        started = time.perf_counter()
        model.train_on_batch(batch, targets)
        times.append(time.perf_counter() - started)
    resettable.reset()
    return float(np.median(times[1:]))


class _Resettable:
    """A compiled model trained again from the same start for each fold: its weights and its
    optimizer's variables are put back, so the training function is traced only once."""

    def __init__(self, model):
        self.model = model
        self.model.optimizer.build(model.trainable_variables)
        self.weights = model.get_weights()
        self.optimizer_state = [v.numpy() for v in model.optimizer.variables]

    def reset(self):
        self.model.set_weights(self.weights)
        for variable, value in zip(self.model.optimizer.variables, self.optimizer_state):
            variable.assign(value)


def train_folds(model, inputs, labels, *, trained=None, folds=FOLDS, transform=None,
                probabilities=True, seed=0) -> OutOfFold:
    """Trains `model` (compiled) once per stratified fold of `trained` and predicts every image.

    Args:
        model: A compiled Keras model; it is reset to its initial weights for each fold.
        inputs: Array of all images (uint8 or float32), indexed like `labels`.
        labels: int class of every image.
        trained: Indices to cross-validate on (default all); the rest get the folds' mean.
        transform: Applied to each batch of `inputs` before the model (e.g. scaling to [0, 1]).
        probabilities: False when the model outputs logits (a softmax is applied).
    """
    import tensorflow as tf
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold

    started = time.perf_counter()
    labels = np.asarray(labels)
    trained = np.arange(len(labels)) if trained is None else np.asarray(trained)
    transform = transform or (lambda batch: batch)
    rng = np.random.default_rng(seed)
    resettable = _Resettable(model)
    sample = np.asarray(inputs[trained])  # only the sample is copied to TensorFlow
    data, targets = tf.constant(sample), tf.constant(labels[trained])
    held_out = np.zeros((len(labels), int(labels.max()) + 1), np.float32)
    others = np.setdiff1d(np.arange(len(labels)), trained)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_part, test_part in splitter.split(trained, labels[trained]):
        resettable.reset()
        epochs = fold_epochs(len(fit_part))
        # Every epoch's shuffled order, drawn here: one `fit` call per fold, no TF seed.
        order = np.concatenate([rng.permutation(fit_part) for _ in range(epochs)])
        batches = tf.data.Dataset.from_tensor_slices(order).batch(BATCH_SIZE).map(
            lambda rows: (transform(tf.gather(data, rows)), tf.gather(targets, rows)))
        model.fit(batches.prefetch(2), epochs=1, shuffle=False, verbose=0)
        held_out[trained[test_part]] = _predict(model, sample, test_part, transform,
                                                probabilities)
        if len(others):
            held_out[others] += _predict(model, inputs, others, transform, probabilities) / folds
    accuracy = balanced_accuracy_score(labels[trained], held_out[trained].argmax(axis=1))
    return OutOfFold(held_out, trained, float(accuracy), time.perf_counter() - started, folds,
                     epochs)


def _predict(model, images, rows, transform, probabilities) -> np.ndarray:
    """Class probabilities of `images[rows]`, a batch at a time."""
    parts = []
    for start in range(0, len(rows), _PREDICT_BATCH):
        batch = transform(np.asarray(images[rows[start:start + _PREDICT_BATCH]]))
        parts.append(keras.ops.convert_to_numpy(model(batch, training=False)))
    outputs = np.concatenate(parts).astype(np.float64)
    if not probabilities:
        outputs = np.exp(outputs - outputs.max(axis=1, keepdims=True))
        outputs /= outputs.sum(axis=1, keepdims=True)
    return np.clip(outputs, 0, 1).astype(np.float32)
