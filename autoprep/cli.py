"""The `autoprep` command: a thin shell over the library (`tune`, `export`, `show`, `demo`, `doctor`)."""

import argparse
import os
import sys
import traceback

from autoprep.errors import AutoprepError

# Modules that each add one sub-command through `add_parser(subparsers)`; the parser they return
# has `func=run(args) -> exit code` as a default.
_COMMAND_MODULES = ("autoprep._cli_tune", "autoprep.doctor._cli")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="autoprep",
        description="Tune the data side of a Keras image classifier (normalization, "
        "augmentation, class imbalance) and export the winning tf.data pipeline as code.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback of an error"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parser(subparsers)
    return parser


def main(argv=None) -> int:
    """Runs the `autoprep` command line; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except AutoprepError as error:
        if args.debug:
            traceback.print_exc()
        print(f"autoprep {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
