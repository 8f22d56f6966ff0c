"""Peak anonymous memory and wall time of a short search on synthetic folders of growing size.

Usage:
    python benchmarks/memory.py [--images 2000 20000 100000] [--limits default 64M]
                                [--trials 2] [--dir DIR] [--out results/memory] [--append]
    python benchmarks/memory.py --render results/memory   # the page again from its JSON

For every folder size and memory limit a search runs in a fresh process: by default with the
default limit (a quarter of the RAM: the images stay in RAM) and with 64M (larger decoded
images are memory-mapped from the run directory). A thread samples RssAnon (anonymous resident
memory: pages of a memory-mapped file do not count) from /proc/self/status every 20 ms; the peak
is reported with the wall time of decoding and of the whole search (`--trials` trials of 1 epoch,
a small CNN, test split 0.1 with one final training, no baseline).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from synthetic import command, machine, save, tiny_cnn, write_folder  # noqa: E402

SAMPLE_SECONDS = 0.02


def rss_anon() -> int:
    """Bytes of anonymous resident memory of this process."""
    with open("/proc/self/status", encoding="utf-8") as handle:
        line = next(line for line in handle if line.startswith("RssAnon:"))
    return int(line.split()[1]) * 1024


class PeakSampler(threading.Thread):
    """Samples `rss_anon` until stopped; `peak` is the largest value seen."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = rss_anon(), threading.Event()

    def run(self):
        while not self.done.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, rss_anon())



def child(data_dir, run_dir, limit, trials) -> dict:
    """One search in this process; returns its figures."""
    sampler = PeakSampler()
    sampler.start()
    start = time.perf_counter()
    import autoprep  # imported inside the measurement: TensorFlow's memory counts

    imported = time.perf_counter()
    plans, decoded, peaks = [], [], {}

    def on_plan(plan):
        plans.append(plan)
        decoded.append(time.perf_counter())
        peaks.setdefault("peak_until_plan", sampler.peak)  # import, listing, headers

    first_trial = []

    def on_trial_end(result, record):
        first_trial.append(time.perf_counter())
        peaks.setdefault("peak_until_first_trial_end", sampler.peak)

    autoprep.tune(
        tiny_cnn, data_dir, max_trials=trials, epochs=1, tuner="random", seed=0,
        test_split=0.1, final_repeats=1, baseline=False, directory=run_dir, verbose=0,
        memory_limit=limit, on_plan=on_plan,
        on_trial_end=on_trial_end,
    )
    end = time.perf_counter()
    sampler.done.set()
    sampler.join()
    plan = plans[0]
    return {
        "images": plan.count, "decoded_bytes": plan.nbytes, "memory_limit": plan.memory_limit,
        "mapped": plan.mapped, "peak_rss_anon": sampler.peak,
        "import_seconds": imported - start, "search_seconds": end - imported,
        "until_first_trial_end_seconds": first_trial[0] - decoded[0],
        "plan": plan.describe(), **peaks,
    }


def run_child(data_dir, limit, trials) -> dict:
    with tempfile.TemporaryDirectory() as run_dir:
        argv = [sys.executable, os.path.abspath(__file__), "--child", data_dir, run_dir,
                str(limit), str(trials)]
        output = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def mib(size) -> str:
    return f"{size / 2**20:,.0f}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        data_dir, run_dir, limit, trials = argv[1:]
        limit = None if limit == "default" else limit
        print(json.dumps(child(data_dir, os.path.join(run_dir, "run"), limit, int(trials))))
        return
    if argv and argv[0] == "--render":
        with open(argv[1] + ".json", encoding="utf-8") as handle:
            result = json.load(handle)
        print(save(argv[1], result, render(result)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--limits", nargs="+", default=["default", "64M"],
                        help="memory limits to run each size with (`default`: a quarter of RAM)")
    parser.add_argument("--append", action="store_true",
                        help="add the rows to those of OUT.json (e.g. a size run separately)")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--dir", help="where the folders are written (kept; default: a "
                        "temporary folder)")
    parser.add_argument("--out", default="results/memory")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        for n in args.images:
            start = time.perf_counter()
            data_dir = write_folder(os.path.join(args.dir or temporary, f"images_{n}"), n)
            written = time.perf_counter() - start
            for limit in args.limits:
                figures = run_child(data_dir, limit, args.trials)
                figures.update(limit_argument=limit, folder_seconds=written)
                rows.append(figures)
                print(json.dumps(figures), flush=True)
    result = {"benchmark": "memory", "rows": rows, "trials": args.trials,
              "machine": machine(), "command": command()}
    if args.append:
        with open(args.out + ".json", encoding="utf-8") as handle:
            previous = json.load(handle)
        result["rows"] = previous["rows"] + rows
        result["command"] = f"{previous['command']}; then {result['command']}"
    print(save(args.out, result, render(result)))


def render(result) -> str:
    """The results page of `result` (also rebuilt from its JSON with `--render OUT`)."""
    rows, trials = result["rows"], result["trials"]
    table = "\n".join(
        f"| {r['images']:,} | {mib(r['decoded_bytes'])} | {r['limit_argument']} "
        f"({mib(r['memory_limit'])} MiB) | {'memory-mapped' if r['mapped'] else 'RAM'} | "
        f"**{mib(r['peak_rss_anon'])}** | {r['search_seconds']:.0f} | "
        f"{1000 * r['search_seconds'] / r['images']:.1f} | "
        f"{r['until_first_trial_end_seconds']:.0f} |" for r in rows)
    mapped = [r for r in rows if r["mapped"]]
    flat = ""
    if len(mapped) > 1:
        low, high = mapped[0], mapped[-1]
        flat = (f"\nOver the limit (memory-mapped rows), peak RssAnon goes from "
                f"{mib(low['peak_rss_anon'])} MiB for {low['images']:,} images to "
                f"{mib(high['peak_rss_anon'])} MiB for {high['images']:,} "
                f"({high['peak_rss_anon'] / low['peak_rss_anon']:.2f}x for "
                f"{high['images'] / low['images']:.0f}x the images and "
                f"{high['decoded_bytes'] / low['decoded_bytes']:.0f}x the decoded bytes).\n")
    return f"""# Peak anonymous memory and time of a short search

Synthetic folders of 64x64 RGB PNGs in 10 classes; a search of {trials} trials of 1 epoch \
(random tuner, a 2-conv CNN, batch 32, test split 0.1 with one final training, no baseline), \
each in a fresh process.

| images | decoded MiB | memory limit | images in | peak RssAnon MiB | search s \
| search s per 1k images | decode + first trial s |
|---|---|---|---|---|---|---|---|
{table}
{flat}
RssAnon is the anonymous resident memory of the whole process (TensorFlow, Keras and the \
model included); pages of the memory-mapped images are file cache and do not count. \
"search s" runs from the call of `autoprep.tune` to its return: TensorFlow's import (autoprep \
imports it lazily), indexing, decoding, {trials} trials and the final training.
{result.get("notes", "")}"""


if __name__ == "__main__":
    main()
