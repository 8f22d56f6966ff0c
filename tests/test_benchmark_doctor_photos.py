"""The doctor's photo benchmarks (benchmarks/doctor_photos.py, doctor_first_finding.py): the
subset they time, and a clean skip when the photo folders are absent."""

import os

import pytest
from helpers import load_benchmark


@pytest.mark.parametrize("name", ["doctor_photos", "doctor_first_finding"])
def test_an_absent_photo_folder_is_skipped_and_nothing_written(name, tmp_path, capsys):
    out = tmp_path / "results" / name
    missing = str(tmp_path / "no_photos")
    assert load_benchmark(name).main(["--folder", missing, "--out", str(out)]) is None
    assert f"skipped: no folder at {missing}" in capsys.readouterr().out
    assert not (tmp_path / "results").exists()


def test_subset_takes_the_same_share_of_each_class(tmp_path):
    folder = tmp_path / "photos"
    for name, count in (("a", 30), ("b", 10)):
        (folder / name).mkdir(parents=True)
        for i in range(count):
            (folder / name / f"{i:02d}.jpg").write_bytes(b"x")
    root = load_benchmark("doctor_photos").subset(str(folder), 20, str(tmp_path / "cut"))
    assert sorted(os.listdir(os.path.join(root, "a"))) == [f"{i:02d}.jpg" for i in range(15)]
    assert len(os.listdir(os.path.join(root, "b"))) == 5
