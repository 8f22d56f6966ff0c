"""benchmarks/gp_fit.py: scikit-learn's and autoprep's fits of the Bayesian oracle's Gaussian
process, compared on the same synthetic searches."""

import json

from helpers import load_benchmark


def test_both_fits_are_compared_on_the_same_problems_and_summarized(tmp_path):
    gp_fit = load_benchmark("gp_fit")
    out = str(tmp_path / "gp_fit")
    gp_fit.main(["--problems", "4", "--out", out])
    with open(out + ".json", encoding="utf-8") as handle:
        result = json.load(handle)
    summary = result["summary"]
    assert summary["problems"] == 4
    assert summary["same_optimum"] + summary["higher"] + summary["lower"] == 4
    for row in result["rows"]:
        theirs, ours = row["fits"]["scikit-learn"], row["fits"]["autoprep"]
        assert abs(row["gain"] - (ours["likelihood"] - theirs["likelihood"])) < 1e-12
        assert 20 <= row["trials"] < 200 and theirs["seconds"] > 0 and ours["seconds"] > 0
    with open(out + ".md", encoding="utf-8") as handle:
        assert "Of 4 problems" in handle.read()


def test_the_synthetic_problems_are_the_same_for_the_same_seed():
    import numpy as np

    gp_fit = load_benchmark("gp_fit")
    first = gp_fit.problem(np.random.default_rng(7))
    again = gp_fit.problem(np.random.default_rng(7))
    assert all((a == b).all() for a, b in zip(first, again))
