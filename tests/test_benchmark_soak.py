"""benchmarks/soak.py's reading of a long search: a trial that costs more because the search
chose a costlier kind of pipeline is told apart from a trial that costs more because it came
later."""

import gc
import random
import subprocess
import sys
import types

import numpy as np
from helpers import load_benchmark


def _samples(growth):
    """200 trials; the later, the likelier an oversampled, flipped pipeline (2 s more), plus
    `growth` CPU seconds per trial."""
    rng = random.Random(0)
    samples = []
    for trial in range(1, 201):
        heavy = rng.random() < trial / 200
        config = {"normalization": {"name": "rescale_01"},
                  "augmentation": [{"name": "flip", "mode": "horizontal"}] if heavy else [],
                  "imbalance": {"name": "oversample" if heavy else "none"}}
        samples.append({"trial": trial, "config": config,
                        "cpu_seconds": 3 + 2 * heavy + growth * trial + rng.gauss(0, 0.1)})
    return samples


def test_growth_from_the_kind_of_pipeline_is_not_counted_against_the_trials():
    soak = load_benchmark("soak")
    chosen = soak.adjusted_growth(_samples(0.0))
    assert chosen["plain"] > 0.5 and abs(chosen["adjusted"]) < 0.1 and chosen["kinds"] == 2
    leaking = soak.adjusted_growth(_samples(0.01))  # 1 s more per 100 trials
    assert abs(leaking["adjusted"] - 1.0) < 0.1
    assert soak.adjusted_growth(_samples(0.0)[:15]) is None  # too few trials to say


def test_a_replayed_tenth_is_compared_pair_by_pair_with_the_trials_it_repeats():
    soak = load_benchmark("soak")
    configs = [{"normalization": {"name": f"n{i % 7}"}} for i in range(40)]
    samples = [{"trial": i + 1, "config": configs[i], "cpu_seconds": 2.0} for i in range(40)]
    for i in range(36, 40):  # the last tenth repeats trials 5-8, 10 % slower
        samples[i].update(config=configs[i - 32], cpu_seconds=2.2)
    figures = soak.replayed(samples)
    assert figures["pairs"] == 4 and figures["different"] == 0
    assert abs(figures["median_ratio"] - 1.1) < 1e-9
    samples[39]["config"] = {"normalization": {"name": "other"}}  # a pair that does not match
    assert soak.replayed(samples)["different"] == 1


def test_the_machine_probe_runs_after_each_trial_outside_the_next_trial_s_clocks():
    soak = load_benchmark("soak")
    log = soak.TrialLog(objects=False, probe=True)
    record = types.SimpleNamespace(status=types.SimpleNamespace(value="COMPLETED"), config={})
    log(None, record)
    log(None, record)  # a trial that took no time
    first, second = log.samples
    assert 0.005 < first["probe_seconds"] < 5  # CPU seconds of the fresh interpreter's work
    assert second["seconds"] < first["probe_seconds"] / 2  # not charged to the next trial
    samples = [dict(first, trial=n, probe_seconds=1.0 if n <= 180 else 1.2)
               for n in range(1, 201)]
    figures = soak.figures({"samples": samples})
    assert abs(figures["probe_ratio"] - 1.2) < 1e-9


def test_the_log_times_garbage_collections_within_the_trial_they_ran_in():
    soak = load_benchmark("soak")
    log = soak.TrialLog(objects=False)
    record = types.SimpleNamespace(status=types.SimpleNamespace(value="COMPLETED"), config={})
    try:
        for _ in range(3):
            gc.collect()
        log(None, record)
        log(None, record)  # no collection in this one
    finally:
        log.collections.close()
    first, second = log.samples
    assert first["full_collections"] == 3 and first["gc_seconds"] > 0
    assert second["full_collections"] == 0
    assert log.collections not in gc.callbacks
    assert first["steal_seconds"] >= 0 and first["major_faults"] >= 0


def test_the_log_charges_another_process_s_cpu_to_the_machine_not_to_the_trial():
    soak = load_benchmark("soak")
    log = soak.TrialLog(objects=False)
    record = types.SimpleNamespace(status=types.SimpleNamespace(value="COMPLETED"), config={})
    try:
        # Another process busy for about 0.4 CPU seconds while this one waits.
        subprocess.run([sys.executable, "-c",
                        "import time\nend = time.process_time() + 0.4\n"
                        "while time.process_time() < end: pass"], check=True)
        log(None, record)
    finally:
        log.collections.close()
    (sample,) = log.samples
    assert sample["others_seconds"] > 0.3  # the other process's work (and the interpreter's start)
    assert sample["cpu_seconds"] < 0.2  # not this process's


def test_the_control_holds_the_hour_fixed_to_measure_the_process_s_age():
    soak = load_benchmark("soak")

    def trial(number, cpu, config):
        return {"trial": number, "seconds": cpu, "cpu_seconds": cpu, "rss_mib": 800.0,
                "config": {"n": config}}

    # The machine got 20 % slower over the night, and the old process 10 % slower still.
    samples = [trial(n, 1.0, n) for n in range(1, 181)] + [
        trial(n, 1.32, n - 160) for n in range(181, 201)]
    control = [trial(n, 1.2, n) for n in range(1, 41)]
    figures = soak.figures({"samples": samples, "replay": True,
                            "control": {"samples": control}})
    c = figures["controlled"]
    assert c["pairs"] == 20 and c["different"] == 0
    assert abs(c["mean_late"] / c["mean_fresh"] - 1.1) < 1e-9  # the process's age
    assert abs(c["mean_fresh"] / c["mean_early"] - 1.2) < 1e-9  # the machine's hour
    control[25]["config"] = {"n": 0}
    assert soak.controlled(samples, control)["different"] == 1


def test_fresh_processes_are_compared_with_the_first_on_the_same_trials():
    soak = load_benchmark("soak")

    def process(minute, cpu):  # 40 trials; the second half costs `cpu` each
        return {"started_at": 60.0 * minute,
                "samples": [{"trial": n, "config": {"n": n}, "others_seconds": 0.01,
                             "cpu_seconds": 9.0 if n <= 20 else cpu, "load": 1.0}
                            for n in range(1, 41)]}

    first, later = soak.fresh_figures([process(0, 2.0), process(2.5, 2.2)])
    assert first["to_first"] == 1.0 and first["minutes"] == 0.0
    assert abs(later["to_first"] - 1.1) < 1e-9 and later["minutes"] == 2.5
    assert abs(later["mean_cpu_seconds"] - 2.2) < 1e-9  # the first half is left out
    assert later["different"] == 0 and abs(later["others_seconds"] - 0.01) < 1e-9


def test_the_interleaved_young_process_takes_its_turns_between_the_last_fifth_s_trials(
        monkeypatch):
    soak = load_benchmark("soak")
    events = []

    class Partner:  # stands in for the young process: records when it is given its turns
        def __init__(self, data_dir, scratch, tuner, trials, values):
            assert trials == 20  # a search as long as the long one's, stopped early
            events.append(("start", tuple(values)))
            self.remaining = len(values)

        def turn(self):
            events.append(("turn", len(events)))
            self.remaining -= 1

        def samples(self):
            events.append(("end",))
            return [{"trial": n} for n in range(1, 5)]

    monkeypatch.setattr(soak, "Partner", Partner)
    monkeypatch.setattr(soak, "trial_values", lambda run_dir: list(range(1, 21)))
    shown = []
    on_sample, collected = soak.interleaving("data", "scratch", "random", "run", 20,
                                             lambda sample: shown.append(sample["trial"]))
    for trial in range(1, 21):
        on_sample({"trial": trial})
        events.append(("trial", trial))
    assert shown == list(range(1, 21))
    # The young process starts after trial 16 of 20 with the first fifth's configurations,
    # trains one trial after each of trials 16-19 and has ended before trial 20.
    names = [event[0] if event[0] != "trial" else event[1] for event in events]
    assert names == list(range(1, 16)) + [
        "start", "turn", 16, "turn", 17, "turn", 18, "turn", "end", 19, 20]
    assert events[15] == ("start", (1, 2, 3, 4))
    assert [s["trial"] for s in collected] == [1, 2, 3, 4]


def test_a_paced_process_reports_each_trial_and_waits_for_its_next_turn(monkeypatch):
    import io
    import os

    soak = load_benchmark("soak")
    read, write = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.StringIO("go\n"))  # one turn given, then none
    wait, after = soak.paced(write, 3)
    after({"trial": 1})  # takes the one turn
    try:
        after({"trial": 2})  # no turn left: the long search is gone
    except SystemExit as stop:
        assert "stopped giving turns" in str(stop)
    else:
        raise AssertionError("a paced process went on without its turn")
    after({"trial": 3})  # the last trial: reported, no turn awaited
    try:
        assert os.read(read, 100).decode().split() == ["1", "2", "3"]
    finally:
        os.close(read)


def test_a_page_s_footer_names_the_libraries_its_figures_ran_on():
    synthetic = load_benchmark("synthetic")
    machine = synthetic.machine()
    assert set(machine["libraries"]) == set(synthetic.LIBRARIES)
    assert machine["libraries"]["numpy"] == np.__version__
    footer = synthetic.footer({"machine": machine, "command": "python x.py"})
    assert f"numpy {np.__version__}" in footer and "Command: `python x.py`" in footer
    del machine["libraries"]  # a page written before the versions were recorded
    assert "numpy" not in synthetic.footer({"machine": machine, "command": "python x.py"})
