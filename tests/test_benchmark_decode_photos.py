"""The photo decoding benchmark (benchmarks/decode_photos.py): its photos, and a smoke run."""

import pytest
from helpers import load_benchmark

from autoprep.data.index import index_directory


@pytest.fixture(scope="module")
def decode_photos():
    return load_benchmark("decode_photos")


def test_every_fourth_photo_is_a_portrait_phone_photo(decode_photos, tmp_path):
    root = decode_photos.write_photos(str(tmp_path / "photos"), 8, size=(30, 40), classes=2)
    index = index_directory(root)
    assert [int(path[-9:-4]) for path in index.paths] == [0, 2, 4, 6, 1, 3, 5, 7]
    assert index.decodings == [1, 1, 1, 1, 1, 6, 1, 6]  # JPEGs; 3 and 7 turned a quarter
    assert index.sizes == [(30, 40)] * 5 + [(40, 30), (30, 40), (40, 30)]  # shown portrait


def test_smoke_run_measures_memory_and_time(decode_photos, tmp_path):
    result = decode_photos.main(["--smoke", "--out", str(tmp_path / "photos")])
    measured = result["measured"]
    assert measured["images"] == 8 and measured["orientations"] == {"1": 6, "6": 2}
    assert measured["sizes_shown"] == ["150x200", "200x150"]
    assert 0 < measured["rss_before_bytes"] <= measured["peak_rss_bytes"]
    assert measured["decode_seconds"] > 0
    text = (tmp_path / "photos.md").read_text()
    assert "peak resident memory while decoding" in text and "Command: `python" in text
    assert "load average at the end" in text
