"""Normalization methods: how uint8 pixels become the model's float32 input.

Each method is a class with a static `transform(images, **constants)` written in TensorFlow
only. The live pipeline calls it; the exported module contains its source, renamed `normalize`,
and the learned constants as literals. Statistics come from the training split only.

Some methods exist for one kind of model: a pretrained backbone's own input convention (Keras
Applications' "caffe" and "torch" modes of `preprocess_input`, EfficientNetV2's own scaling).
They are not searched by default (`searched = False`): `tune` fixes the normalization to one of
them when the model needs it (`autoprep.search.model_inputs`), and a `SearchSpace` accepts them.
"""

import numpy as np
import tensorflow as tf

from autoprep._registry import Registry
from autoprep.choices.base import Choice, Selector, function_source
from autoprep.data import stats

NORMALIZATIONS = Registry("normalization")
# The `normalization` search dimension: every registered method that is `searched` by default
# (the others are valid when given), rescaled pixels first.
SELECTOR = Selector("normalization", NORMALIZATIONS, default="rescale_01",
                    searched=lambda cls: cls.searched)
_EPSILON = 1e-6


def standardize_channels(images, center, scale):
    """(images - center) / scale per channel, for a batch or one image, as float32.

    TensorFlow's CPU kernels broadcast a per-channel vector over a batch slowly (an inner
    dimension of 3); tiled to one image's shape first, the same arithmetic ran 3.9x as fast
    on batches of 128x128x3 (the profile rows of results/trial_input_rate.md).
    """
    images = tf.cast(images, tf.float32)
    tiles = tf.concat([tf.shape(images)[-3:-1], [1]], axis=0)
    center = tf.tile(tf.reshape(tf.constant(center, tf.float32), [1, 1, -1]), tiles)
    scale = tf.tile(tf.reshape(tf.constant(scale, tf.float32), [1, 1, -1]), tiles)
    return (images - center) / scale


class Normalization(Choice):
    """Base class: `fit` learns constants from training images, `transform` applies them."""

    learned_size = "channels"
    searched = True  # a candidate of the default search (False: only when given or fixed)

    def fit(self, images: np.ndarray):
        """Learns this method's constants from uint8 training images of shape (n, h, w, c),
        without a float copy of them (see `autoprep.data.stats`)."""
        return self

    @property
    def constants(self) -> dict:
        """The keyword arguments `transform` receives (learned values, as lists).

        Raises:
            NotFittedError: for a method that learns constants and has not been fitted.
        """
        self.check_fitted()
        return {attr: getattr(self, attr + "_") for attr in self._learned}

    def __call__(self, images):
        return self.transform(images, **self.constants)

    def source(self) -> str:
        """The `normalize` function of the exported module."""
        return function_source(self.transform, "normalize")


class _ChannelwiseNormalization(Normalization):
    """Base class: (pixels - a center) / a scale per channel, learned or constant."""

    def module_sources(self):
        return [function_source(standardize_channels)]


@NORMALIZATIONS.register("none")
class NoNormalization(Normalization):
    """Raw pixel values 0-255 as float32."""

    @staticmethod
    def transform(images):
        """Keeps raw pixel values (0-255) as float32."""
        return tf.cast(images, tf.float32)


@NORMALIZATIONS.register("rescale_01")
class Rescale01(Normalization):
    """Pixels divided by 255, into [0, 1]."""

    @staticmethod
    def transform(images):
        """Rescales pixels from [0, 255] to [0, 1]."""
        return tf.cast(images, tf.float32) / 255.0


@NORMALIZATIONS.register("rescale_pm1")
class RescalePlusMinus1(Normalization):
    """Pixels mapped linearly to [-1, 1]."""

    @staticmethod
    def transform(images):
        """Rescales pixels from [0, 255] to [-1, 1]."""
        return tf.cast(images, tf.float32) / 127.5 - 1.0


@NORMALIZATIONS.register("per_channel")
class PerChannelStandardization(_ChannelwiseNormalization):
    """Each channel standardized with the training split's mean and standard deviation.

    Attributes:
        mean_: Per-channel mean of the training pixels (one float per channel).
        std_: Per-channel standard deviation of the training pixels (at least 1e-6).
    """

    _learned = ("mean", "std")

    def fit(self, images):
        mean, std = stats.histogram_mean_std(stats.channel_histograms(images))
        self.mean_ = mean.tolist()
        self.std_ = np.maximum(std, _EPSILON).tolist()
        return self

    @staticmethod
    def transform(images, mean, std):
        """Standardizes each channel with the mean and std of the training split."""
        return standardize_channels(images, mean, std)


@NORMALIZATIONS.register("per_image")
class PerImageStandardization(Normalization):
    """Each image standardized with its own mean and standard deviation."""

    @staticmethod
    def transform(images):
        """Standardizes every image with its own mean and std."""
        return tf.image.per_image_standardization(tf.cast(images, tf.float32))


@NORMALIZATIONS.register("robust")
class RobustScaling(_ChannelwiseNormalization):
    """Each channel centred on the training split's median and divided by its IQR.

    Attributes:
        median_: Per-channel median of the training pixels (one float per channel).
        iqr_: Per-channel interquartile range (the standard deviation where it is 0; at
            least 1e-6).
    """

    _learned = ("median", "iqr")

    def fit(self, images):
        counts = stats.channel_histograms(images)
        low, median, high = stats.histogram_percentiles(counts, [25, 50, 75])
        spread = np.where(high - low > 0, high - low, stats.histogram_mean_std(counts)[1])
        self.median_ = median.tolist()
        self.iqr_ = np.maximum(spread, _EPSILON).tolist()
        return self

    @staticmethod
    def transform(images, median, iqr):
        """Centres each channel on the training median and divides by its interquartile range."""
        return standardize_channels(images, median, iqr)


@NORMALIZATIONS.register("rescale_128")
class Rescale128(Normalization):
    """(pixels - 128) / 128, into [-1, 0.99]: the scaling EfficientNetV2-S, -M and -L build in.

    What such a backbone built with `include_preprocessing=False` expects (its own
    `Rescaling(1/128, offset=-1)`); not searched by default.
    """

    searched = False

    @staticmethod
    def transform(images):
        """Rescales pixels from [0, 255] to [-1, 0.992] as x / 128 - 1."""
        return tf.cast(images, tf.float32) / 128.0 - 1.0


@NORMALIZATIONS.register("caffe_bgr")
class CaffeBGR(_ChannelwiseNormalization):
    """RGB to BGR, minus the ImageNet mean of each channel, no scaling (Keras' "caffe" mode).

    What ResNet50/101/152 and VGG16/19 of Keras Applications expect (their `preprocess_input`);
    a gray image has the mean of the three means subtracted. Not searched by default.
    """

    searched = False

    @staticmethod
    def transform(images):
        """Reverses the channels (RGB to BGR) and subtracts the ImageNet BGR means."""
        images = tf.cast(images, tf.float32)
        if images.shape[-1] == 1:
            return images - 114.799
        return standardize_channels(
            tf.reverse(images, axis=[-1]), [103.939, 116.779, 123.68], [1.0, 1.0, 1.0]
        )


@NORMALIZATIONS.register("torch_imagenet")
class TorchImageNet(_ChannelwiseNormalization):
    """Pixels in [0, 1] standardized with the ImageNet mean and std (Keras' "torch" mode).

    What DenseNet expects (its `preprocess_input`), and ConvNeXt or EfficientNetV2-B0 to -B3
    built with `include_preprocessing=False`; a gray image uses the means of the three values.
    Not searched by default.
    """

    searched = False

    @staticmethod
    def transform(images):
        """Divides by 255, subtracts the ImageNet means and divides by the ImageNet stds."""
        images = tf.cast(images, tf.float32) / 255.0
        if images.shape[-1] == 1:
            return standardize_channels(images, [0.449], [0.226])
        return standardize_channels(images, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
