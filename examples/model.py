"""An example model file for `autoprep tune --model examples/model.py:build_model`.

autoprep calls `build_model(input_shape, num_classes, hp)`. The `hp` argument is optional; when
present, the model's own hyperparameters (here the width and the learning rate) are searched in
the same Keras Tuner search as the preprocessing.
"""

import keras


def build_model(input_shape, num_classes, hp=None):
    """A small convolutional classifier; compiled here, so autoprep keeps its optimizer."""
    width = hp.Choice("width", [16, 32]) if hp is not None else 32
    learning_rate = hp.Choice("learning_rate", [1e-3, 3e-3]) if hp is not None else 1e-3
    model = keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.Conv2D(width, 3, padding="same", activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(2 * width, activation="relu"),
        keras.layers.Dense(num_classes),  # logits
    ])
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
