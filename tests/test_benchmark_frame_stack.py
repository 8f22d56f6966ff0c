"""benchmarks/frame_stack.py's page: the calls table, and runs paired round by round."""

from helpers import load_benchmark


def test_the_page_pairs_plain_and_reserved_runs_of_the_same_round_and_depth():
    bench = load_benchmark("frame_stack")
    calls = {name: {"faults_per_loop": faults, "us_per_loop": us, "depths_faulting": hit,
                    "depths": 60}
             for name, faults, us, hit in (("plain", 1.0, 8.25, 14), ("reserved", 0.0, 0.98, 0))}
    run = lambda mode, pad, cpu, faults, round_: {  # noqa: E731
        "mode": mode, "pad": pad, "cpu_per_trial": cpu, "faults_per_trial": faults,
        "round": round_}
    searches = [run("plain", 0, 2.0, 30000, 1), run("reserved", 0, 1.8, 10000, 1),
                run("reserved", 0, 2.2, 10000, 2), run("plain", 0, 2.0, 20000, 2)]
    page = bench.markdown({"trials": 18, "rounds": 2, "calls": calls, "searches": searches})
    assert "| plain | 1.00 | 8.25 | 14 of 60 |" in page
    assert "| reserved | 0.00 | 0.98 | 0 of 60 |" in page
    # pairs: 1.8 / 2.0 in round 1 and 2.2 / 2.0 in round 2, whatever the order they ran in
    assert ("| 0 | 2.000 (2.000-2.000) | 2.000 (1.800-2.200) | 1.000 (0.900-1.100) | 25,000 "
            "| 10,000 |") in page
