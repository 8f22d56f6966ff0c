"""The model's input convention through a search: fixed or overridden in `tune`, recorded in
results.json, shown by `show`, the progress lines and the report; and the doctor's check."""

import importlib.util
import json
import os
import shutil
import sys

import keras
import numpy as np
import pytest

import autoprep
from autoprep.cli import main
from autoprep.cli.progress import Progress
from autoprep.doctor import data_checks, diagnose, model_checks
from autoprep.doctor._checks import MODEL_CHECKS, run_checks
from autoprep.errors import InputConventionWarning, ModelError, UnknownChoiceError
from autoprep.report import sections
from autoprep.run import rundir
from autoprep.run.convention import InputConvention
from autoprep.run.result import load_result

OLD_RUN = os.path.join(os.path.dirname(__file__), "data", "run_66c34cf_library")
ONE_TRIAL = {"max_trials": 1, "epochs": 1, "tuner": "random", "seed": 0, "verbose": 0,
             "test_split": 0, "reevaluate": 0, "validation_split": 0.25}
RESCALING_FILE = """
import keras


def build(input_shape, num_classes):
    return keras.Sequential([keras.Input(input_shape), keras.layers.Rescaling(1 / 255),
                             keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])
"""
FIXED_RECORD = InputConvention(
    "backbone", "rescale_pm1", "MobileNetV2 backbone 'mobilenetv2_0.35_32'",
    "expects x / 127.5 - 1", search="fixed",
)


def rescaling_model(input_shape, num_classes):
    return keras.Sequential([
        keras.Input(input_shape), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
        keras.layers.Dense(num_classes, activation="softmax"),
    ])


def fixed_12x12(input_shape, num_classes):
    return keras.Sequential([keras.Input((12, 12, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(num_classes, activation="softmax")])


def vgg_model(input_shape, num_classes):
    """A user's model around a VGG16 backbone built for 32x32 (weights=None here)."""
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    base.trainable = False
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))


@pytest.fixture
def folder(make_folder):
    return make_folder([8, 8, 6])


# -- tune ------------------------------------------------------------------------------------------
def test_a_fixed_input_against_a_given_image_size_fails_before_decoding(folder, tmp_path,
                                                                         count_fits):
    with pytest.raises(ModelError, match=r"takes 12x12x3 images only .*image_size=\(8, 8\)"):
        autoprep.tune(fixed_12x12, folder, image_size=(8, 8), directory=tmp_path / "runs",
                      **ONE_TRIAL)
    assert count_fits == []


class _Planned(Exception):
    """Raised by `on_plan` to stop a search before it decodes: the plan is all a test needs."""


def _plan_of(folder, tmp_path, **arguments):
    plans = []

    def stop(plan):
        plans.append(plan)
        raise _Planned

    with pytest.raises(_Planned):
        autoprep.tune(rescaling_model, folder, directory=tmp_path / "runs", on_plan=stop,
                      **{**ONE_TRIAL, **arguments})
    return plans[0]


def test_a_given_image_size_is_the_size_the_images_are_decoded_at(folder, tmp_path):
    plan = _plan_of(folder, tmp_path, image_size=(6, 4))
    assert (plan.image_size, plan.size_reason) == ((6, 4), "as given")
    assert _plan_of(folder, tmp_path, overwrite=True).image_size == (8, 8)  # their own size


@pytest.mark.slow
def test_a_fixed_input_shape_sets_the_image_size_and_channels(folder, tmp_path, capsys):
    result = autoprep.tune(fixed_12x12, folder, directory=tmp_path / "runs",
                           **{**ONE_TRIAL, "verbose": 1})
    assert result.data["image_size"] == [12, 12] and result.data["channels"] == 3
    assert "(the model's input size 12x12 and the model's 3 input channels)" in (
        capsys.readouterr().err)
    record = result.data["input_convention"]
    assert (record["kind"], record["normalization"], record["search"]) == (
        "none", None, "searched")


@pytest.mark.slow
def test_a_users_normalization_wins_over_the_model_with_a_warning(folder, tmp_path):
    space = autoprep.SearchSpace(normalization="rescale_01", flip="none", policy="none")
    with pytest.warns(InputConventionWarning, match="Double scaling: .* again. Normalization "
                      "'rescale_01' feeds Rescaling"):
        result = autoprep.tune(rescaling_model, folder, space=space,
                               directory=tmp_path / "runs", **ONE_TRIAL)
    assert result.trials[0].config["normalization"]["name"] == "rescale_01"
    record = load_result(tmp_path / "runs").data["input_convention"]
    assert (record["kind"], record["normalization"]) == ("in_model", "none")
    assert (record["search"], record["given"]) == ("given", ["rescale_01"])
    assert "Fix: use normalization 'none'" in record["problems"][0]


@pytest.mark.slow
def test_a_backbone_fixes_the_normalization_of_every_trial_and_the_export(make_folder, tmp_path,
                                                                         capsys, monkeypatch):
    data = make_folder([8, 8, 6], size=(16, 16))  # gray 16x16: decoded at 32x32 RGB
    result = autoprep.tune(vgg_model, data, directory=tmp_path / "runs",
                           **{**ONE_TRIAL, "verbose": 1})
    assert "model input: normalization fixed to caffe_bgr by the model (VGG backbone " \
           "'vgg16'" in capsys.readouterr().err
    assert result.data["image_size"] == [32, 32] and result.data["channels"] == 3
    assert {t.config["normalization"]["name"] for t in result.trials} == {"caffe_bgr"}
    assert result.data["input_convention"]["search"] == "fixed"
    path = result.export(tmp_path / "pipeline.py")
    spec = importlib.util.spec_from_file_location("backbone_pipeline", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    images = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    expected = keras.applications.vgg16.preprocess_input(images.astype("float32"))
    np.testing.assert_allclose(module.preprocess(images).numpy(), expected, atol=1e-5)
    assert main(["show", str(tmp_path / "runs" / "data0")]) == 0
    assert "model input: normalization fixed to caffe_bgr" in capsys.readouterr().out


# -- show, the progress line and the report ----------------------------------------------------
def with_convention(run_dir, record):
    path = run_dir / "results.json"
    state = json.loads(path.read_text())
    state["data"]["input_convention"] = record.to_dict()
    path.write_text(json.dumps(state))
    return run_dir


def test_show_says_the_normalization_is_fixed_and_old_runs_say_nothing(old_run, capsys):
    assert main(["show", str(old_run)]) == 0
    assert "model input" not in capsys.readouterr().out
    given = InputConvention("in_model", "none", "Rescaling 'r'", "scales itself", search="given",
                            given=("rescale_01",), problems=("Double scaling: ... Fix: none.",))
    for record, lines in [
        (FIXED_RECORD, ["model input: normalization fixed to rescale_pm1 by the model "
                        "(MobileNetV2 backbone 'mobilenetv2_0.35_32': expects x / 127.5 - 1); "
                        "the trials search augmentation and class imbalance"]),
        (given, ["model input: normalization rescale_01 as given in the search space, although "
                 "the model expects none (Rescaling 'r': scales itself)",
                 "warning: Double scaling: ... Fix: none."]),
    ]:
        assert main(["show", str(with_convention(old_run, record))]) == 0
        shown = capsys.readouterr().out.splitlines()
        assert all(line in shown for line in lines), shown


def test_the_progress_line_says_it_once(old_run, capsys):
    result = load_result(with_convention(old_run, FIXED_RECORD))
    rundir.write_run_state(str(old_run), {"settings": {}, "interrupted": {}})  # a run's marker
    progress = Progress(str(old_run), max_trials=3)
    progress.trial_ended(result, result.trials[0])
    progress.trial_ended(result, result.trials[1])
    out = capsys.readouterr().out
    assert out.count("model input: normalization fixed to rescale_pm1") == 1
    assert "model input: normalization fixed" in (old_run / "autoprep.log").read_text()


def test_the_report_says_what_the_model_expects(tmp_path):
    run_dir = shutil.copytree(OLD_RUN, tmp_path / "run")
    assert "Model input" not in sections.answer(sections.Context(load_result(run_dir)))
    hostile = InputConvention("in_model", "none", "Rescaling '<b>'", "x", search="given",
                              given=("rescale_01",), problems=("Double <scaling>",))
    result = load_result(with_convention(run_dir, hostile))
    text = sections.answer(sections.Context(result))
    assert "Model input: normalization rescale_01 as given in the search space" in text
    assert "Warning: Double &lt;scaling&gt;" in text and "'<b>'" not in text


# -- the doctor -----------------------------------------------------------------------------------
def input_checks(data, model_fn, normalization):
    """The findings of the doctor's input checks alone (not its training checks)."""
    context = model_checks.ModelContext(data_checks.DataContext(data), model_fn,
                                        normalization=normalization)
    return run_checks(MODEL_CHECKS, context, ["input_convention", "input_scale"])[0]


def test_the_doctor_names_double_scaling_with_the_fix(make_folder):
    data = make_folder([12, 12], mode="RGB")
    report = diagnose(data, rescaling_model, normalization="rescale_01")
    assert report.top.id == "double_scaling", report.format()
    assert "Normalization 'rescale_01' feeds Rescaling" in report.top.evidence
    assert report.top.fix.startswith("Use normalization 'none'")
    fine = input_checks(data, rescaling_model, "none")
    assert [(f.id, f.severity) for f in fine] == [("input_scale", "info")]
    assert "`autoprep tune` feeds such a model raw pixels" in fine[0].fix


VGG_MODEL = """
import keras


def build(input_shape, num_classes):
    base = keras.applications.VGG16(include_top=False, weights=None, input_shape=input_shape)
    inputs = keras.Input(input_shape)
    x = keras.layers.Flatten()(base(inputs))
    return keras.Model(inputs, keras.layers.Dense(num_classes)(x))
"""


def vgg_checks(data, tmp_path, normalization):
    (tmp_path / "vgg.py").write_text(VGG_MODEL)
    return input_checks(data, f"{tmp_path / 'vgg.py'}:build", normalization)


def test_the_doctor_names_a_backbone_fed_the_wrong_range(make_folder, tmp_path):
    data = make_folder([12, 12], mode="RGB", size=(32, 32))
    [found] = vgg_checks(data, tmp_path, "rescale_01")
    assert (found.id, found.severity, found.dimension) == (
        "backbone_input_range", "error", "normalization")
    assert "VGG backbone 'vgg16' is fed [0, 1]" in found.evidence
    assert found.fix.startswith("Use normalization 'caffe_bgr'")
    [info] = vgg_checks(data, tmp_path, None)  # what autoprep would feed: no unscaled_input
    assert (info.id, info.severity) == ("input_convention", "info")
    assert info.title == "The model expects normalization 'caffe_bgr'"


def test_doctor_normalization_option(make_folder, tmp_path, capsys):
    data = make_folder([12, 12], mode="RGB")
    (tmp_path / "model.py").write_text(RESCALING_FILE)
    model = f"{tmp_path / 'model.py'}:build"
    assert main(["doctor", data, "--model", model, "--normalization", "rescale_pm1",
                 "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["findings"][0]["id"] == "double_scaling"
    assert "Normalization 'rescale_pm1' feeds Rescaling" in report["findings"][0]["evidence"]


def test_an_unknown_normalization_is_refused_listing_the_valid_ones(make_folder, capsys):
    data = make_folder([4, 4])
    with pytest.raises(UnknownChoiceError, match="Unknown normalization 'bogus'. Expected one "
                       "of: none, rescale_01"):
        diagnose(data, rescaling_model, normalization="bogus")
    assert main(["doctor", data, "--normalization", "bogus"]) == 2
    assert "Unknown normalization 'bogus'" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_normalization_option_wins_and_its_warning_is_a_line(folder, tmp_path, capsys):
    (tmp_path / "model.py").write_text(RESCALING_FILE)
    run_dir = tmp_path / "runs" / "run"
    assert main(["tune", folder, "--model", f"{tmp_path / 'model.py'}:build",
                 "--out", str(run_dir), "--normalization", "rescale_01", "--max-trials", "1",
                 "--epochs", "1", "--tuner", "random", "--seed", "0", "--final-repeats", "1",
                 "--reevaluate", "0"]) == 0
    captured = capsys.readouterr()
    assert ("warning: Double scaling: the pipeline scales pixels that the model scales again. "
            "Normalization 'rescale_01' feeds Rescaling") in captured.err
    assert "UserWarning" not in captured.err  # said as a line, not as Python's warning
    assert ("model input: normalization rescale_01 as given in the search space, although the "
            "model expects none") in captured.out
    log = (run_dir / "autoprep.log").read_text()
    assert "warning: Double scaling" in log and "model input: normalization rescale_01" in log
    assert load_result(run_dir).trials[0].config["normalization"]["name"] == "rescale_01"
