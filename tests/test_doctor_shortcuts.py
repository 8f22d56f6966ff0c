"""autoprep.doctor shortcut checks: the class told from cheap properties (size, format, camera,
brightness, a border or a watermark) on folders with one planted shortcut and on clean
controls."""

import os

import numpy as np
import pytest
from doctor_images import photo_crops, planted_folder
from PIL import Image

from autoprep.doctor import shortcut_checks
from autoprep.doctor._checks import DATA_CHECKS, run_checks
from autoprep.doctor.data_checks import DataContext

SHORTCUTS = {  # planted_folder options, severity, property group named first, its words
    "size": (dict(size=[(16, 16), (16, 32)]), "warning", "size", "image size / aspect ratio"),
    "format": (dict(fmt=["png", "jpg"]), "warning", "format", "file format / extension"),
    "camera": (dict(fmt=["jpg", "jpg"], camera=["CamA", "CamB"]), "warning", "camera",
               "EXIF camera model"),
    "border": (dict(border=[0, 2]), "warning", "region", "a constant border or watermark"),
    "watermark": (dict(watermark=[False, True], size=[(32, 32)] * 2), "warning", "region",
                  "a constant border or watermark"),
    "brightness": (dict(scale=[1.0, 0.6]), "info", "brightness", "mean brightness / color"),
}


def _checked(root, *names):
    findings, _ = run_checks(DATA_CHECKS, DataContext(root), names=names)
    return findings


@pytest.mark.parametrize("planted", sorted(SHORTCUTS))
def test_a_planted_shortcut_is_found_and_named(tmp_path, planted):
    options, severity, group, words = SHORTCUTS[planted]
    [finding] = _checked(planted_folder(tmp_path / "d", **options), "shortcut")
    assert finding.severity == severity
    assert finding.title.startswith(f"The class can be told from {words}"), finding.title
    assert finding.data["carriers"][0] == group or group in finding.data["carriers"]
    assert finding.data["properties"][group] >= finding.data["threshold"]
    assert finding.data["balanced_accuracy"] >= finding.data["threshold"] > 0.5
    if planted == "watermark":
        assert "'c1': bottom-right watermark in 100% of images" in finding.evidence
    if planted == "size":  # height x width, as mixed_sizes writes sizes
        assert "(height x width) 'c0': 16x16 100%; 'c1': 16x32 100%" in finding.evidence
    if planted == "border":
        assert "border in 100% of images" in finding.evidence


def _unrelated_properties(root, seed):
    """Re-saves each image with a random size, format and brightness, whatever its class."""
    rng = np.random.default_rng(seed)
    for folder in sorted(os.listdir(root)):
        for name in sorted(os.listdir(os.path.join(root, folder))):
            path = os.path.join(root, folder, name)
            image = Image.open(path).convert("RGB")
            os.remove(path)
            if rng.random() < 0.5:
                image = image.resize((24, 16))
            pixels = np.asarray(image) * rng.uniform(0.6, 1.0)
            extension = ["png", "jpg"][rng.integers(2)]
            Image.fromarray(pixels.astype(np.uint8)).save(
                os.path.join(root, folder, f"{name[:-4]}.{extension}"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clean_folders_and_properties_unrelated_to_the_class_give_no_finding(tmp_path, seed):
    assert _checked(planted_folder(tmp_path / "clean", (20, 20, 20), seed=seed),
                    "shortcut") == []
    root = planted_folder(tmp_path / "mixed", seed=seed)
    _unrelated_properties(root, seed)
    assert _checked(root, "shortcut") == []


def test_the_threshold_is_a_margin_over_chance_widened_for_small_folders():
    chance, bar, sd = shortcut_checks.threshold(np.repeat([0, 1], 1000), 2)
    assert chance == 0.5 and bar == pytest.approx(0.5 + shortcut_checks.MARGIN)
    chance, bar, sd = shortcut_checks.threshold(np.repeat([0, 1, 2], [12, 12, 6]), 3)
    assert bar == pytest.approx(1 / 3 + shortcut_checks.Z * sd) and bar > 1 / 3 + 0.25


def test_photos_with_sky_are_no_border_but_letterbox_bars_are(tmp_path):
    # Two photographs, large overlapping crops: the china photo's sky recurs at the top.
    [finding] = _checked(photo_crops(tmp_path / "photos", (100, 100), zoom=(5.0, 6.5)),
                         "shortcut")
    assert finding.severity == "info" and finding.data["carriers"] == ["brightness"]
    [finding] = _checked(photo_crops(tmp_path / "bars", (40, 40, 40), letterbox=[0, 0, 4]),
                         "shortcut")
    assert "region" in finding.data["carriers"] and finding.severity == "warning"
    assert finding.title.startswith("The class can be told from a constant border")
    assert "'c2': top and bottom border in 100% of images" in finding.evidence
