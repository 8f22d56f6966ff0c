"""autoprep.doctor model checks: a panel of broken models (and one sound one) on tiny folders."""

import json
import re
import types

import keras
import pytest
from doctor_images import write_blocks, write_images, write_photos

from autoprep.cli import main
from autoprep.doctor import diagnose, model_checks
from autoprep.doctor._checks import MODEL_CHECKS
from autoprep.doctor._training import Verdict
from autoprep.doctor.data_checks import DataContext
from autoprep.search import model_inputs


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
    softmax_with_from_logits, logits_without_from_logits, wrong_units, raw_input,
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


def test_raw_dark_images_name_the_confirmed_scale_then_the_darkness(tmp_path):
    # A cause confirmed by a counterfactual (scaling cures the initial loss) ranks before the
    # data's own warnings; the darkness, which standardizing handles better, comes next.
    data = write_images(tmp_path, [12, 12, 12], scale=0.12)
    report = diagnose(data, raw_input)
    assert report.ids("warning")[:2] == ["unscaled_input", "dark_images"], report.format()
    assert "With inputs scaled to [0, 1], it starts at loss" in report.top.evidence
    assert "initial_loss_off" not in report.ids()


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


def _plain_cnn(input_shape, num_classes, *, rescale=False, optimizer=None):
    """The usual first CNN: two convolution blocks, a dense layer, a softmax."""
    model = keras.Sequential([
        keras.Input(input_shape),
        *([keras.layers.Rescaling(1 / 255)] if rescale else []),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])
    model.compile(optimizer or keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    return model


def raw_cnn(input_shape, num_classes):
    return _plain_cnn(input_shape, num_classes)


def scaled_cnn(input_shape, num_classes):
    return _plain_cnn(input_shape, num_classes, rescale=True)


def adam_1(input_shape, num_classes):
    return _plain_cnn(input_shape, num_classes, rescale=True,
                      optimizer=keras.optimizers.Adam(1.0))


def sgd_10(input_shape, num_classes):
    return _plain_cnn(input_shape, num_classes, rescale=True,
                      optimizer=keras.optimizers.SGD(10.0))


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    """32x32 random color grids in 2 classes: learnable only by memorising."""
    return write_blocks(tmp_path_factory.mktemp("blocks"), [16, 16], size=32)


def _rate_findings(report):
    return [i for i in report.ids() if "learning_rate" in i]


def test_raw_pixels_that_stop_a_cnn_from_fitting_are_the_first_finding(tmp_path):
    # Bright images (values 200-255): fed raw, the CNN's ReLUs die and the one-batch loss stays
    # at ln(2); scaled, the same batch fits. Adam's default rate is not the cause.
    data = write_blocks(tmp_path, [16, 16], size=64, low=200, seed=12)
    report = diagnose(data, raw_cnn)
    top = report.top
    assert (top.id, top.severity) == ("unscaled_input", "error"), report.format()
    assert "cannot fit one batch" in top.title
    assert "does not fit" in top.evidence and "it fits in" in top.evidence
    assert "scaled to [0, 1]" in top.evidence or "standardized" in top.evidence
    assert _rate_findings(report) == [], report.format()
    tried = top.data["symptoms"][0]["tried"]
    assert tried[-1]["cured"] and all("learning rate" not in t["change"] for t in tried)


def test_raw_pixels_a_cnn_still_fits_are_the_first_warning(blocks):
    # The usual case: fed raw pixels, the CNN starts at a huge loss, yet memorises the batch.
    # Scaling brings the initial loss to ln(2): the first finding, a warning.
    report = diagnose(blocks, raw_cnn)
    top = report.top
    assert (top.id, top.severity) == ("unscaled_input", "warning"), report.format()
    assert "the initial loss is" in top.title
    assert "With inputs scaled to [0, 1], it starts at loss" in top.evidence
    assert top.data["symptoms"][0]["tried"][0]["cured"]
    assert report.ids("error") == [] and _rate_findings(report) == [], report.format()


@pytest.mark.parametrize("model_fn, fix, tried", [
    (adam_1, "to 0.01 (100x smaller than your 1)", "learning rate (0.1), it "),
    (sgd_10, "to 0.1 (100x smaller than your 10)", "learning rate (1), it "),
], ids=["adam_1", "sgd_10"])
def test_too_high_learning_rate_on_scaled_inputs_is_the_first_finding(blocks, model_fn, fix,
                                                                      tried):
    report = diagnose(blocks, model_fn)
    top = report.top
    assert (top.id, top.severity) == ("learning_rate_too_high", "error"), report.format()
    assert fix in top.fix, top.fix
    # what was tried and did not cure comes before the change that did
    cured = top.evidence.index("With a 100x smaller learning rate")
    assert -1 < top.evidence.find(f"With a 10x smaller {tried}") < cured, top.evidence
    assert "it fits in" in top.evidence[cured:]
    assert "unscaled_input" not in report.ids()


def test_when_nothing_tried_cures_the_finding_says_so(healthy):
    report = diagnose(healthy, ignores_its_input)
    top = report.top
    assert (top.id, top.severity) == ("cannot_overfit_batch", "error"), report.format()
    assert "does not fit" in top.evidence and "Nothing tried cures it." in top.evidence
    assert "With a 10x larger learning rate (0.01), it does not fit" in top.evidence
    assert top.dimension is None


def test_sound_cnn_on_blocks_has_no_error(blocks):
    report = diagnose(blocks, scaled_cnn)
    assert report.ids("error") == [] and report.ids("warning") == [], report.format()


def test_learning_rate_fix_never_names_the_users_rate():
    ctx = type("Context", (), {"rate": 0.0010000000474974513})()
    lower = model_checks._learning_rate_change(ctx.rate, 0.1)
    assert lower.text == "with a 10x smaller learning rate (1e-4)"
    assert model_checks._learning_rate_fix(ctx, lower) == (
        "Lower the learning rate to 1e-4 (10x smaller than your 1e-3).")
    higher = model_checks._learning_rate_change(ctx.rate, 10)
    assert model_checks._learning_rate_fix(ctx, higher) == (
        "Raise the learning rate to 0.01 (10x your 1e-3).")


def test_learning_rate_fix_names_the_rate_that_cured_every_symptom():
    # A rate of 1: 100x smaller fits the batch, but only 1000x smaller ends the collapse.
    ctx = type("Context", (), {"rate": 1.0})()
    cures = [model_checks._learning_rate_change(1.0, factor) for factor in (0.01, 0.001)]
    verdicts = [Verdict(symptom, "error", None, [(change, None)], [(change, None)])
                for symptom, change in zip(("one_batch", "collapse"), cures, strict=True)]
    change = model_checks.fix_change("learning_rate_too_high", verdicts)
    assert model_checks._learning_rate_fix(ctx, change) == (
        "Lower the learning rate to 1e-3 (1000x smaller than your 1).")


def photo_cnn(input_shape, num_classes):
    """A sound plain CNN: at 192x256 its one-batch loss spikes 10-20x before it fits."""
    return keras.Sequential([
        keras.Input(input_shape),
        keras.layers.Rescaling(1 / 255),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """500x375 photo-like JPEGs, decoded at the default size 192x256."""
    return write_photos(tmp_path_factory.mktemp("photos"), [12, 12])


def test_sound_cnn_on_photos_at_the_default_size_has_no_error(photos):
    report = diagnose(photos, photo_cnn)
    assert report.summary["image_size"] == [192, 256]
    assert report.ids("error") == [] and report.ids("warning") == [], report.format()


def test_raw_pixels_whose_loss_blows_up_on_photos_are_blamed_not_the_learning_rate(photos):
    # Fed raw pixels, the plain CNN's one-batch loss jumps more than 10x, then stays at ln(2):
    # the seed article's case, which a rule reading the peak called divergence and blamed on
    # Adam's default 1e-3. Scaling the inputs, not a smaller rate, fits the batch.
    report = diagnose(photos, raw_cnn)
    top = report.top
    assert (top.id, top.severity) == ("unscaled_input", "error"), report.format()
    assert "the model cannot fit one batch" in top.title
    assert re.search(r"the model does not fit: loss [\d.]+ -> [\d.]+ \(median of the last 10 "
                     r"steps\) after 100 steps, peaking at [\d.e+]+\. With inputs scaled to "
                     r"\[0, 1\], it fits in \d+ steps", top.evidence), top.evidence
    assert _rate_findings(report) == [], report.format()
    assert "0.0010000000474974513" not in report.format()


@pytest.mark.slow
def test_sound_cnn_trained_at_full_photo_size_spikes_and_has_no_error(photos, monkeypatch):
    # Without downscaling, the one-batch loss of this sound model spikes before it fits.
    monkeypatch.setattr(model_checks, "TRAINING_SIDE", 256)
    context = model_checks.ModelContext(DataContext(photos), photo_cnn)
    assert context.training_shape == (192, 256, 3)
    assert context.one_batch().spiked and context.one_batch().fits
    report = diagnose(photos, photo_cnn)
    assert report.ids("error") == [] and report.ids("warning") == [], report.format()


def test_a_backbone_fed_raw_pixels_is_told_its_own_convention_not_rescaling():
    inputs = keras.Input((32, 32, 3))
    base = keras.applications.MobileNetV2(include_top=False, weights=None, alpha=0.35,
                                          input_shape=(32, 32, 3))
    outputs = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(base(inputs)))
    backbone = keras.Model(inputs, outputs)
    plain = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2)])

    def fix(model):  # the one attribute of the model's context that the fix reads
        context = types.SimpleNamespace(convention=model_inputs.inspect_model(model))
        return model_checks._input_fix(context, model_checks.SCALED)

    assert "MobileNetV2 backbone" in fix(backbone) and "'rescale_pm1'" in fix(backbone)
    assert "Rescaling(1/255)" not in fix(backbone)
    assert "Rescaling(1/255)" in fix(plain)
