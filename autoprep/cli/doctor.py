"""`autoprep doctor DATA_DIR [--model MODEL] [--normalization NAME] [--json] [--seed S]`: a thin
shell over `diagnose`."""

import argparse

from autoprep.cli.tune import MAX_PIXELS_HELP, max_pixels, pixel_limit


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Adds the `doctor` sub-command; its `func` runs it and returns the exit code."""
    parser = subparsers.add_parser(
        "doctor",
        help="find what is wrong with an image folder (and a model), ranked, with fixes",
        description="Check an image folder (and optionally a model) for the usual reasons a "
        "classifier fails to learn. Exit code: 1 when an error-level finding exists, else 0; "
        "2 for bad input.",
    )
    parser.add_argument("data_dir", metavar="DATA_DIR", help="one sub-folder per class")
    parser.add_argument(
        "--model", metavar="MODEL",
        help="`path/to/file.py:function` or `package.module:function` building the model; "
        "enables the model checks (seconds of training on tiny batches)",
    )
    parser.add_argument(
        "--normalization", metavar="NAME",
        help="the normalization that will feed the model (e.g. rescale_01), checked against "
        "what the model expects (default: the one `autoprep tune` fixes for the model)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--max-pixels", type=max_pixels, metavar="N", help=MAX_PIXELS_HELP)
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the checked split and the model checks (default: 0)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Runs `diagnose` and prints the report; returns its exit code."""
    from autoprep.doctor import diagnose

    report = diagnose(args.data_dir, args.model, seed=args.seed,
                      normalization=args.normalization, **pixel_limit(args))
    print(report.to_json() if args.json else report.format())
    return report.exit_code
