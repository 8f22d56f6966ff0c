"""What CPython's frame stack costs a search, with and without autoprep's reserved room.

Usage:
    python benchmarks/frame_stack.py [--trials 18] [--rounds 2] [--out results/frame_stack]
    python benchmarks/frame_stack.py --smoke --out /tmp/frames   # a minute: checks the script
    python benchmarks/frame_stack.py --render results/frame_stack --findings FILE

Two parts (see autoprep/_frame_stack.py for the mechanism).

Calls: a loop of calls 30 frames deep, made from under 0 to 236 more frames (every 4th
depth), in this process: at some depths the loop's calls go back and forth over the end of a
16 KiB chunk of frame stack, so each call maps, touches and unmaps one. The page gives the
worst depth's page faults and microseconds per loop, plain and under `frame_stack_reserved`.

Searches: `autoprep.tune` in a fresh process per run (`--trials` one-epoch trials of random
search, seed 0, so every run trains the same configurations; a tiny CNN on 320 generated RGB
PNGs of 32 pixels), called from under 0, 12 or 24 extra frames, with the reserved room
(autoprep as it is) or without it (`_reserved_call` set back to the plain call). The runs
alternate, their order reversed every other round. The page gives CPU seconds and minor page
faults per trial after the first third of each run (the first trials build and trace more).
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthetic  # noqa: E402
from synthetic import command, libraries, machine, reread, save, tiny_cnn, write_folder  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

DEPTHS = range(0, 240, 4)
LOOPS = 2000
PADS = (0, 12, 24)  # extra frames under autoprep.tune in the search runs


def _down(n):
    return _down(n - 1) if n else 0


def _loop_at(depth):
    """(page faults, CPU seconds) of LOOPS calls 30 frames deep, `depth` frames below here."""
    if depth:
        return _loop_at(depth - 1)
    faults, cpu = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.process_time()
    for _ in range(LOOPS):
        _down(30)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
            time.process_time() - cpu)


def _all_depths():
    return [_loop_at(depth) for depth in DEPTHS]


def calls() -> dict:
    """The worst depth, plain and reserved: page faults and microseconds per loop."""
    from autoprep._frame_stack import frame_stack_reserved

    result = {}
    for name, scan in (("plain", _all_depths), ("reserved", frame_stack_reserved(_all_depths))):
        readings = [min(runs, key=lambda r: r[1]) for runs in zip(*(scan() for _ in range(3)))]
        faults, cpu = max(readings, key=lambda r: r[1])
        result[name] = {"faults_per_loop": faults / LOOPS, "us_per_loop": 1e6 * cpu / LOOPS,
                        "depths_faulting": sum(r[0] >= LOOPS // 2 for r in readings),
                        "depths": len(readings)}
    return result


def _padded(pad, function, *args, **kwargs):
    return _padded(pad - 1, function, *args, **kwargs) if pad else function(*args, **kwargs)


def child(mode, pad, trials) -> dict:
    """One search in this process; per trial, CPU seconds and minor page faults."""
    import autoprep
    from autoprep import _frame_stack

    if mode == "plain":
        _frame_stack._reserved_call = _frame_stack._call
    rows = []
    last = [time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt]

    def on_trial_end(result, record):
        cpu, faults = time.process_time(), resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        rows.append([cpu - last[0], faults - last[1]])
        last[:] = [cpu, faults]

    with tempfile.TemporaryDirectory() as scratch:
        data = write_folder(os.path.join(scratch, "data"), 320, size=32, classes=4)
        _padded(pad, autoprep.tune, tiny_cnn, data, max_trials=trials, epochs=1,
                tuner="random", seed=0, directory=scratch, project_name="p", verbose=0,
                test_split=0, baseline=False, reevaluate=0, on_trial_end=on_trial_end)
    late = rows[len(rows) // 3:]
    return {"mode": mode, "pad": pad, "trials": rows,
            "cpu_per_trial": statistics.fmean(r[0] for r in late),
            "faults_per_trial": statistics.fmean(r[1] for r in late)}


def searches(trials, rounds, pads) -> list:
    arms = [(mode, pad) for pad in pads for mode in ("plain", "reserved")]
    runs = []
    for index in range(rounds):
        for mode, pad in (arms if index % 2 == 0 else arms[::-1]):
            done = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(pad), str(trials)],
                capture_output=True, text=True, check=True)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            runs.append({**run, "round": index + 1})
            print(f"round {index + 1} {mode:8s} pad {pad:2d}: "
                  f"{run['cpu_per_trial']:.3f} CPU s, {run['faults_per_trial']:.0f} faults "
                  "per trial", flush=True)
    return runs


def _spread(values) -> str:
    values = list(values)
    return f"{statistics.fmean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def markdown(run) -> str:
    loop = run["calls"]
    lines = [
        "# CPython's frame stack in a search (issue 17)", "",
        "See benchmarks/frame_stack.py for the protocol and autoprep/_frame_stack.py for the "
        "mechanism.", "",
        f"## Calls ({LOOPS} loops of calls 30 frames deep, the worst of {loop['plain']['depths']}"
        " depths)", "",
        "| | page faults per loop | microseconds per loop | depths where every loop faults |",
        "|---|---|---|---|",
    ]
    for name in ("plain", "reserved"):
        r = loop[name]
        lines.append(f"| {name} | {r['faults_per_loop']:.2f} | {r['us_per_loop']:.2f} | "
                     f"{r['depths_faulting']} of {r['depths']} |")
    runs = run["searches"]
    lines += ["", f"## Searches ({run['trials']} trials a run, {run['rounds']} rounds; per trial "
              "after the first third of the run: mean (lowest-highest) over the rounds)", "",
              "| extra frames under tune | plain: CPU s | reserved: CPU s | reserved / plain "
              "| plain: page faults | reserved: page faults |", "|---|---|---|---|---|---|"]
    for pad in sorted({r["pad"] for r in runs}):
        arm = {mode: [r for r in runs if r["pad"] == pad and r["mode"] == mode]
               for mode in ("plain", "reserved")}
        plain_cpu = {r["round"]: r["cpu_per_trial"] for r in arm["plain"]}
        ratios = [r["cpu_per_trial"] / plain_cpu[r["round"]] for r in arm["reserved"]
                  if r["round"] in plain_cpu]  # the two runs of a round ran one after the other
        lines.append(
            f"| {pad} | {_spread(r['cpu_per_trial'] for r in arm['plain'])} | "
            f"{_spread(r['cpu_per_trial'] for r in arm['reserved'])} | {_spread(ratios)} | "
            f"{statistics.fmean(r['faults_per_trial'] for r in arm['plain']):,.0f} | "
            f"{statistics.fmean(r['faults_per_trial'] for r in arm['reserved']):,.0f} |")
    return "\n".join(lines + synthetic.findings_lines(run)) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=18)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", default="results/frame_stack")
    parser.add_argument("--smoke", action="store_true",
                        help="3 trials, one round, no extra frames: checks the script")
    synthetic.add_render_arguments(parser)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, pad, trials = args.child
        print(json.dumps(child(mode, int(pad), int(trials))))
        return
    if args.render:
        run = reread(args.render, args.findings)
        print(save(args.render, run, markdown(run)))
        return
    trials, rounds, pads = (3, 1, (0,)) if args.smoke else (args.trials, args.rounds, PADS)
    run = {"trials": trials, "rounds": rounds, "calls": calls(),
           "searches": searches(trials, rounds, pads), "command": command(),
           "machine": {**machine(), "libraries": libraries()}}
    print(save(args.out, run, markdown(run)))


if __name__ == "__main__":
    main()
