"""Finding and decoding an image folder: layouts, formats, and the errors for bad input."""

import os

import numpy as np
import pytest
from helpers import write_folder
from PIL import Image

from autoprep.data.decode import read_image_folder
from autoprep.data.index import choose_image_size, index_directory
from autoprep.errors import ArgumentError, DataError


def test_reads_classes_labels_and_pixels_once(image_folder):
    folder = read_image_folder(image_folder)
    assert folder.class_names == ["class_0", "class_1", "class_2"]
    assert folder.images.shape == (24, 8, 8, 1) and folder.images.dtype == np.uint8
    assert folder.class_counts.tolist() == [10, 10, 4]
    first = np.asarray(Image.open(os.path.join(image_folder, folder.paths[0])))
    np.testing.assert_array_equal(folder.images[0, :, :, 0], first)


@pytest.mark.parametrize("fmt", ["jpeg", "bmp", "gif", "png", "webp"])
def test_every_supported_format_decodes(tmp_path, fmt):
    data_dir = write_folder(tmp_path / "data", [2, 2], mode="RGB", fmt=fmt)
    folder = read_image_folder(data_dir)
    assert folder.images.shape == (4, 8, 8, 3)
    with Image.open(os.path.join(data_dir, folder.paths[0])) as image:
        expected = np.asarray(image.convert("RGB"), int)
    # Lossless formats exactly; JPEG and lossy WebP as Pillow decodes them (tests/test_image.py)
    tolerance = 2 if fmt in ("jpeg", "webp") else 0
    assert np.abs(folder.images[0].astype(int) - expected).max() <= tolerance


def test_mixed_gray_and_rgb_become_rgb(tmp_path):
    data_dir = write_folder(tmp_path / "data", [3, 3])
    Image.new("RGB", (8, 8), (200, 10, 10)).save(os.path.join(data_dir, "class_0", "red.png"))
    folder = read_image_folder(data_dir)
    assert folder.channels == 3
    red = folder.images[folder.paths.index("class_0/red.png")]
    assert tuple(red[0, 0]) == (200, 10, 10)
    gray = folder.images[0]
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])


def test_mixed_sizes_resize_to_the_median(tmp_path):
    data_dir = write_folder(tmp_path / "data", [3, 3], size=(8, 8))
    Image.new("L", (20, 12)).save(os.path.join(data_dir, "class_1", "big.png"))
    folder = read_image_folder(data_dir)
    assert folder.image_size == (8, 8)
    assert choose_image_size([(8, 8), (12, 20), (10, 10)]) == (10, 10)
    assert read_image_folder(data_dir, image_size=(4, 6)).images.shape[1:] == (4, 6, 1)


def test_hidden_files_are_ignored_and_bad_files_skipped_with_one_warning(tmp_path):
    data_dir = write_folder(tmp_path / "data", [3, 3])
    with open(os.path.join(data_dir, "class_0", ".DS_Store"), "w") as handle:
        handle.write("x")
    os.makedirs(os.path.join(data_dir, ".cache"))
    with open(os.path.join(data_dir, "class_0", "notes.txt"), "w") as handle:
        handle.write("not an image")
    with open(os.path.join(data_dir, "class_1", "broken.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.warns(UserWarning, match="skipped 2 file") as record:
        folder = read_image_folder(data_dir)
    assert len(record) == 1
    message = str(record[0].message)
    assert "class_0/notes.txt" in message and "class_1/broken.png" in message
    assert ".DS_Store" not in message
    assert len(folder.paths) == 6 and folder.class_names == ["class_0", "class_1"]


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image_folder(tmp_path / "nowhere")


def test_a_file_instead_of_a_directory(tmp_path):
    path = tmp_path / "file.png"
    path.write_bytes(b"")
    with pytest.raises(DataError, match="is a file"):
        index_directory(path)


def test_fewer_than_two_classes(tmp_path):
    data_dir = write_folder(tmp_path / "data", [4])
    with pytest.raises(DataError, match=r"at least 2 class sub-folders.*class_0"):
        read_image_folder(data_dir)


def test_empty_directory(tmp_path):
    os.makedirs(tmp_path / "data" / "a")
    os.makedirs(tmp_path / "data" / "b")
    with pytest.raises(DataError, match="holds no readable images"):
        read_image_folder(tmp_path / "data")


@pytest.mark.parametrize("image_size", [(0, 8), (8,), "8x8", (8.5, 8)])
def test_bad_image_size(image_folder, image_size):
    with pytest.raises(ArgumentError, match="`image_size` must be None or a"):
        read_image_folder(image_folder, image_size=image_size)


def test_bad_channels(image_folder):
    with pytest.raises(ArgumentError, match="`channels` must be None, 1 or 3"):
        read_image_folder(image_folder, channels=2)
