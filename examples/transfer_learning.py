"""Transfer learning: a pretrained MobileNetV2 under a new head, frozen for the search, then
fine-tuned with the exported pipeline.

    python examples/transfer_learning.py DATA_DIR

1. `autoprep.tune` searches the data side around `build_model`, whose MobileNetV2 backbone
   (ImageNet weights) is frozen: each trial trains the head only, so trials are cheap. autoprep
   recognizes the backbone and fixes the normalization to what its weights were trained on
   (x / 127.5 - 1, `rescale_pm1`); the trials search augmentation and class imbalance, and
   `hp` searches the head's dropout and learning rate alongside. The model takes
   IMAGE_SIZE x IMAGE_SIZE RGB images whatever the folder holds, so autoprep decodes the
   images at that size, in RGB.
2. The winning pipeline is exported; `fine_tune` trains the head on it, then unfreezes the top
   of the backbone and trains again with a 10x lower learning rate (BatchNormalization layers
   stay frozen and in inference mode, as the Keras transfer-learning guide advises).

Set AUTOPREP_EXAMPLE_WEIGHTS=none to build the same architecture without downloading the
weights (the tests do), and AUTOPREP_EXAMPLE_SIZE to change the image size (default 160, one of
the sizes MobileNetV2's ImageNet weights exist for: 96, 128, 160, 192, 224).
"""

import importlib.util
import os
import sys

import keras

import autoprep

WEIGHTS = os.environ.get("AUTOPREP_EXAMPLE_WEIGHTS", "imagenet")
WEIGHTS = None if WEIGHTS.lower() == "none" else WEIGHTS
IMAGE_SIZE = int(os.environ.get("AUTOPREP_EXAMPLE_SIZE", "160"))
ALPHA = 0.35  # MobileNetV2's width: 0.35 is the smallest, fine on a CPU
FINE_TUNE_LAYERS = 30  # backbone layers unfrozen for fine-tuning, counted from the top


def backbone():
    """MobileNetV2 without its classifier, pretrained on ImageNet (unless WEIGHTS is None)."""
    return keras.applications.MobileNetV2(include_top=False, weights=WEIGHTS, alpha=ALPHA,
                                          input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))


def build_model(input_shape, num_classes, hp=None):
    """The frozen backbone under a new head; `hp` picks the head's dropout and learning rate.

    `input_shape` is ignored: the model takes IMAGE_SIZE x IMAGE_SIZE x 3, and autoprep decodes
    the images to that shape. No normalization here: autoprep feeds the backbone's convention.
    """
    dropout = hp.Choice("dropout", [0.0, 0.2]) if hp is not None else 0.2
    learning_rate = hp.Choice("learning_rate", [1e-3, 3e-4]) if hp is not None else 1e-3
    base = backbone()
    base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = base(inputs, training=False)  # BatchNormalization stays in inference mode
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(dropout)(x)
    outputs = keras.layers.Dense(num_classes)(x)  # logits
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def load_pipeline(path):
    """The exported module (normally you copy it next to your script and import it)."""
    spec = importlib.util.spec_from_file_location("pipeline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pipeline"] = module  # lets AutoGraph read the module's source
    spec.loader.exec_module(module)
    return module


def fine_tune(pipeline, data_dir, *, head_epochs=5, epochs=5, hyperparameters=None):
    """Trains the head on the exported pipeline, then the top of the backbone too."""
    train_ds, val_ds = pipeline.make_datasets(data_dir, validation_split=0.2, batch_size=32,
                                              seed=0)
    hp = None
    if hyperparameters:
        import keras_tuner as kt

        hp = kt.HyperParameters()
        hp.values.update(hyperparameters)
    model = build_model(None, len(pipeline.CLASS_NAMES), hp)
    model.fit(train_ds, validation_data=val_ds, epochs=head_epochs, **pipeline.FIT_KWARGS)
    base = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    base.trainable = True
    for layer in base.layers[:-FINE_TUNE_LAYERS]:
        layer.trainable = False
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) / 10
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=model.loss, metrics=["accuracy"])
    model.fit(train_ds, validation_data=val_ds, epochs=epochs, **pipeline.FIT_KWARGS)
    return model


def main(data_dir, *, directory="autoprep_runs", max_trials=10, epochs=5, fine_tune_epochs=5):
    result = autoprep.tune(build_model, data_dir, max_trials=max_trials, epochs=epochs,
                           directory=directory, project_name="transfer", seed=0)
    print("model input:", autoprep.InputConvention.from_dict(
        result.data["input_convention"]).describe())
    path = result.export(os.path.join(directory, "transfer_pipeline.py"), force=True)
    best = next(t for t in result.trials if t.trial_id == result.best_trial_id)
    model = fine_tune(load_pipeline(path), data_dir, head_epochs=epochs,
                      epochs=fine_tune_epochs, hyperparameters=best.model_hyperparameters)
    model.save(os.path.join(directory, "transfer_model.keras"))
    return result, model


if __name__ == "__main__":
    main(sys.argv[1])
