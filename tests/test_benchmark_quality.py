"""The quality benchmark (benchmarks/quality.py): its folders, its verdicts, and a smoke run."""

import json
import os

import numpy as np
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def quality():
    return load_benchmark("quality")


def test_folders_are_imbalanced_and_one_has_a_minority_of_at_most_15(quality):
    specs = quality.folder_specs(smoke=False)
    assert {"digits_ir10", "digits_ir100", "gray_textures", "color_patches"} <= set(specs)
    smallest = {}
    for name, (_, build) in specs.items():
        images, labels, class_names = build()
        counts = np.bincount(labels, minlength=len(class_names))
        assert images.dtype == np.uint8 and 8 <= images.shape[1] <= 24, name
        assert counts.max() / counts.min() >= 4, name
        smallest[name] = counts.min()
    assert min(smallest.values()) <= 15
    assert smallest["digits_ir100"] == 4  # the ratio-100 profile, floored so the split works


def test_long_tail_reaches_the_ratio(quality):
    assert quality.long_tail(178, 10, 10) == [178, 138, 107, 83, 64, 50, 38, 30, 23, 18]
    assert quality.long_tail(178, 100, 10, floor=4)[-3:] == [5, 4, 4]


def test_photo_classes_are_disjoint_regions(quality):
    for classes in (quality.GRAY_TEXTURE_CLASSES, quality.COLOR_PATCH_CLASSES):
        for i, (_, photo_a, (a0, a1, a2, a3)) in enumerate(classes):
            for _, photo_b, (b0, b1, b2, b3) in classes[i + 1:]:
                overlap = a0 < b1 and b0 < a1 and a2 < b3 and b2 < a3
                assert photo_a != photo_b or not overlap


def test_autoprep_sees_only_the_training_part(quality, tmp_path):
    images, labels, names = quality.folder_specs(smoke=False)["gray_textures"][1]()
    train, test = quality.outer_split(labels)
    assert not set(train) & set(test)
    assert np.bincount(labels[test]).tolist() == [45, 15, 4, 4]  # stratified, 25 %
    root = quality.write_folder(str(tmp_path / "train"), images[train], labels[train], names)
    written = sum(len(files) for _, _, files in os.walk(root))
    assert written == len(train)
    # autoprep numbers classes in sorted folder order: it must be the label order here
    folders = sorted(os.listdir(root))
    counts = [len(os.listdir(os.path.join(root, f))) for f in folders]
    assert counts == np.bincount(labels[train]).tolist() == [135, 45, 11, 11]


def _row(mean, std):
    return {metric: {"mean": mean, "std": std} for metric in ("balanced_accuracy", "macro_f1")}


def test_targets_say_what_is_missed_and_what_is_noise(quality):
    rows = {row: _row(0.80, 0.01) for row in quality.HAND_ROWS + quality.REFERENCE_ROWS}
    rows["z-score"] = _row(0.90, 0.01)
    rows["TrivialAugment + z-score"] = _row(0.86, 0.05)
    rows["autoprep (search seed 0)"] = _row(0.87, 0.02)
    rows["autoprep (search seed 1)"] = _row(0.83, 0.02)
    found = quality.targets(rows)
    assert found["best_hand_row"] == "z-score"
    seed_0 = found["autoprep (search seed 0)"]
    assert seed_0["vs best hand (>= -0.02)"] == {"diff": -0.03, "met": False,
                                                 "within_noise": False}
    assert seed_0["above HyperImageAugment (KT)"]["met"]
    assert seed_0["above TrivialAugment + z-score"] == {"diff": 0.01, "met": True,
                                                        "within_noise": True}
    assert found["search seeds (|diff| <= 0.03)"]["met"] is False


@pytest.mark.slow
def test_smoke_run_writes_every_row_and_the_tables(quality, tmp_path):
    out = tmp_path / "smoke.json"
    quality.main(["--smoke", "--out", str(out)])
    report = json.loads(out.read_text())
    (folder,) = report["folders"].values()
    expected = {"autoprep (search seed 0)", "autoprep (search seed 1)",
                *quality.HAND_ROWS, *quality.REFERENCE_ROWS}
    assert set(folder["rows"]) == expected
    for row in folder["rows"].values():
        for metric in ("balanced_accuracy", "macro_f1"):
            assert len(row[metric]["values"]) == 2
            assert 0 <= row[metric]["mean"] <= 1
    assert folder["rows"]["autoprep (search seed 0)"]["trials"] == 2
    tables = quality.render(report)
    assert "| autoprep (search seed 1) |" in tables and "| smoke_digits |" in tables


def _report(tmp_path, name, rows, *, fingerprint="abc", commit="c1"):
    folder = {"description": "d", "fingerprint": fingerprint, "rows": rows,
              "seconds": {row: 1.0 for row in rows}}
    report = {"command": f"python benchmarks/quality.py {name}", "started": "t",
              "autoprep_commit": commit, "settings": {"trials": 15, "epochs": 12,
                                                      "train_seeds": [0], "search_seeds": [0, 1]},
              "folders": {"f": folder}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(report))
    return str(path)


def test_merge_joins_rows_keeps_their_source_and_refuses_other_data(quality, tmp_path):
    references = {row: _row(0.8, 0.01) for row in quality.HAND_ROWS + quality.REFERENCE_ROWS}
    searches = {f"autoprep (search seed {s})": _row(0.85, 0.01) for s in (0, 1)}
    merged = quality.merge_reports([_report(tmp_path, "refs", references),
                                    _report(tmp_path, "final", searches, commit="c2")])
    folder = merged["folders"]["f"]
    assert list(folder["rows"])[:2] == list(searches)  # the fixed row order
    assert set(folder["rows"]) == set(references) | set(searches)
    assert folder["row_sources"]["autoprep (search seed 0)"]["autoprep_commit"] == "c2"
    assert folder["row_sources"]["z-score"]["autoprep_commit"] == "c1"
    assert folder["targets"]["autoprep (search seed 1)"]["above HyperImageAugment (KT)"]["met"]
    other = _report(tmp_path, "other", searches, fingerprint="xyz")
    with pytest.raises(SystemExit, match="holds other data"):
        quality.merge_reports([_report(tmp_path, "refs", references), other])
