"""A search without training: `autoprep.tune`'s real loop, with scripted predictions.

`FakeTraining.model_fn` builds a `ScriptedModel`: a real (tiny) Keras model whose `fit` trains
nothing and whose `predict` returns the predictions a script asks for. Everything around it is
autoprep's own code: Keras Tuner's oracle and tuner, `PipelineHyperModel.fit` / `evaluate` /
`train_and_predict` (which fit each pipeline on the indices it is given), the stopping,
recording and saving jobs, the re-evaluation and the test trainings. Only the tf.data
datasets are not built (they cost more than the rest of a trial, and nothing would read them):
the images they would read are recorded instead. A trial takes a fraction of a second, so the
loop's wiring is tested in the fast suite.

`FakeTraining` also watches the loop: each training (`Training`: its phase, configuration,
training and evaluated indices, the constants it used), each `Pipeline.fit` (`Fit`: the images
and labels it saw), each post-hoc tau tuned on labels, and the images the data-seeded first
configurations were chosen from. Time is a fake clock that only trainings advance.

Use the `fake_training` fixture (conftest.py); on the command line, `--model
fake_training:model_fn` builds the installed `FakeTraining`'s model.
"""

import dataclasses
import json
import sys
import zlib

import keras
import numpy as np
import tensorflow as tf

from autoprep.choices import imbalance
from autoprep.choices.pipeline import Pipeline
from autoprep.data.subset import Subset
from autoprep.run import progress
from autoprep.search import hypermodel, loop


@dataclasses.dataclass
class Training:
    """One call of `train_and_predict`: a model trained (here: not) and its predictions.

    Attributes:
        phase: "trial" (in Keras Tuner's trial), "reevaluation" (before the winner is chosen)
            or "test" (the test trainings of the chosen pipeline and the baseline).
        config: The pipeline's configuration, without learned constants.
        train, evaluate: The indices `train_and_predict` was given to train on and predict.
        read, predicted: The indices its training dataset and its evaluation dataset read.
        number: Its place among all trainings of the `FakeTraining` (0-based).
        used: The pipeline's configuration with the constants the training used.
        evaluation: The number of the `evaluate` call it belongs to.
    """

    phase: str
    config: dict
    train: np.ndarray
    evaluate: np.ndarray
    number: int
    evaluation: int
    used: dict = None
    read: np.ndarray = None
    predicted: np.ndarray = None


@dataclasses.dataclass
class Fit:
    """One `Pipeline.fit`: the images (by index) and labels its constants were learned from.

    `training` is the `Training` it happened in, or None outside a training (the constants
    of the result's `best_config`, learned for the exported module).
    """

    indices: np.ndarray
    labels: np.ndarray
    training: Training = None


ACTIVE = None  # the installed `FakeTraining`


def model_fn(input_shape, num_classes):
    """The installed `FakeTraining`'s model, for `autoprep tune --model fake_training:model_fn`."""
    return ACTIVE.model_fn(input_shape, num_classes)


def config_key(config) -> str:
    return json.dumps(config, sort_keys=True)


def default_score(config, phase) -> float:
    """A fixed fraction of right predictions per configuration, between 0.3 and 0.9."""
    return 0.3 + (zlib.crc32(config_key(config).encode()) % 7) / 10


class FakeTraining:
    """The script of a search without training, and what the loop did (module docstring).

    Attributes:
        score: `score(config, phase)` -> the fraction of each class's evaluated images the
            model predicts right (the first ones, in order); the others are predicted as the
            next class.
        wrong: None, or `wrong(training, labels)` -> the positions in `labels` predicted wrong
            (instead of `score`).
        loss: `loss(config)` -> the training loss reported for every epoch (NaN: diverges).
        crash_at: Training numbers at which the process "dies" (KeyboardInterrupt).
        seconds: Fake seconds each training takes.
        now: The fake clock (`time.monotonic` of the loop and its progress clock).
        trainings, fits: The `Training`s and `Fit`s so far.
        tuned_tau: (phase, evaluation number, labels) of each tau tuned on labels.
        seed_images: The indices of the images each search chose its first configurations from.
        splits, folder, labels: The `Splits`, `ImageFolder` and labels of the last search.
    """

    def __init__(self):
        self.score = default_score
        self.wrong = None
        self.loss = lambda config: 0.5
        self.crash_at = set()
        self.seconds = 1.0
        self.now = 1000.0
        self.trainings, self.fits, self.tuned_tau, self.seed_images = [], [], [], []
        self.splits = self.labels = self.folder = None
        self._phase, self._training, self._evaluations = [], None, 0

    # -- the model -------------------------------------------------------------------------
    def model_fn(self, input_shape, num_classes):
        return ScriptedModel(self, input_shape, num_classes)

    def monotonic(self) -> float:
        return self.now

    def by_phase(self, phase) -> list:
        return [t for t in self.trainings if t.phase == phase]

    def predictions(self, num_classes) -> np.ndarray:
        """The scripted outputs (probabilities) for the current training's evaluated images."""
        training = self._training
        labels = self.labels[training.evaluate]
        if self.wrong is not None:
            wrong = np.zeros(len(labels), bool)
            wrong[list(self.wrong(training, labels))] = True
        else:
            right = self.score(training.config, training.phase)
            wrong = np.zeros(len(labels), bool)
            for k in np.unique(labels):
                members = np.flatnonzero(labels == k)
                wrong[members[int(round(right * len(members))):]] = True
        predicted = np.where(wrong, (labels + 1) % num_classes, labels)
        outputs = np.full((len(labels), num_classes), 0.2 / max(1, num_classes - 1))
        outputs[np.arange(len(labels)), predicted] = 0.8
        return outputs.astype(np.float32)

    def trained(self):
        """A training happens: the clock moves on; a scripted crash kills the "process"."""
        number = self._training.number
        self.now += self.seconds
        if number in self.crash_at:
            raise KeyboardInterrupt(f"the process died in training {number}")

    # -- the spies ---------------------------------------------------------------------------
    def install(self, monkeypatch):
        """Wraps the loop's methods (the originals still run) and fakes its clock."""
        self._spy_trainings(monkeypatch)
        self._spy_learning(monkeypatch)
        clock = type("FakeTime", (), {"monotonic": staticmethod(self.monotonic)})
        monkeypatch.setattr(loop, "time", clock)
        monkeypatch.setattr(progress, "time", clock)
        monkeypatch.setattr(sys.modules[__name__], "ACTIVE", self)
        return self

    def _phase_now(self) -> str:
        return self._phase[-1] if self._phase else "reevaluation"

    def _spy_trainings(self, monkeypatch):
        """Records each training and its phase; its datasets are not built, only recorded."""
        cls, fake = hypermodel.PipelineHyperModel, self
        original_evaluate, original_train = cls.evaluate, cls.train_and_predict

        def in_phase(name, original):
            def wrapper(this, *args, **kwargs):
                fake._phase.append(name)
                try:
                    return original(this, *args, **kwargs)
                finally:
                    fake._phase.pop()
            return wrapper

        def evaluate(this, *args, **kwargs):
            fake._evaluations += 1
            return original_evaluate(this, *args, **kwargs)

        def train_and_predict(this, model, pipeline, train, evaluate, **kwargs):
            fake.splits, fake.labels, fake.folder = this.splits, this.folder.labels, this.folder
            training = fake._training = Training(
                phase=fake._phase_now(), config=pipeline.clone().get_config(),
                train=np.asarray(train), evaluate=np.asarray(evaluate),
                number=len(fake.trainings), evaluation=fake._evaluations)
            fake.trainings.append(training)
            try:
                return original_train(this, model, pipeline, train, evaluate, **kwargs)
            finally:
                training.used, fake._training = pipeline.get_config(), None

        def train_dataset(pipeline, images, labels, *, epochs, **kwargs):
            fake._training.read = np.array(Subset.of(images).indices)
            gate = tf.Variable(0.0, trainable=False) if pipeline.imbalance.deferred else None
            return None, pipeline.fit_kwargs(epochs, gate)

        def eval_dataset(pipeline, images, *args, **kwargs):
            fake._training.predicted = np.array(Subset.of(images).indices)

        monkeypatch.setattr(cls, "fit", in_phase("trial", cls.fit))
        monkeypatch.setattr(cls, "test_evaluation", in_phase("test", cls.test_evaluation))
        monkeypatch.setattr(cls, "evaluate", evaluate)
        monkeypatch.setattr(cls, "train_and_predict", train_and_predict)
        monkeypatch.setattr(Pipeline, "train_dataset", train_dataset)
        monkeypatch.setattr(Pipeline, "eval_dataset", eval_dataset)

    def _spy_learning(self, monkeypatch):
        """Records what each pipeline fit, each tau tuning and the first configurations saw."""
        fake = self
        original_fit = self._original_fit = Pipeline.fit
        original_adjust = imbalance.PosthocLogitAdjustment.adjust
        original_data_facts = loop.data_facts

        def fit(pipeline, images, labels, num_classes):
            fake.fits.append(Fit(np.array(Subset.of(images).indices), np.array(labels),
                                 fake._training))
            return original_fit(pipeline, images, labels, num_classes)

        def adjust(strategy, outputs, labels=None, objective="balanced_accuracy"):
            if labels is not None:
                fake.tuned_tau.append((fake._phase_now(), fake._evaluations, np.array(labels)))
            return original_adjust(strategy, outputs, labels, objective)

        def data_facts(images, *args, **kwargs):
            fake.seed_images.append(np.array(Subset.of(images).indices))
            return original_data_facts(images, *args, **kwargs)

        monkeypatch.setattr(Pipeline, "fit", fit)
        monkeypatch.setattr(imbalance.PosthocLogitAdjustment, "adjust", adjust)
        monkeypatch.setattr(loop, "data_facts", data_facts)

    def refit(self, config, indices) -> dict:
        """`config`'s constants learned afresh from the images at `indices` (for checks)."""
        pipeline = Pipeline.from_config(config).clone()
        self._original_fit(pipeline, Subset(self.folder.images)[indices],
                                 self.labels[indices], len(self.folder.class_names))
        return pipeline.get_config()


class ScriptedModel(keras.Sequential):
    """A model without weights (its outputs are the first pixels) whose `fit` trains nothing
    and whose `predict` reads the script. It comes compiled (a cross-entropy, no optimizer)
    and `compile` only keeps the loss: a Keras optimizer costs more than the rest of it.

    `fit` calls each callback's `on_epoch_end` (autoprep keeps its predictions, Keras Tuner
    writes the weights that Hyperband's later rounds load), except TensorBoard's, which
    writes only what `on_train_begin` set up.
    """

    def __init__(self, fake, input_shape, num_classes):
        super().__init__([keras.Input(input_shape), keras.layers.Flatten(),
                          keras.layers.Lambda(lambda pixels: pixels[:, :num_classes])])
        self._fake = fake
        self._num_classes = num_classes
        self.compile(loss=keras.losses.SparseCategoricalCrossentropy())

    def compile(self, optimizer=None, loss=None, **kwargs):
        self.optimizer, self.loss, self.compiled = optimizer, loss, True

    def fit(self, x=None, *, epochs=1, callbacks=(), initial_epoch=0, **kwargs):
        self._fake.trained()
        called = [c for c in callbacks if not isinstance(c, keras.callbacks.TensorBoard)]
        for callback in called:
            callback.set_model(self)
        for epoch in range(initial_epoch, epochs):
            for callback in called:
                callback.on_epoch_end(epoch, {})
        history = keras.callbacks.History()
        history.history = {"loss": [self._fake.loss(self._fake._training.config)]
                           * (epochs - initial_epoch)}
        return history

    def predict(self, x, *args, **kwargs):
        return self._fake.predictions(self._num_classes)
