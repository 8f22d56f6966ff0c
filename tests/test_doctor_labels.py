"""autoprep.doctor label checks: cleanlab on out-of-fold probabilities of the probe network (or
the user's model), on folders with planted label errors and clean controls."""

import json
import types

import numpy as np
import pytest
from doctor_images import label_folder
from helpers import tiny_model

from autoprep.cli import main
from autoprep.doctor import Finding, Report, _probe, label_checks
from autoprep.doctor._checks import DATA_CHECKS, run_checks
from autoprep.doctor.data_checks import DataContext
from autoprep.report import sections

PLANTED = ((0, 1), (1, 2), (2, 0))  # (the class it shows, the folder it is filed in)


def _labels(ctx):
    findings, _ = run_checks(DATA_CHECKS, ctx, names=["label_issues"])
    return findings


def _fake_context(labels, class_names):
    folder = types.SimpleNamespace(labels=np.asarray(labels), class_names=class_names,
                                   paths=[f"{class_names[c]}/{i:03d}.png"
                                          for i, c in enumerate(labels)])
    return types.SimpleNamespace(folder=folder, class_names=class_names)


def test_cleanlab_flags_the_confidently_other_images_most_likely_first():
    labels = np.repeat([0, 1, 2], 40)
    probabilities = np.full((120, 3), 0.02)
    probabilities[np.arange(120), labels] = 0.96
    wrong = {5: (2, 0.005), 50: (0, 0.01), 100: (1, 0.02)}  # index: (looks like, p(given))
    for index, (other, given) in wrong.items():
        probabilities[index] = given
        probabilities[index, other] = 0.975
    result = _probe.OutOfFold(probabilities, np.arange(120), 1.0, 0.0, 5, 10)
    issues = label_checks.label_issues(_fake_context(labels, ["a", "b", "c"]), result)
    assert [i["path"] for i in issues] == ["a/005.png", "b/050.png", "c/100.png"]
    assert [i["suggested"] for i in issues] == ["c", "a", "b"]
    assert [i["given"] for i in issues] == ["a", "b", "c"]
    assert issues[0]["score"] < issues[1]["score"] < issues[2]["score"]


def test_training_sample_is_stratified_and_keeps_small_classes():
    labels = np.array([0] * 5000 + [1] * 30)
    chosen = _probe.training_sample(labels, limit=1000)
    counts = np.bincount(labels[chosen])
    assert abs(len(chosen) - 1000) <= 10 and counts[1] == 2 * _probe.FOLDS
    assert np.array_equal(_probe.training_sample(labels[:900]), np.arange(900))


def test_folds_train_a_fixed_number_of_steps_up_to_an_epoch_limit():
    largest = _probe.MAX_TRAINED - _probe.MAX_TRAINED // _probe.FOLDS
    assert _probe.fold_epochs(largest) == 6 and _probe.fold_epochs(800) == 12
    assert _probe.fold_epochs(320) == _probe.FOLD_STEPS * _probe.BATCH_SIZE // 320
    assert _probe.fold_epochs(10) == _probe.MAX_EPOCHS
    assert _probe.training_steps(1000) == 5 * -(-800 * 12 // 32)
    assert _probe.training_steps(_probe.MAX_TRAINED) == 5 * 300


def test_probe_sees_small_images_at_their_size_and_large_ones_at_32():
    assert _probe.probe_side((8, 8)) == 8 and _probe.probe_side((480, 640)) == 32
    inputs = _probe.probe_inputs(np.full((4, 64, 48, 3), 200, np.uint8), 32)
    assert inputs.shape == (4, 32, 32, 3) and np.allclose(inputs, 0)
    model = _probe.probe_network((8, 8, 3), 4)
    assert model.output_shape == (None, 4)


def test_no_check_below_the_class_size_the_folds_need(tmp_path):
    label_folder(tmp_path / "d", counts=(19, 30, 30))
    assert _labels(DataContext(tmp_path / "d")) == []


def test_unlearned_classes_give_an_honest_note_not_a_list(tmp_path, monkeypatch):
    label_folder(tmp_path / "d", counts=(20, 20, 20))
    ctx = DataContext(tmp_path / "d")
    chance = np.full((60, 3), 1 / 3)
    result = _probe.OutOfFold(chance, np.arange(60), 0.36, 1.0, 5, 40)
    monkeypatch.setattr(label_checks, "out_of_fold", lambda ctx: (
        result, {"learner": "probe", "name": "probe CNN", "reason": "no model was given"}))
    [finding] = _labels(ctx)
    assert finding.id == "label_issues_unchecked" and finding.severity == "info"
    assert "0.36" in finding.evidence and "issues" not in finding.data


@pytest.mark.slow
def test_planted_label_errors_are_listed_first_and_a_clean_folder_has_none(tmp_path, capsys):
    planted = label_folder(tmp_path / "bad", planted=PLANTED)
    [finding] = _labels(DataContext(tmp_path / "bad"))
    assert finding.id == "label_issues" and finding.severity == "warning"
    issues = finding.data["issues"]
    assert {i["path"] for i in issues[:3]} == set(planted), issues
    shown = {i["path"]: i["suggested"] for i in issues}
    assert [shown[path] for path in planted] == ["c0", "c1", "c2"]  # the class each shows
    assert finding.data["learner"] == "probe" and finding.data["folds"] == 5
    assert "probe CNN on 12x12 images" in finding.evidence
    # --json carries the whole list.
    assert main(["doctor", str(tmp_path / "bad"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    found = next(f for f in data["findings"] if f["id"] == "label_issues")
    assert found["data"]["issues"] == issues
    # The negative control: the same folder without the planted images.
    label_folder(tmp_path / "clean")
    assert _labels(DataContext(tmp_path / "clean")) == []


@pytest.mark.slow
def test_the_users_model_is_trained_when_fast_and_the_probe_otherwise(tmp_path, monkeypatch):
    planted = label_folder(tmp_path / "d", planted=PLANTED)
    ctx = DataContext(tmp_path / "d", model_fn=tiny_model)
    [finding] = _labels(ctx)
    assert finding.data["learner"] == "model" and finding.data["model"] == "tiny_model"
    assert "training step of the user's model tiny_model takes" in finding.evidence
    # A weaker model than the probe (a dense layer on stripes): most, not all, planted first.
    assert len({i["path"] for i in finding.data["issues"][:3]} & set(planted)) >= 2
    monkeypatch.setattr(label_checks, "USER_MODEL_SECONDS", 0.0)
    [finding] = _labels(DataContext(tmp_path / "d", model_fn=tiny_model))
    assert finding.data["learner"] == "probe"
    assert "probe used: a training step of the user's model tiny_model" in finding.evidence


def test_the_report_shows_the_flagged_images_as_thumbnails(tmp_path):
    planted = label_folder(tmp_path / "d", counts=(4, 4, 4), planted=PLANTED)
    issues = [{"path": p, "given": p[:2], "suggested": "c9", "score": 0.01} for p in planted]
    finding = Finding("label_issues", "warning", "3 image(s) look like another class", "e",
                      "f", data={"issues": issues, "model": "probe CNN on 12x12 images"})
    context = types.SimpleNamespace(doctor=Report("d", {}, [finding], []),
                                    data_dir=str(tmp_path / "d"))
    (tmp_path / "d" / planted[0]).unlink()  # moved since the doctor ran: a gray square
    html = sections.doctor(context)
    assert html.count("<img") == 1 and "Images that look mislabeled" in html
    assert "The 3 likeliest of 3 images cleanlab flags" in html
    assert "<img" not in sections.doctor(types.SimpleNamespace(
        doctor=Report("d", {}, [Finding("x", "warning", "t", "e", "f")], []), data_dir="d"))

