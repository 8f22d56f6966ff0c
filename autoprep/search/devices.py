"""Accelerator hygiene: GPU memory growth, mixed precision, and trials that run out of memory.

Nothing here needs a GPU: on a CPU-only machine memory growth has no device to set, and the
out-of-memory handling is tested by raising the error TensorFlow would raise.
"""

import contextlib

import keras
import keras_tuner as kt
import tensorflow as tf

_OUT_OF_MEMORY_MARKS = ("RESOURCE_EXHAUSTED", "OOM when allocating", "Out of memory")


def enable_memory_growth() -> list:
    """Lets TensorFlow take GPU memory as needed instead of all of it at start-up (so that other
    processes, e.g. one worker per GPU or the exported module, share the device); returns the
    names of the GPUs set. GPUs already initialized keep their setting."""
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
            names.append(gpu.name)
        except (RuntimeError, ValueError):  # initialized already: its memory is allocated
            pass
    return names


def mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over every local GPU, or over every CPU device when there is no GPU
    (one, unless logical CPU devices were configured). Memory growth is set first: listing the
    devices initializes them."""
    enable_memory_growth()
    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([device.name for device in devices])


@contextlib.contextmanager
def mixed_precision(enabled: bool):
    """Inside, Keras builds models with the "mixed_float16" policy (float16 compute, float32
    weights) when `enabled`; the previous global policy is restored on exit."""
    if not enabled:
        yield
        return
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def is_out_of_memory(error) -> bool:
    """True for TensorFlow's ResourceExhaustedError and the same error from other backends."""
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    return any(mark in str(error) for mark in _OUT_OF_MEMORY_MARKS)


@contextlib.contextmanager
def out_of_memory_fails_trial(batch_size):
    """A trial that runs out of device memory fails (the search goes on) with the fix named."""
    try:
        yield
    except Exception as error:
        if not is_out_of_memory(error):
            raise
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise kt.errors.FailedTrialError(
            f"Out of device memory ({type(error).__name__}: {first[:200]}). Use a smaller "
            f"batch size (`batch_size=` / --batch-size; now {batch_size}), smaller images "
            "(--image-size) or --mixed-precision."
        ) from error
