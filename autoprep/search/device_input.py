"""Trial input for an accelerator: the images on the device, each batch made in the training step.

On a GPU a trial's tf.data pipeline (gather, cast, augmentation, normalization on the host's
cores) cannot keep up with a small model. Here the decoded uint8 array is placed on the device
once per search; the host's tf.data pipeline only samples indices, with the trial's own
sampler (so a batch holds the same images and labels as `Pipeline.train_dataset` for the same
seed); and a layer in front of the user's model gathers the batch from the device-resident
tensor, augments it (training only) with the trial's Keras layers and normalizes it, inside the
compiled training step. The exported module keeps its tf.data pipeline, the portable path.

Refused, with the reason, for label-mixing ops (MixUp, CutMix change the labels, which the
model does not see), memory-mapped images (they are over the memory limit) and distribution
strategies (one device holds the images).
"""

import keras
import numpy as np
import tensorflow as tf

from autoprep.choices.augmentation import augment


def refusal(pipeline, images, distribution_strategy=None):
    """Why the trial of `pipeline` (None: any trial) cannot read its batches on the device,
    or None."""
    if pipeline is not None and pipeline.mix_op is not None:
        return (f"{pipeline.mix_op.name} mixes labels in the input pipeline; the device path "
                "only makes images")
    if isinstance(images, np.memmap):
        return "the images are memory-mapped (over the memory limit): they would not fit there"
    if distribution_strategy is not None:
        return "a distribution strategy splits batches over devices; the images are on one"
    return None


def place(images, device=None):
    """The uint8 images as one tensor on `device` (default: the first GPU, else the CPU)."""
    if device is None:
        device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
    with tf.device(device):
        return tf.identity(tf.convert_to_tensor(np.asarray(images)))


class DeviceBatches(keras.layers.Layer):
    """Gathers a batch of images by index, augments it (training only) and normalizes it.

    Args:
        images: The search's uint8 images as a tensor (see `place`).
        normalize: The fitted normalization (a callable on float32 batches).
        layers: The trial's augmentation layers (no label-mixing layer).
    """

    def __init__(self, images, *, normalize, layers=(), **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.images = images
        self.normalize = normalize
        self.augmentation = list(layers)

    def build(self, input_shape):
        for layer in self.augmentation:
            layer.build((None, *self.images.shape[1:]))
        self.built = True

    def call(self, indices, training=None):
        images = tf.cast(tf.gather(self.images, indices), tf.float32)
        if training:
            images, _ = augment(images, None, self.augmentation)
        return self.normalize(images)

    def compute_output_shape(self, input_shape):
        return (*input_shape, *self.images.shape[1:])


class Trainer(keras.Model):
    """`model` behind `batches`: a model of index batches whose weights are `model`'s.

    Compiled with `model`'s optimizer and loss. Its `save_weights` saves `model`'s, so that
    Keras Tuner's checkpoint (which a later Hyperband round loads into the model it builds)
    fits the user's model.
    """

    def __init__(self, model, batches: DeviceBatches):
        indices = keras.Input(shape=(), dtype="int64")
        super().__init__(indices, model(batches(indices)))
        self.user_model = model
        self.compile(optimizer=model.optimizer, loss=model.loss)

    def save_weights(self, filepath, *args, **kwargs):
        return self.user_model.save_weights(filepath, *args, **kwargs)
