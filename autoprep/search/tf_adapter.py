"""Every use of TensorFlow's private surface, in one place, each hook with its "Relies on:".

A search trains hundreds of models in one process; TensorFlow keeps something of each that
its public API cannot free. `tests/test_tf_adapter.py` checks each hook, so an upgrade that
moves one fails there with a clear message.
"""

import contextlib

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


@contextlib.contextmanager
def custom_gradients_released():
    """Inside, models train as usual; on exit, the gradient functions that `tf.custom_gradient`
    registered inside are unregistered, so the training graphs they hold can be freed.

    Every trace of a Keras training step registers one (the gradient of the replica context's
    all-reduce of the gradients, even without a distribution strategy) in a global registry
    that nothing empties, not `keras.backend.clear_session` either: it holds the step's whole
    graph, its optimizer's functions and its variables' handles, about 15 MiB per trial of
    three folds with a tiny CNN. A registration is read when a gradient is traced through its
    op: the models trained inside must not be differentiated again after the exit.

    Relies on: `tensorflow.python.framework.ops.gradient_registry`, a `registry.Registry` whose
    private `_registry` dict maps "CustomGradient-<uid>" to the gradient function that
    `custom_gradient._graph_mode_decorator` registers per trace and never removes
    (tensorflow/tensorflow#97697).
    """
    registered = _gradient_registry()
    before = set(registered)
    try:
        yield
    finally:
        for name in [name for name in registered if name not in before]:
            if name.startswith(CUSTOM_GRADIENT_PREFIX):
                del registered[name]


def _gradient_registry() -> dict:
    from tensorflow.python.framework import ops

    return ops.gradient_registry._registry
