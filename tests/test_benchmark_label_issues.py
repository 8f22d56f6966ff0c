"""The label-noise benchmark (benchmarks/label_issues.py): its noise, its scores, a smoke run."""

import json
import os

import pytest
from helpers import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("label_issues")


def test_noise_moves_the_share_asked_each_to_another_class(bench, tmp_path):
    root = bench.write_textures(str(tmp_path / "t"), per_class=10, size=8)
    moved = bench.inject_noise(root, 0.2, seed=3)
    assert len(moved) == 12  # 20 % of 6 x 10
    for path in moved:
        folder, name = path.split("/")
        assert os.path.exists(os.path.join(root, path))
        assert name.startswith("moved_from_") and not name.startswith(f"moved_from_{folder}_")
    assert sum(len(files) for _, _, files in os.walk(root)) == 60


def test_top_k_scores_the_first_k_listed(bench):
    listed = ["a", "x", "b", "y"]
    assert bench.top_k(listed, {"a", "b", "c"}, 2) == {
        "k": 2, "listed": 2, "hits": 1, "precision": 0.5, "recall": 1 / 3}
    assert bench.top_k(listed, {"a", "b"}, 10)["precision"] == 0.5  # only 4 listed
    assert bench.top_k([], {"a"}, 3)["precision"] is None


@pytest.mark.slow
def test_smoke_run_writes_the_table(bench, tmp_path):
    out = str(tmp_path / "label_issues")
    bench.main(["--smoke", "--out", out])
    result = json.loads(open(out + ".json", encoding="utf-8").read())
    assert result["smoke"] and {row["folder"] for row in result["rows"]} == {"digits", "textures"}
    for row in result["rows"]:
        assert row["rate"] == 0.1 and row["injected"] == round(0.1 * row["images"])
        assert row["finding"] in ("label_issues", "label_issues_unchecked")
    text = open(out + ".md", encoding="utf-8").read()
    assert "| digits | 300 | 10% |" in text and "Command:" in text
