"""One test per TensorFlow internal that `autoprep.search.tf_adapter` relies on."""

import gc
import weakref

import tensorflow as tf

from autoprep.search import tf_adapter

UPGRADE = "TensorFlow {} changed: tf_adapter hook '{}' needs updating (see its comment)"


def moved(hook):
    return UPGRADE.format(tf.__version__, hook)


def custom_gradient_names():
    return {name for name in tf_adapter._gradient_registry()
            if name.startswith(tf_adapter.CUSTOM_GRADIENT_PREFIX)}


def traced_step():
    """A traced function whose gradient goes through a `tf.custom_gradient`, and its graph."""

    @tf.custom_gradient
    def doubled(x):
        return 2 * x, lambda upstream: 2 * upstream

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = doubled(x)
        return tape.gradient(y, x)

    concrete = step.get_concrete_function(tf.constant(1.0))
    assert float(concrete(tf.constant(1.0))) == 2.0
    return step, weakref.ref(concrete.graph)


def test_custom_gradients_released_frees_the_graphs_traced_inside():
    kept, kept_graph = traced_step()  # outside: its registration stays
    outside = custom_gradient_names()
    assert outside, moved("custom_gradients_released: no CustomGradient- registration")
    with tf_adapter.custom_gradients_released():
        step, graph = traced_step()
        assert custom_gradient_names() > outside, moved("custom_gradients_released")
    assert custom_gradient_names() == outside
    del step
    gc.collect()
    assert graph() is None, moved("custom_gradients_released: the graph is held elsewhere")
    assert kept_graph() is not None and float(kept(tf.constant(3.0))) == 2.0


def test_without_release_the_registry_keeps_a_dead_graph():
    """The defect the hook works around: when TensorFlow fixes it, the hook can go."""
    step, graph = traced_step()
    del step
    gc.collect()
    assert graph() is not None, (
        f"TensorFlow {tf.__version__} frees traced custom gradients: "
        "tf_adapter.custom_gradients_released may no longer be needed")
