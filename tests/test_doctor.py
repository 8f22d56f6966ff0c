"""autoprep.doctor data checks, report and CLI, on tiny synthetic folders with planted defects."""

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from doctor_images import COLORS, class_image, copy_image, random_grid_image, save, write_images
from PIL import Image

from autoprep.cli import main
from autoprep.doctor import Finding, Report, diagnose
from autoprep.doctor._checks import DATA_CHECKS, run_checks
from autoprep.doctor._hashing import (
    hamming,
    mirrored_pairs,
    near_duplicate_pairs,
    perceptual_hashes,
)
from autoprep.doctor.data_checks import DataContext
from autoprep.errors import DataError

HEALTHY = [12, 12, 12]


def _dark(root):
    write_images(root, HEALTHY, scale=0.12)


def _constant(root):
    write_images(root, HEALTHY)
    for c in range(3):
        save(root, f"c{c}/blank.png", np.full((8, 8, 3), 90, np.uint8))


def _conflicting_labels(root):
    write_images(root, HEALTHY)
    copy_image(root, "c0/000.png", "c1/from_c0.png")


def _split_leakage(root):
    write_images(root, HEALTHY)
    for i in range(8):
        copy_image(root, f"c{i % 3}/{i:03d}.png", f"c{i % 3}/copy_{i}.png", noise=i % 2 * 3)


def _gray_rgb_mix(root):
    write_images(root, HEALTHY)
    rng = np.random.default_rng(1)
    for c in range(3):
        for i in range(3):
            save(root, f"c{c}/gray_{i}.png", class_image(rng, (120,) * 3).mean(-1).astype(np.uint8))


def _corrupt_files(root):
    write_images(root, HEALTHY)
    with open(os.path.join(root, "c0", "broken.png"), "wb") as file:
        file.write(b"not an image at all")
    with open(os.path.join(root, "c1", "000.png"), "rb") as file:
        head = file.read(60)
    with open(os.path.join(root, "c1", "truncated.png"), "wb") as file:
        file.write(head)


def _class_too_small(root):
    write_images(root, [12, 12, 2])


def _already_normalized(root):
    write_images(root, HEALTHY, scale=1 / 255)


def _imbalance(root):
    write_images(root, [60, 3])


def _mixed_bit_depths(root):
    rng = np.random.default_rng(2)
    for c in range(3):
        os.makedirs(os.path.join(root, f"c{c}"))
        for i in range(12):
            gray = class_image(rng, COLORS[c]).mean(-1)
            save(root, f"c{c}/{i:03d}.png", gray.astype(np.uint8))
        save(root, f"c{c}/deep.png", (gray * 257).astype(np.uint16))


def _mixed_sizes(root):
    write_images(root, HEALTHY)
    rng = np.random.default_rng(3)
    for c in range(3):
        wide = np.concatenate([class_image(rng, (90, 90, 90)), class_image(rng, (90, 90, 90))], 1)
        save(root, f"c{c}/wide.png", wide)


def _low_contrast(root):
    write_images(root, HEALTHY, noise=3.0, colors=[(120, 125, 120), (125, 120, 125), (122,) * 3])


PANEL = {
    "dark_images": _dark,
    "constant_images": _constant,
    "conflicting_labels": _conflicting_labels,
    "split_leakage": _split_leakage,
    "mixed_channels": _gray_rgb_mix,
    "corrupt_files": _corrupt_files,
    "class_too_small": _class_too_small,
    "already_normalized": _already_normalized,
    "class_imbalance": _imbalance,
    "mixed_bit_depths": _mixed_bit_depths,
    "mixed_sizes": _mixed_sizes,
    "low_contrast": _low_contrast,
}


@pytest.fixture
def healthy(tmp_path):
    return write_images(tmp_path / "healthy", HEALTHY)


@pytest.mark.parametrize("planted", sorted(PANEL))
def test_top_finding_names_planted_cause(tmp_path, planted):
    root = tmp_path / planted
    PANEL[planted](root)
    report = diagnose(root)
    assert report.top.id == planted, report.format()


def test_healthy_data_has_no_warning_or_error(healthy):
    report = diagnose(healthy)
    assert report.ids("error") == [] and report.ids("warning") == [], report.format()
    assert report.exit_code == 0
    assert set(report.checks) == set(DATA_CHECKS.names())
    assert report.summary["class_counts"] == {"c0": 12, "c1": 12, "c2": 12}


def test_corrupt_files_are_named_not_warned(tmp_path):
    _corrupt_files(tmp_path / "d")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # read_image_folder's warning is caught
        report = diagnose(tmp_path / "d")
    paths = [f["path"] for f in report.findings[0].data["files"]]
    assert paths == ["c0/broken.png", "c1/truncated.png"]
    assert report.exit_code == 1


def test_leakage_pairs_cross_the_split_and_include_near_duplicates(tmp_path):
    _split_leakage(tmp_path / "d")
    report = diagnose(tmp_path / "d")
    pairs = report.findings[0].data["pairs"] + next(
        (f.data["pairs"] for f in report.findings if f.id == "duplicate_images"), [])
    assert len(pairs) == 8
    assert any(" ~ " in pair for pair in pairs) and any(" == " in pair for pair in pairs)


def test_conflicting_labels_name_both_files(tmp_path):
    _conflicting_labels(tmp_path / "d")
    finding = diagnose(tmp_path / "d").top
    assert finding.severity == "error"
    assert finding.data["pairs"] == ["c0/000.png == c1/from_c0.png"]


def test_dimensions_point_at_the_search(tmp_path):
    for planted, dimension in [("dark_images", "normalization"), ("class_imbalance", "imbalance")]:
        PANEL[planted](tmp_path / planted)
        assert diagnose(tmp_path / planted).top.dimension == dimension


def test_missing_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        diagnose(tmp_path / "nope")


def test_finding_rejects_bad_severity_and_dimension():
    with pytest.raises(ValueError, match="`severity` must be one of"):
        Finding("x", "fatal", "t", "e", "f")
    with pytest.raises(ValueError, match="`dimension` must be None or one of"):
        Finding("x", "error", "t", "e", "f", dimension="colour")


def test_report_ranks_by_severity_then_priority():
    findings = [
        Finding("c", "info", "t", "e", "f", priority=0),
        Finding("b", "warning", "t", "e", "f", priority=5),
        Finding("a", "warning", "t", "e", "f", priority=1),
        Finding("d", "error", "t", "e", "f", priority=9),
    ]
    assert Report("d", {}, findings, []).ids() == ["d", "a", "b", "c"]


def test_text_report_fits_80_columns_and_groups_by_severity(tmp_path, monkeypatch):
    _corrupt_files(tmp_path / "d")
    _constant(tmp_path / "d")
    monkeypatch.chdir(tmp_path)  # the first line names the folder as given: keep it short
    text = diagnose("d").format()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.index("ERRORS") < text.index("WARNINGS") < text.index("INFOS")
    assert "fix: Delete or re-export" in text


def test_json_is_stable(tmp_path):
    _dark(tmp_path / "d")
    data = json.loads(diagnose(tmp_path / "d").to_json())
    assert data["schema_version"] == 1
    assert set(data) == {"schema_version", "data_dir", "model", "summary", "counts", "checks",
                         "findings"}
    assert set(data["findings"][0]) == {"id", "severity", "title", "evidence", "fix",
                                        "dimension", "data"}


def test_near_duplicate_search_matches_brute_force():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 8, 8, 3), dtype=np.uint8)
    images[150:] = np.clip(images[:150] + rng.integers(-6, 7, images[:150].shape), 0, 255)
    hashes = perceptual_hashes(images)
    pairs, distances = near_duplicate_pairs(hashes, max_distance=4)
    brute = hamming(hashes[:, None], hashes[None, :])
    i, j = np.nonzero(np.triu(brute <= 4, 1))
    assert sorted(map(tuple, pairs.tolist())) == sorted(zip(i.tolist(), j.tolist(), strict=True))
    assert len(pairs) >= 140 and (distances <= 4).all()


def _copy(root, source, target, change, rng):
    pixels = np.asarray(Image.open(os.path.join(root, source))).astype(float)
    if change == "noise":
        pixels += rng.integers(-5, 6, pixels.shape)
    elif change == "brighter":
        pixels += 20
    elif change == "mirrored":
        pixels = pixels[:, ::-1]
    save(root, target, np.clip(pixels, 0, 255).astype(np.uint8))


def test_changed_and_mirrored_copies_across_the_split_are_counted(tmp_path):
    root = str(tmp_path / "d")
    rng = np.random.default_rng(0)
    for c in range(2):
        os.makedirs(os.path.join(root, f"c{c}"))
        for i in range(40):
            save(root, f"c{c}/{i:03d}.png", random_grid_image(rng))
    kinds = {"identical": "same", "near_duplicates": "noise", "mirrored": "mirrored"}
    planted = []
    for k, (kind, change) in enumerate([*kinds.items(), ("near_duplicates", "brighter")] * 5):
        source, target = f"c{k % 2}/{k:03d}.png", f"c{k % 2}/copy_{k:02d}.png"
        _copy(root, source, target, change, rng)
        planted.append((source, target, kind))
    ctx = DataContext(root)
    where = {path: i for i, path in enumerate(ctx.folder.paths)}
    crossing = [kind for source, target, kind in planted
                if ctx.sides[where[source]] != ctx.sides[where[target]]]
    [finding] = run_checks(DATA_CHECKS, ctx, names=["split_leakage"])[0]
    for kind in kinds:
        assert finding.data[kind] == crossing.count(kind) > 0, (kind, finding.evidence)
    assert finding.title.startswith(f"{len(crossing)} duplicate pair(s) leak")
    assert f"{crossing.count('mirrored')} mirrored copies" in finding.evidence


def test_a_mirrored_copy_in_another_class_is_not_a_label_conflict(tmp_path):
    root = str(tmp_path / "d")  # "left" and "right" classes are each other's mirror images
    rng = np.random.default_rng(1)
    for i in range(12):
        image = random_grid_image(rng)
        for name, pixels in (("left", image), ("right", image[:, ::-1])):
            os.makedirs(os.path.join(root, name), exist_ok=True)
            save(root, f"{name}/{i:03d}.png", np.ascontiguousarray(pixels))
    found, _ = run_checks(DATA_CHECKS, DataContext(root),
                          names=["conflicting_labels", "split_leakage", "duplicate_images"])
    assert found == []


def test_mirrored_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    images = np.stack([random_grid_image(rng, 16) for _ in range(200)])
    images[100:150] = images[:50, :, ::-1]  # 50 mirror images of the first 50
    hashes, mirrored = perceptual_hashes(images, mirror=True)
    pairs = mirrored_pairs(hashes, mirrored, max_distance=4)
    close = hamming(hashes[:, None], mirrored[None, :]) <= 4
    i, j = np.nonzero(np.triu(close | close.T, 1))
    assert sorted(map(tuple, pairs.tolist())) == sorted(zip(i.tolist(), j.tolist()))
    assert {(k, 100 + k) for k in range(50)} <= set(map(tuple, pairs.tolist()))


def _cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "autoprep", "doctor", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_exit_codes(tmp_path, healthy, capsys):
    _conflicting_labels(tmp_path / "bad")
    assert main(["doctor", healthy]) == 0
    assert "No error-level finding." in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "bad"), "--seed", "1"]) == 1
    assert "[conflicting_labels]" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "missing")]) == 2
    assert "autoprep doctor: error: `data_dir`" in capsys.readouterr().err


def test_cli_json_in_a_fresh_process(tmp_path):
    _conflicting_labels(tmp_path / "bad")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "autoprep", "doctor", str(tmp_path / "bad"), "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)["findings"][0]["id"] == "conflicting_labels"
