"""A long search in one process: does a trial cost the same, and hold the same memory, at the end?

Usage:
    python benchmarks/soak.py [--trials 200] [--tuner random|bayesian]
                              [--replay [--control] [--interleave]]
                              [--images 320] [--size 32] [--out results/soak]
    python benchmarks/soak.py --fresh 6 --trials 40    # the machine's drift, processes young
    python benchmarks/soak.py --smoke --out /tmp/soak   # seconds: checks the script
    python benchmarks/soak.py --render results/soak     # the page (and plot) again from its JSON

One `autoprep.tune` in this process: `--trials` trials of one epoch (seed 0, the default
validation, which is 3-fold cross-validation on 320 images in 4 classes), a tiny CNN, on a
generated folder of `--images` RGB PNGs of `--size` pixels. After every trial (through
`on_trial_end`) the harness records the wall time since the previous trial ended, the process's
resident memory (VmRSS from /proc/self/status) and the number of objects Python's garbage
collector tracks (frozen ones included). Each run is kept in OUT.json under its tuner's name
(a run of the other tuner stays), and OUT.md and OUT.png are written again from all of them.

Targets (issue 17): the mean seconds per trial of the last 10 % of trials at most 1.10x that of
the second 10 %, and resident memory growing at most 0.5 MiB per trial after the first 10 %
(the least-squares slope of RSS against the trial number).

With `--replay`, the last 10 % of trials train the configurations of the second 10 % again, in
the same order (trial 181 is trial 21's configuration, with 200 trials): the oracle still makes
its proposal for each of them (its cost is counted), then the proposal is replaced. The two
tenths then hold the same pipelines, so their ratio is what the same work costs late in the
night, not what the search chose to try (Bayesian optimization settles on costlier pipelines).
With `--control` as well, a fresh process then trains the first 20 % of the configurations
again (in a search of as many trials, stopped there, so that its oracle's proposals cost what
the long search's did): its second 10 % is the same work as the long search's last 10 %, at
the same hour, so that their ratio is what the night left in the process, whatever the machine
did meanwhile (give or take what one process costs against another on the same work). With
`--interleave` (and `--replay`), the young process runs alongside the long search's last fifth
instead of after it, one trial each in turn (`Partner`): its trials 21-40 each run right before
the long search's trial of the same configuration, so that the machine's speed, which moves by
more than the target's margin in a quarter of an hour, is the same for both sides of each pair.

With `--fresh K` (and `--trials 40`, say), no long search runs: K fresh processes, one after
the other, each train the same `--trials` configurations (the first process's random or
Bayesian choices, given to the others), so that every process is equally young and does the
same work. What changes from the first to the last is the machine alone, under as long a
stretch of load as the soak's: the page's "Young processes, one after another" table.
"""

import argparse
import gc
import glob
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, libraries, machine, reread, save, tiny_cnn, write_folder  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROCESS_STARTED = time.time()

TARGET_RATIO = 1.10  # last 10 % of trials / second 10 %, mean seconds per trial
TARGET_SLOPE = 0.5  # MiB of RSS per trial after the first 10 %
MIB = 2**20


def rss_bytes() -> int:
    """Resident memory of this process (VmRSS), in bytes."""
    with open("/proc/self/status", encoding="utf-8") as handle:
        line = next(line for line in handle if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024



PROBE = """
import time
start = time.process_time()
total = sum(i * i for i in range(1_000_000))
sorted(range(400_000, 0, -1))
print(time.process_time() - start)
"""


def machine_seconds() -> tuple:
    """CPU seconds since boot, all CPUs, from /proc/stat: busy (the user, nice, system, irq and
    softirq columns: every process's and the kernel's work) and stolen (the hypervisor gave
    them to others while this machine's CPUs wanted to run)."""
    with open("/proc/stat", encoding="utf-8") as handle:
        fields = handle.readline().split()  # "cpu user nice system idle iowait irq softirq steal"
    tick = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (1, 2, 3, 6, 7)) / tick, int(fields[8]) / tick


class CollectionTimer:
    """Seconds spent in Python's garbage collections, and how many of them were full ones,
    since it was made (through `gc.callbacks`; `close` removes it)."""

    def __init__(self):
        self.seconds, self.full, self._started = 0.0, 0, None
        gc.callbacks.append(self)

    def __call__(self, phase, info):
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self.full += info["generation"] == 2
            self._started = None

    def close(self):
        if self in gc.callbacks:
            gc.callbacks.remove(self)


def machine_probe() -> float:
    """CPU seconds of a fixed single-threaded workload (Python arithmetic and a sort, about
    0.06 s) run in a fresh interpreter, which nothing of the search can slow down: on a
    shared machine, it gets slower when the host does."""
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          check=True)
    return float(done.stdout)


class TrialLog:
    """`on_trial_end` for `autoprep.tune`: per trial, seconds since the last one, CPU seconds,
    RSS, the objects the garbage collector tracks and has frozen, with a `clock`
    (search_cost's `Clock`) the seconds of each part of the trial and, with `probe`, the
    machine's speed after it (`machine_probe`, not counted in the next trial's seconds). Also
    per trial: the seconds in garbage collections and how many were full, major page faults
    (a page read back from disk), the machine's steal time and the CPU seconds that anything
    else on the machine ran meanwhile (other processes and the kernel's threads: the busy time
    of `machine_seconds` less this process's)."""

    def __init__(self, *, objects=True, on_sample=None, clock=None, probe=False):
        self.objects, self.on_sample, self.clock, self.probe = objects, on_sample, clock, probe
        self.samples, self.parts, self.harness = [], {}, 0.0
        self.collections = CollectionTimer()
        self.mark()

    def mark(self) -> float:
        """Starts the next trial's clocks and counters now; returns the wall clock's reading."""
        self.last, self.last_cpu = time.perf_counter(), time.process_time()
        self.last_system = os.times().system
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.last_faults, self.last_major = usage.ru_minflt, usage.ru_majflt
        self.last_gc = self.collections.seconds, self.collections.full
        self.last_busy, self.last_steal = machine_seconds()
        return self.last

    def __call__(self, result, record):
        now, cpu = time.perf_counter(), time.process_time()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy, steal = machine_seconds()
        sample = {"trial": len(self.samples) + 1, "seconds": now - self.last,
                  "ended_at": time.time(),
                  "cpu_seconds": cpu - self.last_cpu, "rss_mib": rss_bytes() / MIB,
                  "load": os.getloadavg()[0], "status": record.status.value,
                  "threads": len(os.listdir("/proc/self/task")),
                  "system_seconds": os.times().system - self.last_system,
                  "minor_faults": usage.ru_minflt - self.last_faults,
                  "major_faults": usage.ru_majflt - self.last_major,
                  "gc_seconds": self.collections.seconds - self.last_gc[0],
                  "full_collections": self.collections.full - self.last_gc[1],
                  "steal_seconds": steal - self.last_steal,
                  "others_seconds": busy - self.last_busy - (cpu - self.last_cpu),
                  "config": record.config}  # what the trial cost depends on
        if self.clock is not None:
            parts = dict(self.clock.seconds)
            sample["parts"] = {name: seconds - self.parts.get(name, 0.0)
                               for name, seconds in parts.items()}
            sample["parts"]["saving"] -= self.harness  # this call runs inside "saving"
            self.parts = parts
        if self.objects:
            # The collector's objects, and those frozen out of its walks (the search freezes
            # what existed before it): both are what the process holds.
            sample["objects"] = len(gc.get_objects())
            sample["frozen_objects"] = gc.get_freeze_count()
            from tensorflow.python.eager import context  # loaded by the search

            # Functions registered in TensorFlow's eager context (a graph each, kept until
            # the function that registered it is freed).
            sample["context_functions"] = len(context.context().list_function_names())
        if self.probe:
            sample["probe_seconds"] = machine_probe()
        self.samples.append(sample)
        if self.on_sample is not None:
            self.on_sample(sample)
        self.harness = self.mark() - now  # the harness's own work is not the next trial's


def replacing_proposals(choose):
    """Makes the oracles' proposals of trial number n (1-based) take the values
    `choose(oracle, n)`, after computing their own (so that its cost stays in the trial); None
    keeps the proposal. Returns the function that undoes it."""
    from autoprep.search import tuners

    originals = {}
    for oracle in (tuners.RandomSearchOracle, tuners.BayesianOptimizationOracle):
        original = oracle.populate_space

        def populate_space(self, trial_id, _original=original):
            proposal = _original(self, trial_id)
            number = len(self.trials) + 1  # Keras Tuner adds the trial after its proposal
            values = choose(self, number)
            if values is not None and proposal.get("values") is not None:
                proposal = dict(proposal, values=dict(values))
            return proposal

        originals[oracle] = original
        oracle.populate_space = populate_space

    def restore():
        for oracle, original in originals.items():
            oracle.populate_space = original

    return restore


def replay_second_tenth(trials):
    """Makes the oracles' last `trials // 10` trials repeat the values of the second tenth, in
    order (`replacing_proposals`). Returns the function that undoes it."""
    tenth = trials // 10

    def choose(oracle, number):
        if number <= trials - tenth:
            return None
        source = list(oracle.trials.values())[number - 1 - (trials - 2 * tenth)]
        return source.hyperparameters.values

    return replacing_proposals(choose)


class Stopped(Exception):
    """Raised after a child's `--stop-after` trials, from its `on_trial_end`, to end its
    search there: a search of as many trials as the long one (so that its oracle starts
    fitting its Gaussian process at the same trial, and its proposals cost the same), cut
    short."""


class Partner:
    """`--interleave`: a young process that trains the given configurations (`given_values`)
    one trial at a time, each when the long search gives it its turn (between two of the long
    search's trials, outside their clocks), so that the two processes' trials alternate and
    meet the machine at the same minutes. Only one of them trains at any time. Its search is
    one of the long search's `trials`, stopped after the given ones (`Stopped`)."""

    def __init__(self, data_dir, scratch, tuner, trials, values):
        path = os.path.join(scratch, "partner_values.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(values, handle)
        self.out, self.remaining = os.path.join(scratch, "partner.json"), len(values)
        read, write = os.pipe()
        self.process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--child", data_dir, self.out,
             "--trials", str(trials), "--stop-after", str(len(values)), "--tuner", tuner,
             "--given", path,
             "--out", os.path.join(scratch, "partner"), "--paced", str(write)],
            stdin=subprocess.PIPE, pass_fds=(write,), text=True)
        os.close(write)
        self.reports = os.fdopen(read, encoding="utf-8")

    def turn(self):
        """Lets the young process train its next trial; returns when that trial has ended."""
        self.process.stdin.write("go\n")
        self.process.stdin.flush()
        if not self.reports.readline():
            raise RuntimeError(f"the interleaved young process stopped with exit code "
                               f"{self.process.wait()} before its trial {self.remaining}")
        self.remaining -= 1

    def samples(self) -> list:
        """Waits for the young process to end (its trials all run); its samples."""
        self.process.stdin.close()
        if self.process.wait():
            raise RuntimeError(f"the interleaved young process failed (exit code "
                               f"{self.process.returncode})")
        self.reports.close()
        with open(self.out, encoding="utf-8") as handle:
            return json.load(handle)["samples"]


def interleaving(data_dir, scratch, tuner, run_dir, trials, on_sample):
    """`--interleave`, the long search's side: `on_sample` that, after each of its trials from
    the start of its last fifth, lets a `Partner` train one of the first fifth's
    configurations (so its trials 21-40 of 200 come each right before the long search's
    replay of the same configuration, trials 181-200), and waits for the partner to end before
    the last trial. Returns (on_sample, the partner's samples: a list filled at its end)."""
    fifth, partner, collected = 2 * max(1, trials // 10), None, []

    def interleaved(sample):
        nonlocal partner
        on_sample(sample)
        if sample["trial"] == trials - fifth:
            partner = Partner(data_dir, scratch, tuner, trials, trial_values(run_dir)[:fifth])
        if partner is not None and partner.remaining:
            partner.turn()
            if not partner.remaining:
                collected.extend(partner.samples())

    return interleaved, collected


def paced(fd, turns):
    """`--paced FD`, the young process's side of `Partner`: a function that waits for its turn
    (a line on stdin), and one that reports a trial's end on `fd`, then waits for the next
    turn (not after the last of its `turns`: the process ends then)."""
    reports = os.fdopen(fd, "w", encoding="utf-8")

    def wait():
        if not sys.stdin.readline():
            raise SystemExit("soak.py --paced: the long search stopped giving turns")

    def after(sample):
        reports.write(f"{sample['trial']}\n")
        reports.flush()
        if sample["trial"] < turns:
            wait()
        else:
            reports.close()

    return wait, after


def given_values(values):
    """Makes the oracles' first `len(values)` trials take `values`, in order (the control
    process of `--control`). Returns the function that undoes it."""
    return replacing_proposals(lambda oracle, number: values[number - 1]
                               if number <= len(values) else None)


def trial_values(run_dir) -> list:
    """The hyperparameter values of the trials Keras Tuner saved under `run_dir`, in trial
    order."""
    trials = []
    for path in glob.glob(os.path.join(run_dir, "**", "trial.json"), recursive=True):
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
        trials.append((int(state["trial_id"]), state["hyperparameters"]["values"]))
    return [values for _, values in sorted(trials, key=lambda trial: trial[0])]


def soak(data_dir, run_dir, *, tuner, trials, objects=True, parts=True, on_sample=None,
         replay=False, given=None, probe=True, **options) -> dict:
    """One search of `trials` one-epoch trials in this process; its per-trial samples. With
    `parts`, search_cost's wrappers time the parts of each trial (training, evaluation,
    pipeline, model, metrics, saving, proposal); with `replay`, the last tenth of the trials
    repeats the second tenth's configurations (`replay_second_tenth`); with `given` (a list of
    hyperparameter values), the first trials take those (`given_values`). The run keeps the
    values of every trial (a `--control` process is given the first fifth's)."""
    import autoprep

    restore = (replay_second_tenth(trials) if replay
               else given_values(given) if given is not None else None)
    clock = None
    if parts:
        import search_cost

        clock = search_cost.Clock()
        search_cost.install_wrappers(clock)
    log = TrialLog(objects=objects, on_sample=on_sample, clock=clock, probe=probe)
    start_rss = rss_bytes() / MIB
    search_started = time.time()
    start = log.mark()
    try:
        autoprep.tune(tiny_cnn, data_dir, max_trials=trials, epochs=1, tuner=tuner, seed=0,
                      directory=run_dir, project_name=tuner, verbose=0, test_split=0,
                      baseline=False, reevaluate=0, on_trial_end=log, **options)
    finally:
        log.collections.close()
        if clock is not None:
            clock.restore()
        if restore is not None:
            restore()
    return {"tuner": tuner, "trials": len(log.samples), "seconds": time.perf_counter() - start,
            "replay": replay, "values": trial_values(run_dir),
            "rss_start_mib": start_rss, "samples": log.samples,
            "process_started": PROCESS_STARTED, "search_started": search_started}


def decile_means(values) -> list:
    """Means of `values` over ten consecutive, nearly equal parts (fewer parts when short)."""
    parts = min(10, len(values))
    bounds = [round(i * len(values) / parts) for i in range(parts + 1)]
    return [sum(values[a:b]) / (b - a) for a, b in zip(bounds, bounds[1:])]


def last_to_second(deciles) -> float:
    """The last tenth's mean over the second tenth's (`decile_means`); 1.0 when too short."""
    return deciles[-1] / deciles[1] if len(deciles) > 1 else 1.0


def slope(xs, ys) -> float:
    """The least-squares slope of `ys` against `xs`."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0


def figures(run) -> dict:
    """Ratio of the last 10 % of trials' time to the second 10 %'s, RSS and object slopes."""
    samples = run["samples"]
    seconds = [s["seconds"] for s in samples]
    deciles = decile_means(seconds)
    after = samples[max(1, len(samples) // 10):]  # after the first 10 %
    xs = [s["trial"] for s in after]
    result = {
        "decile_seconds": deciles,
        "ratio": last_to_second(deciles),
        "rss_slope_mib": slope(xs, [s["rss_mib"] for s in after]),
        "rss_first_mib": samples[0]["rss_mib"], "rss_last_mib": samples[-1]["rss_mib"],
    }
    if samples and "cpu_seconds" in samples[0]:
        cpu = decile_means([s["cpu_seconds"] for s in samples])
        result.update(decile_cpu_seconds=cpu, cpu_ratio=last_to_second(cpu))
    if samples and "load" in samples[0]:
        result["decile_load"] = decile_means([s["load"] for s in samples])
    if samples and "probe_seconds" in samples[0]:
        probe = decile_means([s["probe_seconds"] for s in samples])
        result.update(decile_probe_seconds=probe, probe_ratio=last_to_second(probe))
    for key in ("gc_seconds", "full_collections", "major_faults", "steal_seconds",
                "others_seconds", "context_functions"):
        if samples and key in samples[0]:
            result[f"decile_{key}"] = decile_means([s[key] for s in samples])
    if samples and "parts" in samples[0]:
        result["decile_parts"] = {
            name: decile_means([s["parts"][name] for s in samples])
            for name in samples[0]["parts"]}
    if samples and "objects" in samples[0]:
        result["objects_slope"] = slope(
            xs, [s["objects"] + s.get("frozen_objects", 0) for s in after])
    if samples and "cpu_seconds" in samples[0]:
        result["cpu_growth"] = adjusted_growth(samples)
        if run.get("replay"):
            result["replayed"] = replayed(samples)
        if run.get("control"):
            result["controlled"] = controlled(samples, run["control"]["samples"])
        if run.get("interleaved"):
            result["interleaved_control"] = controlled(samples, run["interleaved"]["samples"])
    return result


def controlled(samples, control) -> dict:
    """The long search's last tenth (which replayed its second tenth) against the same
    configurations trained right after it in a fresh process (`--control`): the process's
    age, with the machine's hour held fixed; and the fresh process against the long search's
    own second tenth: the machine's hour, with the process's age held fixed. CPU seconds."""
    tenth = max(1, len(samples) // 10)
    young = paired(control[tenth:2 * tenth], samples[-tenth:])  # late: the old process
    second = samples[tenth:2 * tenth]
    return dict(young, mean_fresh=young["mean_early"],
                mean_early=sum(s["cpu_seconds"] for s in second) / max(1, len(second)))


def replayed(samples) -> dict:
    """Each trial of the last tenth against the trial of the second tenth whose configuration it
    repeats (`--replay`, `paired`)."""
    tenth = len(samples) // 10
    return paired(samples[tenth:2 * tenth], samples[-tenth:])


def paired(early, late) -> dict:
    """The trials of `late` against those of `early` whose configurations they repeat, in
    order: the pairs whose configurations differ (none, unless a trial failed) and, over the
    others, the mean CPU seconds of each side and the median of the ratios late / early."""
    pairs = list(zip(early, late))
    same = [(before, after) for before, after in pairs
            if before.get("config") == after.get("config")]
    ratios = sorted(after["cpu_seconds"] / before["cpu_seconds"] for before, after in same)
    return {"pairs": len(pairs), "different": len(pairs) - len(same),
            "median_ratio": ratios[len(ratios) // 2] if ratios else None,
            "mean_early": sum(before["cpu_seconds"] for before, _ in same) / max(1, len(same)),
            "mean_late": sum(after["cpu_seconds"] for _, after in same) / max(1, len(same))}


def structure(config) -> list:
    """The parts of a trial's pipeline config that decide what it costs to build and train:
    its normalization, imbalance strategy and each augmentation op (intensities aside)."""
    ops = sorted(op.get("name", "?") for op in config.get("augmentation") or [])
    return ([f"normalization={config.get('normalization', {}).get('name')}",
             f"imbalance={config.get('imbalance', {}).get('name')}"]
            + [f"augmentation={op}" for op in ops])


def adjusted_growth(samples) -> dict:
    """CPU seconds per trial against the trial number, alone and with the pipeline's structure
    (`structure`) as further least-squares terms: does a trial cost more late in the search
    than a trial of the same kind of pipeline early in it? Trials after the first 10 %.

    Returns {"plain", "adjusted"}: seconds per 100 trials, or None without configs."""
    after = [s for s in samples[max(1, len(samples) // 10):] if s.get("config")]
    if len(after) < 20:
        return None
    import numpy as np

    names = sorted({name for s in after for name in structure(s["config"])})
    trial = np.array([s["trial"] for s in after], float)
    cpu = np.array([s["cpu_seconds"] for s in after])
    kinds = np.array([[name in structure(s["config"]) for name in names] for s in after], float)
    plain = np.polyfit(trial, cpu, 1)[0]
    design = np.column_stack([trial, np.ones_like(trial), kinds])
    adjusted = np.linalg.lstsq(design, cpu, rcond=None)[0][0]
    return {"plain": 100 * float(plain), "adjusted": 100 * float(adjusted),
            "kinds": len({tuple(structure(s["config"])) for s in after})}


def child(args, data_dir, out):
    """Runs one search in this process and writes its run to `out`; every 10 trials, the
    samples so far to OUT.partial.json (a search stopped early keeps them)."""
    samples, partner_samples = [], None

    def show(sample):
        samples.append(sample)
        if sample["trial"] % 10 == 0:
            print(f"trial {sample['trial']}: {sample['seconds']:.2f} s, "
                  f"{sample['rss_mib']:.0f} MiB, load {os.getloadavg()[0]:.1f}",
                  file=sys.stderr, flush=True)
            with open(args.out + ".partial.json", "w", encoding="utf-8") as handle:
                json.dump({"tuner": args.tuner, "samples": samples}, handle)

    with tempfile.TemporaryDirectory() as scratch:
        given, on_sample, run_dir = None, show, args.run_dir or scratch
        if args.given:
            with open(args.given, encoding="utf-8") as handle:
                given = json.load(handle)
        if args.paced is not None:
            wait, after = paced(args.paced, args.stop_after)
            wait()  # the first turn: nothing of the search runs before it
        elif args.interleave:
            on_sample, partner_samples = interleaving(data_dir, scratch, args.tuner, run_dir,
                                                      args.trials, show)
        if args.stop_after is not None:
            def on_sample(sample, _show=on_sample):
                _show(sample)
                if args.paced is not None:
                    after(sample)
                if sample["trial"] == args.stop_after:
                    raise Stopped
        try:
            run = soak(data_dir, run_dir, tuner=args.tuner, trials=args.trials,
                       on_sample=on_sample, replay=args.replay, given=given)
        except Stopped:
            run = {"samples": samples}
    if partner_samples:
        run["interleaved"] = {"samples": partner_samples}
    run.update(load_average_end=list(os.getloadavg()))
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(run, handle)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--tuner", choices=["random", "bayesian"], default="random")
    parser.add_argument("--replay", action="store_true",
                        help="the last 10 %% of trials repeat the second 10 %%'s configurations")
    parser.add_argument("--control", action="store_true",
                        help="with --replay: afterwards, a fresh process trains the first "
                        "fifth's configurations again, for the same work at the same hour in "
                        "a process that is not old")
    parser.add_argument("--interleave", action="store_true",
                        help="with --replay: a young process trains the first fifth's "
                        "configurations alongside the long search's last fifth, one trial "
                        "each in turn: the same work at the same minutes, old and young")
    parser.add_argument("--images", type=int, default=320)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--dir", help="folder for the generated images (kept)")
    parser.add_argument("--out", default="results/soak")
    parser.add_argument("--smoke", action="store_true",
                        help="4 trials on 80 images of 16x16: checks the script")
    parser.add_argument("--render", metavar="OUT",
                        help="write OUT.md and OUT.png again from OUT.json")
    parser.add_argument("--findings", metavar="FILE",
                        help="with --render: a Markdown section to end the page with")
    parser.add_argument("--recycle", type=int, default=0, metavar="K",
                        help="a prototype: run the search K trials per process, each process "
                        "resuming the run directory the one before left")
    parser.add_argument("--fresh", type=int, default=0, metavar="K",
                        help="instead of one long search, K fresh processes back to back, "
                        "each training the same --trials configurations: the machine's drift")
    parser.add_argument("--child", nargs=2, metavar=("DATA", "OUT"),
                        help=argparse.SUPPRESS)  # one search in this process, for the parent
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)  # the child's, to resume
    parser.add_argument("--given", help=argparse.SUPPRESS)  # JSON values of the first trials
    parser.add_argument("--paced", type=int, help=argparse.SUPPRESS)  # a Partner's report fd
    parser.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)  # see `Stopped`
    args = parser.parse_args(argv)
    if args.replay and args.recycle:
        parser.error("--replay and --recycle cannot go together: each recycled process would "
                     "replay its own last tenth")
    if args.fresh and (args.replay or args.control or args.recycle):
        parser.error("--fresh runs short searches of its own: leave out --replay, --control "
                     "and --recycle")
    for flag in ("control", "interleave"):
        if getattr(args, flag) and not args.replay:
            parser.error(f"--{flag} needs --replay: it compares the replayed tenth")
    if args.smoke:
        args.trials, args.images, args.size = 4, 80, 16
    if args.render:
        result = reread(args.render, args.findings)
        if os.path.exists(args.render + ".partial.json"):
            adopt_partial(args.render, result)
        return print(write_page(args.render, result))
    if args.child:
        return child(args, *args.child)
    result = {"benchmark": "soak", "runs": {}}
    if os.path.exists(args.out + ".json") and not args.smoke:
        with open(args.out + ".json", encoding="utf-8") as handle:
            result = json.load(handle)
    load_start = list(os.getloadavg())
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = write_folder(args.dir or os.path.join(workdir, "images"), args.images,
                                size=args.size, classes=4)
        if args.fresh:
            processes = fresh_runs(args, data_dir, workdir)
        else:
            # A fresh process: the search is alone in it, as in `autoprep tune`.
            run = (recycled(args, data_dir, workdir) if args.recycle
                   else child_run(args, data_dir, workdir, args.trials))
            run["values"] = run["values"][:2 * max(1, args.trials // 10)]  # the first fifth
            if args.control:
                run["control"] = control_run(args, data_dir, workdir, run["values"])
    if os.path.exists(args.out + ".partial.json"):
        os.remove(args.out + ".partial.json")
    if args.fresh:
        name = f"{args.tuner}, {args.fresh} processes of {args.trials} trials"
        result.setdefault("fresh", {})[name] = {
            "processes": processes, "commit": git_commit(), "libraries": libraries(),
            "load_average_start": load_start,
            "load_average_end": list(os.getloadavg()), "command": command()}
        result.update(machine=machine(), command=command())
        return print(write_page(args.out, result))
    run.update(figures(run), commit=git_commit(), libraries=libraries(),
               load_average_start=load_start, images=args.images, size=args.size,
               command=command())
    name = args.tuner + (f", {args.recycle} per process" if args.recycle else "")
    result["runs"][name + (", last 10 % replays the 2nd" if args.replay else "")] = run
    result.update(machine=machine(), command=command())
    print(write_page(args.out, result))


def adopt_partial(out, result):
    """Adds the samples of a search stopped early (OUT.partial.json) to `result` as a run of
    its own, named with the number of trials it reached."""
    with open(out + ".partial.json", encoding="utf-8") as handle:
        partial = json.load(handle)
    samples = partial["samples"]
    run = {"tuner": partial["tuner"], "trials": len(samples), "samples": samples,
           "rss_start_mib": samples[0]["rss_mib"], "commit": git_commit(),
           "load_average_start": [samples[0].get("load", float("nan"))],
           "load_average_end": [samples[-1].get("load", float("nan"))]}
    run.update(figures(run))
    result["runs"][f"{partial['tuner']}, stopped after {len(samples)} trials"] = run
    os.remove(out + ".partial.json")


def child_run(args, data_dir, workdir, trials, run_dir=None, given=None,
              stop_after=None) -> dict:
    """Runs the search up to `trials` trials in a child process (stopped after `stop_after`
    of them: `Stopped`); returns its run."""
    out = os.path.join(workdir, "run.json")
    subprocess.run([sys.executable, os.path.abspath(__file__), "--child", data_dir, out,
                    "--trials", str(trials), "--tuner", args.tuner, "--out", args.out,
                    *(["--replay"] if args.replay and not given else []),
                    *(["--interleave"] if args.interleave and not given else []),
                    *(["--given", given] if given else []),
                    *(["--run-dir", run_dir] if run_dir else []),
                    *(["--stop-after", str(stop_after)] if stop_after else [])], check=True)
    with open(out, encoding="utf-8") as handle:
        return json.load(handle)


def control_run(args, data_dir, workdir, values) -> dict:
    """`--control`: right after the long search, a fresh process trains the long search's
    first `len(values)` configurations again (the second half of them being those the long
    search's last tenth replayed): the same work, at the same hour, in a young process. Its
    search is one of as many trials as the long one, stopped there (`Stopped`)."""
    path = os.path.join(workdir, "control_values.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(values, handle)
    run = child_run(args, data_dir, workdir, args.trials, given=path, stop_after=len(values))
    return {"samples": run["samples"], "load_average_end": list(os.getloadavg())}


def fresh_runs(args, data_dir, workdir) -> list:
    """`--fresh K`: K fresh processes back to back, each training the configurations the first
    one chose; per process, its samples and when it started."""
    processes, path = [], None
    for _ in range(args.fresh):
        started = time.time()
        run = child_run(args, data_dir, workdir, args.trials, given=path)
        processes.append({"started_at": started, "samples": run["samples"]})
        if path is None:
            path = os.path.join(workdir, "fresh_values.json")
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(run["values"], handle)
    return processes


def fresh_figures(processes) -> list:
    """Per fresh process (`--fresh`): minutes since the first started, and over its second
    half of trials (trials 21-40 of 40: as old as the soak's second 10 %), the mean CPU
    seconds per trial against the first process's over the same trials (pairs whose
    configurations differ left out, `paired`), what everything else on the machine ran, and
    the load average."""
    first = processes[0]
    half = len(first["samples"]) // 2
    rows = []
    for process in processes:
        tail = process["samples"][half:]
        pair = paired(first["samples"][half:], tail)
        rows.append({
            "minutes": (process["started_at"] - first["started_at"]) / 60,
            "mean_cpu_seconds": pair["mean_late"],
            "to_first": pair["mean_late"] / pair["mean_early"],
            "median_to_first": pair["median_ratio"], "different": pair["different"],
            "others_seconds": sum(s.get("others_seconds", 0.0) for s in tail) / len(tail),
            "load": sum(s.get("load", 0.0) for s in tail) / len(tail)})
    return rows


def recycled(args, data_dir, workdir) -> dict:
    """The search `args.recycle` trials per process, each resuming the run directory, as a
    server recycles a worker after `max_requests`. The first trial of every later process is
    timed from the end of the last trial of the one before: its start (importing TensorFlow,
    reading the images, Keras Tuner reloading its trials) is counted."""
    run_dir = os.path.join(workdir, "runs")
    samples, children, last_end = [], [], None
    for target in range(args.recycle, args.trials + args.recycle, args.recycle):
        run = child_run(args, data_dir, workdir, min(target, args.trials), run_dir)
        if last_end is not None:
            run["samples"][0]["seconds"] = run["samples"][0]["ended_at"] - last_end
            children.append({"first_trial_seconds": run["samples"][0]["seconds"],
                             "import_seconds": run["search_started"] - run["process_started"]})
        for sample in run["samples"]:
            samples.append(dict(sample, trial=len(samples) + 1))
        last_end = run["samples"][-1]["ended_at"]
    steady = sorted(s["seconds"] for s in samples)[len(samples) // 2]
    restart = [child["first_trial_seconds"] - steady for child in children]
    return dict(run, trials=len(samples), samples=samples, recycle=args.recycle,
                children=children, median_trial_seconds=steady,
                restart_seconds=sum(restart) / len(restart) if restart else None)


def write_page(out, result) -> str:
    """OUT.json, OUT.md and the plot OUT.png of `result`."""
    plot(out + ".png", result["runs"])
    return save(out, result, page(result, os.path.basename(out) + ".png"))


def plot(path, runs):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    for number, (tuner, run) in enumerate(sorted(runs.items())):
        color = f"C{number}"  # one color per run, in both panels
        trials = [s["trial"] for s in run["samples"]]
        top.plot(trials, [s["seconds"] for s in run["samples"]], ".", ms=3, color=color,
                 label=tuner)
        bottom.plot(trials, [s["rss_mib"] for s in run["samples"]], "-", color=color,
                    label=tuner)
        if "cpu_seconds" in run["samples"][0]:
            top.plot(trials, [s["cpu_seconds"] for s in run["samples"]], "x", ms=3,
                     color=color)
    top.set_ylabel("seconds per trial (wall: dots; CPU: x)")
    bottom.set_ylabel("resident memory, MiB")
    bottom.set_xlabel("trial")
    top.legend(fontsize="small")
    bottom.legend(fontsize="small")
    top.grid(alpha=0.3)
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def verdict(value, target) -> str:
    return "met" if value <= target else "**missed**"


def page(result, image) -> str:
    rows = []
    for tuner, run in sorted(result["runs"].items()):
        deciles, cpu = run["decile_seconds"], run.get("decile_cpu_seconds", [float("nan")] * 2)
        load = " -> ".join(f"{run[key][0]:.1f}" for key in ("load_average_start",
                                                             "load_average_end") if key in run)
        rows.append(
            f"| {tuner} | {run['trials']} | {run['commit']} | {deciles[1]:.2f} | "
            f"{deciles[-1]:.2f} | {run['ratio']:.2f} ({verdict(run['ratio'], TARGET_RATIO)}) | "
            f"{cpu[1]:.2f} | {cpu[-1]:.2f} | "
            f"{run.get('cpu_ratio', float('nan')):.2f} "
            f"({verdict(run.get('cpu_ratio', float('inf')), TARGET_RATIO)}) | "
            f"{run['rss_first_mib']:.0f} | {run['rss_last_mib']:.0f} | "
            f"{run['rss_slope_mib']:.2f} ({verdict(run['rss_slope_mib'], TARGET_SLOPE)}) | "
            f"{run.get('objects_slope', float('nan')):.0f} | {load} |")
    return (
        "# A long search in one process (issue 17, section 1)\n\n"
        + __doc__.split("\n\n", 2)[2].split("\n\nTargets")[0].replace("\n", " ") + "\n\n"
        "| tuner | trials | commit | wall s per trial, 2nd 10 % | wall s, last 10 % | "
        "wall last / 2nd (target <= 1.10) | CPU s per trial, 2nd 10 % | CPU s, last 10 % | "
        "CPU last / 2nd | RSS after trial 1, MiB | RSS at the end, MiB | "
        "MiB per trial after the first 10 % (target <= 0.5) | objects per trial | "
        "1-min load, start -> end |\n|" + "---|" * 14 + "\n" + "\n".join(rows) + "\n\n"
        f"![seconds and resident memory per trial]({image})\n\n"
        + deciles_section(result["runs"]) + replay_section(result["runs"])
        + control_section(result["runs"]) + fresh_section(result.get("fresh", {}))
        + growth_section(result["runs"])
        + parts_section(result["runs"])
        + result.get("findings", "")
    )


def table_section(title, intro, header, rows) -> str:
    """A "## title" section: `intro`, then a table of `header` (column names) and `rows`
    (Markdown lines); nothing when there are no rows."""
    if not rows:
        return ""
    return (f"## {title}\n\n{intro}\n\n| " + " | ".join(header) + " |\n|"
            + "---|" * len(header) + "\n" + "\n".join(rows) + "\n\n")


def replay_section(runs) -> str:
    """The runs whose last tenth repeated the second tenth's configurations (`--replay`)."""
    rows = []
    for tuner, run in sorted(runs.items()):
        if (r := run.get("replayed")) and r["pairs"]:  # none in a run of under 10 trials
            ratio = r["mean_late"] / r["mean_early"]
            probe = f"{run['probe_ratio']:.2f}" if "probe_ratio" in run else "not recorded"
            rows.append(f"| {tuner} | {r['pairs']} | {r['different']} | {r['mean_early']:.2f} | "
                        f"{r['mean_late']:.2f} | {ratio:.2f} ({verdict(ratio, TARGET_RATIO)}) | "
                        f"{r['median_ratio']:.2f} | {probe} |")
    return table_section(
        "The same pipelines, early and late in the night (`--replay`)",
        "The last 10 % of the trials trained the configurations of the second 10 % again, "
        "in the same order, after the oracle had made (and paid for) its own proposal. "
        "CPU seconds of the same configurations, and of a fixed workload run in a fresh "
        "process after each trial (`machine_probe`: what the machine, not the search, did to "
        "the speed):",
        ["run", "pairs", "pairs whose configuration differs", "CPU s per trial, 2nd 10 %",
         "CPU s, last 10 %", "last / 2nd (target <= 1.10)", "median of the pairs' ratios",
         "fixed workload, last / 2nd"], rows)


def control_section(runs) -> str:
    """The replayed runs with a young process after them (`--control`) or alongside their last
    fifth (`--interleave`): `controlled`."""
    rows = []
    for tuner, run in sorted(runs.items()):
        for key, when in (("controlled", "after"), ("interleaved_control", "in turn")):
            if (c := run.get(key)) and c["pairs"] > c["different"]:  # none in a smoke run
                age, hour = c["mean_late"] / c["mean_fresh"], c["mean_fresh"] / c["mean_early"]
                rows.append(f"| {tuner} | {run['commit']} | {when} | {c['pairs']} | "
                            f"{c['different']} | {c['mean_early']:.2f} | {c['mean_late']:.2f} | "
                            f"{c['mean_fresh']:.2f} | {age:.2f} | {c['median_ratio']:.2f} | "
                            f"{hour:.2f} |")
    return table_section(
        "An old process against a young one, at the same hour (`--control`, `--interleave`)",
        "A fresh process trained the long search's first 20 % of configurations again; its "
        "trials of the second 10 % are the configurations the long search's last 10 % "
        "replayed. With `--control` it ran right after the long search; with `--interleave` "
        "alongside the long search's last 20 %, one trial each in turn, so that each of its "
        "trials ran right before the old process's trial of the same configuration. Old / "
        "young compares the same work at the same hour in a process that ran the whole night "
        "and in one that did not: what a night leaves in the process, with the machine's "
        "drift held fixed (to the minute when in turn). Young / 2nd 10 % holds the process's "
        "age fixed: the machine's drift over the night, and what one process costs against "
        "another on the same work (the `--fresh` table shows how much that moves). CPU "
        "seconds per trial:",
        ["run", "commit", "young process", "pairs", "configurations that differ", "2nd 10 %",
         "last 10 % (old process)", "the same, young process",
         "old / young", "median of the pairs' old / young",
         "young / 2nd 10 % (the machine, and process against process)"], rows)


def fresh_section(fresh) -> str:
    """The `--fresh` runs: equally young processes doing the same work, one after another."""
    rows = []
    for name, run in sorted(fresh.items()):
        for number, row in enumerate(fresh_figures(run["processes"]), 1):
            rows.append(f"| {name} | {run['commit']} | {number} | {row['minutes']:.1f} | "
                        f"{row['different']} | {row['mean_cpu_seconds']:.2f} | "
                        f"{row['to_first']:.2f} | {row['median_to_first']:.2f} | "
                        f"{row['others_seconds']:.3f} | {row['load']:.2f} |")
    return table_section(
        "Young processes, one after another (`--fresh`)",
        "No long search: fresh processes ran one after the other, each training the same "
        "configurations (the first process's choices), so that each is as young as the "
        "soak's second 10 % and does the same work. What changes from one to the next is the "
        "machine, under a stretch of load as long as the soak's. CPU seconds per trial over "
        "each process's second half of trials, against the first process's on the same "
        "configurations:",
        ["run", "commit", "process", "minutes after the first started",
         "configurations that differ", "CPU s per trial, 2nd half", "/ first process",
         "median of the pairs' ratios", "everything else on the machine, CPU s per trial",
         "1-min load"], rows)


def growth_section(runs) -> str:
    """How much a trial's CPU time grows over the search, before and after accounting for the
    kind of pipeline each trial tried (`adjusted_growth`)."""
    rows = [f"| {tuner} | {g['plain']:+.2f} | {g['adjusted']:+.2f} | {g['kinds']} |"
            for tuner, run in sorted(runs.items()) if (g := run.get("cpu_growth"))]
    return table_section(
        "Growth of a trial's CPU time, with the kind of pipeline accounted for",
        "A search may settle on pipelines that cost more (oversampling, several augmentation "
        "layers): that is not a trial leaving something behind. Least squares over the "
        "trials after the first 10 %: CPU seconds against the trial number alone, then with "
        "the normalization, the imbalance strategy and each augmentation op as further "
        "terms. The adjusted slope is what a trial of the same kind costs more per 100 "
        "trials later in the search.",
        ["tuner", "CPU s per 100 trials, plain", "with the pipeline's kind", "kinds of pipeline"],
        rows)


def deciles_section(runs) -> str:
    """Wall and CPU seconds per trial and the load average, decile by decile: on a shared
    machine the wall time follows the load, the CPU time follows the trial."""
    rows = []
    for tuner, run in sorted(runs.items()):
        for name, key, digits in (("wall s", "decile_seconds", 2),
                                  ("CPU s", "decile_cpu_seconds", 2),
                                  ("1-min load", "decile_load", 2),
                                  ("fixed workload, CPU s", "decile_probe_seconds", 3),
                                  ("in garbage collection, s", "decile_gc_seconds", 3),
                                  ("full collections", "decile_full_collections", 1),
                                  ("major page faults", "decile_major_faults", 1),
                                  ("functions in the eager context",
                                   "decile_context_functions", 0),
                                  ("machine's steal, CPU s", "decile_steal_seconds", 3),
                                  ("everything else on the machine, CPU s",
                                   "decile_others_seconds", 3)):
            if key in run:
                rows.append(f"| {tuner} | {name} | "
                            + " | ".join(f"{value:.{digits}f}" for value in run[key]) + " |")
    return ("Per trial, by tenth of the search:\n\n| tuner | mean | "
            + " | ".join(f"{i + 1}" for i in range(10)) + " |\n|" + "---|" * 12 + "\n"
            + "\n".join(rows) + "\n\n")


def parts_section(runs) -> str:
    """Where a trial's seconds go, in the second 10 % of trials and in the last 10 %."""
    timed = {tuner: run for tuner, run in sorted(runs.items()) if "decile_parts" in run}
    if not timed:
        return ""
    names = next(iter(timed.values()))["decile_parts"]
    header = "| part | " + " | ".join(f"{tuner}: 2nd 10 % | {tuner}: last 10 %"
                                        for tuner in timed) + " |\n"
    rows = []
    for name in names:
        cells = []
        for run in timed.values():
            deciles = run["decile_parts"][name]
            cells += [f"{deciles[1]:.3f}", f"{deciles[-1]:.3f}"]
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return (
        "Seconds per trial by part (search_cost's wrappers: time is charged to the innermost "
        "wrapped call; \"model\" includes Keras Tuner's `clear_session` and `gc.collect`, "
        "\"proposal\" is the oracle's choice of the next trial, \"saving\" autoprep's results "
        "and Keras Tuner's state and TensorBoard logs):\n\n" + header
        + "|---|" + "---|" * (2 * len(timed)) + "\n" + "\n".join(rows) + "\n\n"
    )


if __name__ == "__main__":
    main()
