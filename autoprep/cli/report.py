"""`autoprep report`: a run's morning report, one self-contained HTML page."""

from autoprep.run.files import REPORT_FILE


def add_parser(subparsers):
    """Adds the `report` sub-command."""
    report = subparsers.add_parser(
        "report", allow_abbrev=False,
        help="write a run's HTML report: the answer, plots of what mattered, augmentation "
        "preview, classes",
        description="Write one self-contained HTML page about a finished, running or "
        "interrupted search: the best pipeline and its test score against the raw-pixel "
        "baseline, the search history, what mattered, the winning augmentation on real "
        "images, per-class results and the doctor's data findings. It opens offline.",
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the --out directory of a search")
    report.add_argument("-o", "--output", metavar="FILE",
                        help=f"the page to write (default: RUN_DIR/{REPORT_FILE})")
    report.add_argument("--force", action="store_true",
                        help="replace FILE even if it is not a report autoprep wrote")
    report.set_defaults(func=run_report)


def run_report(args) -> int:
    from autoprep.report import write_report
    from autoprep.run.result import load_result

    path = write_report(load_result(args.run_dir), args.output, force=args.force)
    print(f"wrote {path}")
    return 0
