"""`autoprep show` and `autoprep export`: read a finished or partial run directory."""

import json
import os
import time

from autoprep import objectives
from autoprep._text import counted, printable, summarize
from autoprep.errors import RunDirectoryError
from autoprep.run.convention import recorded
from autoprep.run.files import LOG_FILE, RESULTS_FILE
from autoprep.run.progress import clock
from autoprep.run.result import label_issues_text, load_result, seed_text, validation_text
from autoprep.run.trial import failure_text, number_of, trial_text


def add_parser(subparsers):
    """Adds the `show` and `export` sub-commands."""
    show = subparsers.add_parser(
        "show", allow_abbrev=False,
        help="table of a run's best trials and its state",
        description="Print the state of a finished or running search and a table of its best "
        "trials: rank, trial number, status, score, the worker that ran it (distributed search) "
        "and pipeline (failed trials with their reason).",
    )
    show.add_argument("run_dir", metavar="RUN_DIR", help="the --out directory of a search")
    show.add_argument("--top", type=int, default=10, metavar="N",
                      help="show the N best trials (default: %(default)s; 0 shows all)")
    show.add_argument("--json", action="store_true",
                      help="print the whole record as JSON instead (results.json: every trial, "
                      "the chosen pipeline, the images that look mislabeled)")
    show.set_defaults(func=run_show, tensorflow=False)

    export = subparsers.add_parser(
        "export", allow_abbrev=False,
        help="write the best pipeline of a run as a standalone Python module",
        description="Write the best pipeline found so far (finished or partial run) as a "
        "module that imports only TensorFlow: make_datasets, preprocess, FIT_KWARGS.",
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="the --out directory of a search")
    export.add_argument("-o", "--output", default="pipeline.py", metavar="FILE",
                        help="the module to write (default: %(default)s)")
    export.add_argument("--force", action="store_true",
                        help="replace FILE even when it is not a module autoprep wrote")
    export.set_defaults(func=run_export)


def run_export(args) -> int:
    result = load_result(args.run_dir)
    if result.best_config is None:
        raise RunDirectoryError(
            f"{result.run_dir!r} has no completed trial yet ({len(result.trials)} finished, "
            "none scored), so there is no pipeline to export. Wait for a trial to complete."
        )
    path = result.export(args.output, force=args.force)
    print(printable(f"wrote {path}: {summarize(result.best_config)} (validation "
                    f"{result.objective} {result.best_score:.4f}, {len(result.trials)} trials, "
                    f"search {result.state})"))
    return 0


def run_show(args) -> int:
    result = load_result(args.run_dir)
    if args.json:  # ASCII only (json escapes the rest): no control codes reach the terminal
        print(json.dumps({**result.to_dict(), "run_dir": result.run_dir}, indent=2))
        return 0
    for line in _header(result):
        print(printable(line))  # results.json may come from someone else: no control codes
    distributed = any(t.worker for t in result.trials)
    rows = [tuple(printable(cell) for cell in row) for row in _ranked(result, distributed)]
    top = rows if args.top <= 0 else rows[:args.top]
    heading = ("rank", "trial", "status", "score") + (("worker",) if distributed else ())
    print()
    print(_table([heading + ("pipeline",)] + top))
    if len(top) < len(rows):
        print(f"... {len(rows) - len(top)} more (--top 0 shows all)")
    return 0


def _header(result) -> list:
    saved = os.path.getmtime(os.path.join(result.run_dir, RESULTS_FILE))
    state = result.state
    if state == "running":
        ago = clock(time.time() - saved)
        state += (f" (last saved {ago} ago; if its process is gone, rerun its command to "
                  f"resume: see {os.path.join(result.run_dir, LOG_FILE)})")
    completed = sum(t["status"] == "COMPLETED" for t in result.trials)
    data = result.data
    lines = [
        f"run: {result.run_dir}",
        f"state: {state}",
        f"data: {data['data_dir']} ({len(data['class_names'])} classes, "
        f"{sum(data['class_counts'])} images, {data['image_size'][0]}x{data['image_size'][1]})",
        f"trials: {len(result.trials)} ({completed} completed, "
        f"{len(result.trials) - completed} failed), {counted(result.epochs, 'epoch')} each",
    ]
    convention = recorded(data)  # None for runs of older versions
    if convention is not None:
        lines.append(f"model input: {convention.describe()}")
        lines += [f"warning: {problem}" for problem in convention.problems]
    if result.best_config is not None:
        spread = "" if result.best_score_std is None else (
            f" ± {result.best_score_std:.4f} std over {result.selection['repeats']} "
            "re-evaluations")
        lines.append(f"best validation {result.objective}: {result.best_score:.4f}{spread} "
                     f"(trial {result.best_trial})")
        if result.selection:
            lines.append(f"chosen: {result.selection['reason']}")
    if result.validation:
        lines.append(f"validation: {validation_text(result.validation)}")
    if result.seed is not None:
        lines.append(seed_text(result.seed))
    workers = _workers(result.trials)
    if workers:
        lines.append(f"workers: {workers}")
    if result.test_score is not None:
        baseline = ("" if result.baseline_score is None
                    else f" (baseline, raw pixels: {result.baseline_score:.4f})")
        lines.append(f"test {result.objective}: {result.test_score:.4f}{baseline}")
    if result.label_issues is not None:
        lines.append(label_issues_text(result.label_issues))
    lines.append(_report_line(result))
    return lines


def _report_line(result) -> str:
    """Where the HTML report is, or how to write it."""
    from autoprep.report import report_path

    path = report_path(result.run_dir)
    if not os.path.isfile(path):
        return f"report: not written yet; write it with: autoprep report {result.run_dir}"
    ago = clock(time.time() - os.path.getmtime(path))
    return f"report: {path} (written {ago} ago; rewrite it with: autoprep report {result.run_dir})"


def _workers(trials) -> str:
    """`tuner0 ran 3 trials, tuner1 ran 1` for a distributed search, else ""."""
    counts = {}
    for trial in trials:
        if trial.worker:
            counts[trial.worker] = counts.get(trial.worker, 0) + 1
    return ", ".join(f"{worker} ran {count} trial{'s' * (count > 1)}"
                     for worker, count in sorted(counts.items()))


def _ranked(result, distributed=False) -> list:
    """Rows of the table: scored trials best first, then the failed ones with their reason;
    with `distributed`, the worker that ran each trial."""
    scored = objectives.ranked([t for t in result.trials if t["score"] is not None],
                               objectives.direction(result.objective), key=lambda t: t["score"])
    unscored = [t for t in result.trials if t["score"] is None]
    rows = []
    for rank, trial in enumerate(scored + unscored, start=1):
        config = trial_text(trial)
        if trial["score"] is None:
            config += f"  [{failure_text(trial)}]"
        score = "-" if trial["score"] is None else f"{trial['score']:.4f}"
        worker = (trial.worker or "-",) if distributed else ()
        rows.append((str(rank) if trial["score"] is not None else "-", str(number_of(trial)),
                     trial["status"], score, *worker, config))
    return rows


def _table(rows) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]
        for row in rows
    )
