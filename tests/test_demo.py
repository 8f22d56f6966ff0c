"""The embedded demo data: scikit-learn's digits as a long-tailed image folder."""

import os

import numpy as np

from autoprep.data.decode import read_image_folder
from autoprep.data.demo import demo_model, write_digits_folder


def test_digits_are_written_with_a_long_tail(tmp_path):
    path = write_digits_folder(tmp_path / "digits", imbalance=10.0, seed=0)
    assert sorted(os.listdir(path)) == [str(d) for d in range(10)]
    folder = read_image_folder(path)
    counts = folder.class_counts
    assert counts[0] >= 170 and 15 <= counts[9] <= 20
    assert all(np.diff(counts) <= 0)
    assert folder.images.shape[1:] == (8, 8, 1) and folder.images.max() == 255


def test_demo_model_matches_the_data():
    model = demo_model((8, 8, 1), 10)
    assert model.output_shape == (None, 10)
