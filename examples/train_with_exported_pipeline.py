"""Train with an exported pipeline module: what goes into your own training script.

    python examples/train_with_exported_pipeline.py autoprep_runs/demo/best_pipeline.py \
        autoprep_runs/demo_data

The module imports only TensorFlow; normally you copy it next to your script and
`import pipeline`. Here it is loaded from the path given on the command line.
"""

import importlib.util
import sys

import keras
import numpy as np


def load_module(path):
    spec = importlib.util.spec_from_file_location("pipeline", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["pipeline"] = module  # lets AutoGraph read the module's source
    spec.loader.exec_module(module)
    return module


def main(module_path, data_dir, epochs=5):
    pipeline = load_module(module_path)
    train_ds, val_ds = pipeline.make_datasets(data_dir, validation_split=0.2, batch_size=32,
                                              seed=0)
    model = keras.Sequential([
        keras.Input(pipeline.IMAGE_SIZE + (pipeline.CHANNELS,)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(len(pipeline.CLASS_NAMES), activation="softmax"),
    ])
    # MixUp and CutMix yield one-hot labels, which need the categorical cross-entropy.
    one_hot = pipeline.ONE_HOT_LABELS
    loss = "categorical_crossentropy" if one_hot else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])
    # Class weights (or the deferred re-weighting callback) go to fit(), not compile().
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, **pipeline.FIT_KWARGS)
    # At inference, normalize raw uint8 images exactly as in training.
    images = np.zeros((2, *pipeline.IMAGE_SIZE, pipeline.CHANNELS), np.uint8)
    print("predictions:", model.predict(pipeline.preprocess(images), verbose=0).shape)
    return history


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
