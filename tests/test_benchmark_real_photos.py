"""The real-photo benchmark (benchmarks/real_photos.py): its folders, its skip without photos,
and its targets; the training rows are measured by the benchmark itself."""

import numpy as np
import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def real_photos():
    return load_benchmark("real_photos")


def test_without_photos_it_says_where_to_put_them_and_skips(real_photos, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.delenv(real_photos.ENVIRONMENT, raising=False)
    assert real_photos.main(["--folders", "ants_bees", "weather"]) is None
    out = capsys.readouterr().out
    assert out.startswith("real_photos: no photos at a folder named by --photos DIR or "
                          "$AUTOPREP_PHOTOS: skipped.")
    assert "| weather |" in out and "9bbc18025a4e" in out  # the source and its commit
    assert real_photos.main(["--photos", str(tmp_path), "--folders", "ants_bees"]) is None
    assert f"no photos at {tmp_path}" in capsys.readouterr().out


def test_byte_copies_are_kept_once_and_conflicting_labels_dropped(real_photos, tmp_path):
    for name, data in (("a/1.jpg", b"one"), ("a/2.jpg", b"one"), ("a/3.png", b"three"),
                       ("b/4.jpg", b"three"), ("b/5.jpg", b"five"), ("b/notes.txt", b"x")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    paths, labels, class_names, dropped = real_photos.list_photos(str(tmp_path))
    assert (paths, labels.tolist(), class_names) == (["a/1.jpg", "b/5.jpg"], [0, 1], ["a", "b"])
    assert dropped == {"duplicates": 1, "conflicting_labels": 2}


def test_the_cap_keeps_each_class_share(real_photos):
    labels = np.array([0] * 300 + [1] * 100)
    kept = real_photos.cap(labels, 200)
    assert len(kept) == 200 and np.bincount(labels[kept]).tolist() == [150, 50]
    assert real_photos.cap(labels, 1000).tolist() == list(range(400))


def test_a_target_is_the_best_hand_row_minus_002(real_photos):
    def row(mean, std=0.01):
        return {"balanced_accuracy": {"mean": mean, "std": std}}

    rows = {name: row(0.70) for name in real_photos.HAND_ROWS}
    rows["z-score"] = row(0.80)
    rows["autoprep (search seed 0)"] = row(0.785)
    rows["autoprep (search seed 1)"] = row(0.75, std=0.06)
    found = real_photos.targets(rows)
    assert found["best_hand_row"] == "z-score"
    assert found["autoprep (search seed 0)"]["met"]
    missed = found["autoprep (search seed 1)"]
    assert not missed["met"] and missed["within_noise"]  # -0.05, inside a std of 0.06
