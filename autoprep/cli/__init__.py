"""The `autoprep` command: a thin shell over the library (tune, demo, show, export, doctor)."""

import argparse
import importlib
import sys
import traceback

from autoprep._text import printable
from autoprep.cli import quiet
from autoprep.errors import AutoprepError

# Modules that each add sub-commands through `add_parser(subparsers)`; every sub-parser they add
# has `func=run(args) -> exit code` as a default, and `tensorflow=False` when it never needs
# TensorFlow (otherwise TensorFlow is imported first, without its start-up lines); `check=
# check(args) -> message or None` refuses options that cannot go together, before TensorFlow.
_COMMAND_MODULES = (
    "autoprep.cli.tune", "autoprep.cli.results", "autoprep.cli.report", "autoprep.cli.doctor",
)
_DEBUG_HELP = "show the full traceback of an error"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autoprep",
        description="Tune the data side of a Keras image classifier (normalization, "
        "augmentation, class imbalance) and export the winning tf.data pipeline as code.",
        epilog="Run `autoprep COMMAND --help` for the options of one command.",
    )
    parser.add_argument("--version", action=_Version, help="print autoprep's version and exit")
    parser.add_argument("--debug", action="store_true", help=_DEBUG_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND",
                                       help="one of these commands:")
    for name in _COMMAND_MODULES:
        module = _import_command_module(name)
        if module is not None:
            module.add_parser(subparsers)
    for subparser in subparsers.choices.values():
        subparser.set_defaults(tensorflow=subparser.get_default("tensorflow") is not False,
                               parser=subparser)
        if "--debug" not in subparser._option_string_actions:  # `autoprep tune ... --debug`
            subparser.add_argument(
                "--debug", action="store_true", default=argparse.SUPPRESS, help=_DEBUG_HELP
            )
    return parser


class _Version(argparse.Action):
    """`--version`: prints `autoprep X.Y.Z` (read from the package metadata only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import autoprep

        print(f"autoprep {autoprep.__version__}")
        parser.exit()


def _import_command_module(name):
    """Imports a command module; None when that module (not one it imports) does not exist yet."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(error.name + ".")):
            return None
        raise


def main(argv=None) -> int:
    """Runs the `autoprep` command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)  # --help and argument errors exit here, without TensorFlow
    if args.command is None:  # a bare `autoprep`: the commands, as an argument error
        parser.print_help(sys.stderr)
        return 2
    problem = args.check(args) if getattr(args, "check", None) else None
    if problem:  # options that cannot go together
        args.parser.error(problem)
    args.argv = argv
    try:
        if args.tensorflow:
            quiet.import_tensorflow()
        return args.func(args)
    except AutoprepError as error:
        return report_error(args, error)
    except Exception as error:  # a bug or an unforeseen failure: one line, --debug for more
        return report_error(args, error, unexpected=True)


def report_error(args, error, *, unexpected=False, code=None) -> int:
    """Prints `error` as one line (with its traceback under --debug); returns the exit code."""
    if args.debug:
        traceback.print_exception(error)
    text = printable(" ".join(line.strip() for line in str(error).splitlines() if line.strip()))
    if unexpected:
        text = f"{type(error).__name__}: {text} (rerun with --debug for the traceback)"
    print(f"autoprep {args.command}: error: {text}", file=sys.stderr, flush=True)
    return code if code is not None else (1 if unexpected else 2)


if __name__ == "__main__":
    sys.exit(main())
