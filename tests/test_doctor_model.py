"""autoprep.doctor model checks: a panel of broken models (and one sound one) on tiny folders."""

import json

import keras
import pytest
from doctor_images import write_images

from autoprep.cli import main
from autoprep.doctor import diagnose
from autoprep.doctor._checks import MODEL_CHECKS


def _layers(input_shape, num_classes, *, rescale=True, activation="softmax"):
    return keras.Sequential([
        keras.Input(input_shape),
        *([keras.layers.Rescaling(1 / 255)] if rescale else []),
        keras.layers.Flatten(),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(num_classes, activation=activation),
    ])


def sound(input_shape, num_classes):
    return _layers(input_shape, num_classes)


def sound_with_hp(input_shape, num_classes, hp):
    hp.Int("units", 8, 32)
    return _layers(input_shape, num_classes)


def softmax_with_from_logits(input_shape, num_classes):
    model = _layers(input_shape, num_classes)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def logits_without_from_logits(input_shape, num_classes):
    model = _layers(input_shape, num_classes, activation=None)
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def wrong_units(input_shape, num_classes):
    return _layers(input_shape, num_classes + 2)


def learning_rate_too_high(input_shape, num_classes):
    model = _layers(input_shape, num_classes)
    model.compile(keras.optimizers.Adam(learning_rate=5.0), "sparse_categorical_crossentropy")
    return model


def one_hot_loss(input_shape, num_classes):
    model = _layers(input_shape, num_classes)
    model.compile("adam", "categorical_crossentropy")
    return model


def raw_input(input_shape, num_classes):
    return _layers(input_shape, num_classes, rescale=False)


def broken(input_shape, num_classes):
    raise RuntimeError("typo in my model")


@pytest.fixture(scope="module")
def healthy(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("healthy"), [12, 12, 12])


@pytest.mark.parametrize("model_fn", [
    softmax_with_from_logits, logits_without_from_logits, wrong_units, learning_rate_too_high,
    raw_input,
], ids=lambda f: f.__name__)
def test_top_finding_names_the_broken_model(healthy, model_fn):
    expected = {"wrong_units": "output_units_mismatch", "raw_input": "unscaled_input"}
    report = diagnose(healthy, model_fn)
    assert report.top.id == expected.get(model_fn.__name__, model_fn.__name__), report.format()


@pytest.mark.parametrize("model_fn, expected, match", [
    (broken, "model_build_failed", "RuntimeError: typo in my model"),
    (one_hot_loss, "loss_fails", "must have the same rank"),
])
def test_model_that_cannot_run_stops_the_other_model_checks(healthy, model_fn, expected, match):
    report = diagnose(healthy, model_fn)
    assert report.top.id == expected and match in report.top.evidence
    assert [f.id for f in report.findings if f.severity == "error"] == [expected]


def test_imbalance_collapses_to_the_majority_class(tmp_path):
    data = write_images(tmp_path, [100, 5], colors=[(120, 120, 120), (130, 120, 120)])
    report = diagnose(data, sound)
    assert report.top.id == "majority_class_collapse", report.format()
    assert report.top.dimension == "imbalance"
    assert "'c0'" in report.top.title
    assert "class_imbalance" in report.ids("warning")


def test_raw_dark_images_name_the_darkness(tmp_path):
    data = write_images(tmp_path, [12, 12, 12], scale=0.12)
    report = diagnose(data, raw_input)
    assert report.top.id == "dark_images", report.format()
    assert {"unscaled_input", "initial_loss_off"} <= set(report.ids("warning"))


def test_sound_model_on_healthy_data_has_no_error(healthy):
    report = diagnose(healthy, sound_with_hp)
    assert report.ids("error") == [] and report.ids("warning") == [], report.format()
    assert set(MODEL_CHECKS.names()) <= set(report.checks)
    assert report.model == "sound_with_hp"


def test_cli_model_spec(healthy, tmp_path, capsys):
    path = tmp_path / "my_model.py"
    path.write_text(
        "import keras\n\n"
        "def build(input_shape, num_classes):\n"
        "    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),\n"
        "                             keras.layers.Dense(num_classes + 1)])\n"
    )
    assert main(["doctor", healthy, "--model", f"{path}:build", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "build"
    assert report["findings"][0]["id"] == "output_units_mismatch"
    assert main(["doctor", healthy, "--model", f"{path}:missing"]) == 2
    assert "has no function 'missing'" in capsys.readouterr().err


def _cut(input_shape, num_classes, cut):
    """A sound-looking model with `cut` applied to the flattened image."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Dense(8, activation="relu")(keras.layers.Flatten()(inputs))
    x = keras.layers.Lambda(cut)(keras.layers.Rescaling(1 / 255)(x))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


def ignores_its_input(input_shape, num_classes):
    return _cut(input_shape, num_classes, lambda t: t * 0.0)


def nan_gradients(input_shape, num_classes):
    # sqrt(0) is 0 (a finite loss) but its derivative is infinite: the gradient is NaN.
    return _cut(input_shape, num_classes, lambda t: keras.ops.sqrt(t * 0.0))


def stopped_gradients(input_shape, num_classes):
    model = _layers(input_shape, num_classes)
    return keras.Model(model.inputs, keras.ops.stop_gradient(model.outputs[0]))


@pytest.mark.parametrize("model_fn, expected", [
    (ignores_its_input, "cannot_overfit_batch"),
    (nan_gradients, "nonfinite_gradients"),
    (stopped_gradients, "zero_gradients"),
], ids=lambda value: getattr(value, "__name__", value))
@pytest.mark.slow
def test_error_level_training_defects(healthy, model_fn, expected):
    report = diagnose(healthy, model_fn)
    assert expected in report.ids("error"), report.format()
    assert report.top.severity == "error"
