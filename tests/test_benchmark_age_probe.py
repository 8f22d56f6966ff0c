"""benchmarks/age_probe.py's page: old / young per workload and checkpoint, and the census."""

from helpers import load_benchmark


def test_the_page_reads_old_against_young_at_each_checkpoint():
    probe = load_benchmark("age_probe")
    reading = lambda trial, old: {  # noqa: E731
        "trial": trial, "young": {"small dicts": 0.010, "numpy product": 0.008},
        "old": {"small dicts": old, "numpy product": 0.008},
        "objects": {"objects": 100 * trial, "frozen": 5, "types": {"list": 7, "Choice": 3}}}
    page = probe.markdown({"tuner": "random", "trials": 200, "reps": 7,
                           "readings": [reading(20, 0.012), reading(200, 0.015)]})
    assert "| small dicts | 1.20 | 1.50 | 0.0120 | 0.0150 |" in page
    assert "| numpy product | 1.00 | 1.00 |" in page
    assert "| 200 | 20000 | 5 | list 7, Choice 3 |" in page
