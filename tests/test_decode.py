"""Decoding: size chosen from the headers, one parallel pass into one array (in RAM or
memory-mapped under a limit), a skipped file per decoding error, and a reusable cache."""

import collections
import dataclasses
import os

import numpy as np
import pytest
from helpers import tiny_model, write_folder
from PIL import Image

import autoprep
from autoprep.data import decode, memory, sizes
from autoprep.data.decode import decode_index, read_image_folder
from autoprep.data.index import choose_image_size, index_directory
from autoprep.data.memory import parse_size
from autoprep.errors import ArgumentError, DataError

Usage = collections.namedtuple("Usage", "total used free")


def _truncate(path):
    """Keeps the header (PIL reads the size) but cuts the pixel data."""
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])


def _pixels(data_dir, folder):
    return np.stack([np.asarray(Image.open(os.path.join(data_dir, p))) for p in folder.paths])


def test_default_size_is_the_median_capped_at_256_on_the_long_side():
    assert choose_image_size([(3000, 4000)] * 3 + [(600, 800)]) == (192, 256)
    assert choose_image_size([(8, 8), (12, 20), (10, 10)]) == (10, 10)
    assert choose_image_size([(1000, 20)]) == (256, 5)


def test_the_plan_states_size_and_estimate_before_decoding(tmp_path):
    data_dir = write_folder(tmp_path / "data", [2, 2], size=(300, 600), mode="RGB")
    plans = []
    folder = read_image_folder(data_dir, on_plan=plans.append)
    assert folder.image_size == (128, 256)
    (plan,) = plans
    assert plan.nbytes == folder.images.nbytes == 4 * 128 * 256 * 3
    assert plan.describe() == (
        "data: 4 images at 128x256x3 (their common size 300x600 scaled to 256 on the long "
        f"side), 384.0 KiB decoded, in memory (limit {decode.format_bytes(plan.memory_limit)})"
        "\ntrials train at this size; image_size=(64, 128) (--image-size 64x128) would make "
        "them about 4 times as fast"
    )
    # Below 64 pixels on the short side, half the size is not proposed.
    small = dataclasses.replace(plan, image_size=(63, 256))
    assert "\n" not in small.describe() and sizes.half_size((63, 256)) is None


def test_a_file_that_fails_to_decode_is_skipped_with_its_reason(tmp_path):
    data_dir = write_folder(tmp_path / "data", [4, 4])
    _truncate(os.path.join(data_dir, "class_0", "img_001.png"))
    with pytest.warns(UserWarning, match=r"class_0/img_001.png: cannot decode \(Invalid PNG"):
        folder = read_image_folder(data_dir)
    assert "class_0/img_001.png" not in folder.paths and len(folder.paths) == 7
    assert folder.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    np.testing.assert_array_equal(folder.images[..., 0], _pixels(data_dir, folder))


def test_over_the_memory_limit_the_images_are_memory_mapped(tmp_path):
    data_dir = write_folder(tmp_path / "data", [5, 4], mode="RGB")
    _truncate(os.path.join(data_dir, "class_1", "img_000.png"))
    index = index_directory(data_dir)
    in_ram = decode_index(index)
    mapped = decode_index(index, memory_limit="1k")
    assert isinstance(mapped.images, np.memmap) and not isinstance(in_ram.images, np.memmap)
    assert mapped.paths == in_ram.paths and len(mapped.paths) == 8
    np.testing.assert_array_equal(mapped.images, in_ram.images)
    assert mapped.skipped == in_ram.skipped


def test_files_decoded_a_few_at_a_time_give_the_same_folder(tmp_path, monkeypatch):
    data_dir = write_folder(tmp_path / "data", [5, 4], size=(8, 8), mode="RGB")
    write_folder(tmp_path / "data", [0, 3], size=(12, 10), mode="L")  # resized, made RGB
    _truncate(os.path.join(data_dir, "class_0", "img_002.png"))
    index = index_directory(data_dir)
    whole = decode_index(index, image_size=(8, 8))
    monkeypatch.setattr(decode, "DECODE_CHUNK", 3)
    chunks = []
    monkeypatch.setattr(decode, "_decode_into", lambda *args, into=decode._decode_into: (
        chunks.append(len(args[2])), into(*args))[1])
    in_chunks = decode_index(index, image_size=(8, 8))
    assert max(chunks) == 3 and sum(chunks) > len(index.paths)  # the unready ones again
    assert in_chunks.paths == whole.paths and len(whole.paths) == len(index.paths) - 1
    np.testing.assert_array_equal(in_chunks.images, whole.images)
    assert in_chunks.skipped == whole.skipped


def test_a_memory_mapped_cache_is_reused_until_a_file_changes(tmp_path, monkeypatch):
    data_dir = write_folder(tmp_path / "data", [3, 3])
    cache_dir = tmp_path / "run" / "cache"
    first = read_image_folder(data_dir, memory_limit=100, cache_dir=cache_dir)
    assert len(os.listdir(cache_dir)) == 2  # the .npy and its manifest

    def no_decoding(*args):
        raise AssertionError("decoded again")

    plans = []
    with monkeypatch.context() as patch:
        patch.setattr(decode, "decode_files", no_decoding)
        again = read_image_folder(data_dir, memory_limit=100, cache_dir=cache_dir,
                                  on_plan=plans.append)
    assert plans[0].reused and "decoded by an earlier run" in plans[0].describe()
    np.testing.assert_array_equal(again.images, first.images)
    assert again.paths == first.paths

    Image.new("L", (8, 8), 255).save(os.path.join(data_dir, "class_0", "img_000.png"))
    changed = read_image_folder(data_dir, memory_limit=100, cache_dir=cache_dir)
    assert changed.images[0].max() == 255
    assert len(os.listdir(cache_dir)) == 2  # the old cache was removed


def test_a_memory_map_that_does_not_fit_on_the_disk_is_a_clear_error(tmp_path, monkeypatch):
    data_dir = write_folder(tmp_path / "data", [3, 3])
    monkeypatch.setattr(memory.shutil, "disk_usage", lambda path: Usage(10**9, 10**9, 100))
    with pytest.raises(DataError, match=r"The decoded images need 384 B in .*cache' \(over the "
                                        r"memory limit.*only 100 B is free"):
        read_image_folder(data_dir, memory_limit=1, cache_dir=tmp_path / "run" / "cache")


@pytest.mark.parametrize("text, size", [("512M", 512 << 20), ("2G", 2 << 30),
                                        ("1.5g", 3 << 29), ("300kB", 300 << 10), (4096, 4096),
                                        ("2GiB", 2 << 30)])
def test_memory_limit_takes_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["lots", "0", "-1G", "2X", ""])
def test_a_bad_memory_limit_is_a_clear_error(text):
    with pytest.raises(ArgumentError, match=r"`memory_limit` must be a positive size such as "
                                            r"512M, 2G or a number of bytes. Received"):
        parse_size(text)


@pytest.mark.slow
def test_tune_prints_the_plan_first_and_a_resumed_run_reuses_its_memory_map(tmp_path, capsys):
    data_dir = write_folder(tmp_path / "data", [6, 6])
    settings = {"epochs": 1, "tuner": "random", "seed": 0, "test_split": 0,
                "directory": tmp_path / "runs", "memory_limit": 700,
                "space": autoprep.SearchSpace(flip="none", policy="none")}
    autoprep.tune(tiny_model, data_dir, max_trials=1, **settings)
    cache = tmp_path / "runs" / "data" / "cache"
    (npy,) = [name for name in os.listdir(cache) if name.endswith(".npy")]
    assert capsys.readouterr().err.splitlines()[0] == (
        "data: 12 images at 8x8x1 (their common size), 768 B decoded, over the memory limit "
        f"700 B: memory-mapped in {cache / npy}")
    result = autoprep.tune(tiny_model, data_dir, max_trials=2, **settings)
    assert len(result.trials) == 2
    assert "decoded by an earlier run" in capsys.readouterr().err.splitlines()[0]
