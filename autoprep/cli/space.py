"""`--space FILE` and one option per search dimension (`--normalization per_channel,rescale_01`).

A file holds `SearchSpace` arguments as `SearchSpace.get_config()` writes them: a name or a
number fixes a dimension, a list chooses among its items, `{"min": a, "max": b}` is a range.
On the command line a value fixes, `a,b,c` chooses, `LOW:HIGH` is a range (both ends
included); an option overrides the file's value of its dimension.

The options are built from `DIMENSIONS`, a static copy of the registries' dimension names, so
that `autoprep tune --help` need not import the registries (and with them TensorFlow);
tests/test_cli.py checks it against `declared_dimensions()`. The values are checked by
`SearchSpace` when the command runs, which names the valid ones.
"""

import argparse
import json
import math
import os
import textwrap
from typing import NamedTuple

NAMES, NUMBERS = "names", "numbers"
# Every dimension of `autoprep.search.space.declared_dimensions()`, in its order, and whether
# it takes registered names or numbers. A newly registered op or parameter needs its line here.
DIMENSIONS = (
    ("normalization", NAMES), ("flip", NAMES), ("rotation", NUMBERS), ("zoom", NUMBERS),
    ("translation", NUMBERS), ("contrast", NUMBERS), ("brightness", NUMBERS), ("policy", NAMES),
    ("imbalance", NAMES), ("rand_augment", NUMBERS), ("mixup", NUMBERS), ("cutmix", NUMBERS),
    ("trivial_augment", NUMBERS), ("beta", NUMBERS), ("reweight_start", NUMBERS),
    ("loss_tau", NUMBERS),
)
_DEST = "dimension_"  # args.dimension_rotation: apart from the command's other options


class SpaceFile(NamedTuple):
    """The path of a --space file and the SearchSpace arguments it holds."""

    path: str
    config: dict


def add_space_options(parser):
    """Adds `--space FILE` and one option per dimension, in their own group of the help."""
    group = parser.add_argument_group("search space", textwrap.fill(
        "Fix or narrow what is searched (autoprep.SearchSpace). --space reads a JSON or TOML "
        "file of its arguments; each option below overrides one of them. One value fixes a "
        "dimension, comma-separated values are searched among, LOW:HIGH is a range of numbers "
        "(both ends included). The normalization is fixed to what the model expects when the "
        "model says (preprocessing layers inside it, a Keras Applications backbone); "
        "--normalization overrides that, with a warning. The names and default candidates: "
        "docs/search.md; the file format: docs/cli.md.", width=78))
    group.add_argument("--space", type=space_file, metavar="FILE",
                       help="a .json or .toml file of SearchSpace arguments, e.g. "
                       '{"normalization": ["per_channel", "rescale_01"], '
                       '"rotation": {"min": 0, "max": 0.1}}')
    for name, kind in DIMENSIONS:
        if kind == NAMES:
            group.add_argument(option(name), type=names, dest=_DEST + name, metavar="NAMES",
                               help=f"{name}: one name, or names to search among "
                               "(comma-separated)")
        else:
            group.add_argument(option(name), type=numbers, dest=_DEST + name, metavar="VALUES",
                               help=f"{name}: a value, comma-separated values or LOW:HIGH")


def option(name) -> str:
    """The command-line option of a dimension: `reweight_start` -> `--reweight-start`."""
    return "--" + name.replace("_", "-")


def names(text):
    """A name, or a list of names from `a,b,c`."""
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise argparse.ArgumentTypeError(
            f"expected a name or comma-separated names, e.g. per_channel,rescale_01. "
            f"Received: {text!r}")
    return items if len(items) > 1 else items[0]


def numbers(text):
    """A number, a list of numbers from `a,b,c`, or a range (low, high) from `LOW:HIGH`."""
    separator = ":" if ":" in text else ","
    try:
        values = [float(item) for item in text.split(separator)]
    except ValueError:
        values = []
    if not values or not all(map(math.isfinite, values)) or (
            separator == ":" and len(values) != 2):
        raise argparse.ArgumentTypeError(
            f"expected a number, comma-separated numbers (0,0.1,0.2) or a range LOW:HIGH "
            f"(0:0.2). Received: {text!r}")
    if separator == ":":
        return tuple(values)
    return values if len(values) > 1 else values[0]


def space_file(path) -> SpaceFile:
    """The SearchSpace arguments of a .json or .toml file (checked when the command runs)."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".json", ".toml"):
        raise argparse.ArgumentTypeError(
            f"expected a .json or .toml file. Received: {path!r}")
    try:
        if extension == ".json":
            with open(path, encoding="utf-8") as handle:
                config = json.load(handle)
        else:
            with open(path, "rb") as handle:
                config = _toml().load(handle)
    except OSError as error:
        raise argparse.ArgumentTypeError(
            f"cannot read {path!r}: {error.strerror or error}") from None
    except ValueError as error:  # json.JSONDecodeError, tomllib.TOMLDecodeError
        raise argparse.ArgumentTypeError(f"{path!r} is not valid {extension[1:].upper()}: "
                                         f"{error}") from None
    if not isinstance(config, dict):
        raise argparse.ArgumentTypeError(
            f"{path!r} must hold a table of SearchSpace arguments, e.g. "
            f'{{"normalization": "per_channel"}}. Received: {type(config).__name__}')
    return SpaceFile(path, config)


def _toml():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise argparse.ArgumentTypeError(
                "reading TOML needs Python 3.11 (tomllib) or the tomli package: "
                "pip install tomli, or write the space as JSON") from None
    return tomllib


def shorthands(args) -> dict:
    """{dimension: value} of the dimension options given."""
    return {name: getattr(args, _DEST + name) for name, _ in DIMENSIONS
            if getattr(args, _DEST + name, None) is not None}


def search_space(args):
    """The `SearchSpace` of --space and the dimension options, or None when none is given.

    Raises:
        ArgumentError: naming the file or option whose value `SearchSpace` refuses.
    """
    from autoprep.errors import ArgumentError, AutoprepError
    from autoprep.search.space import SearchSpace

    config, given = dict(args.space.config) if args.space else {}, shorthands(args)
    if args.space is None and not given:
        return None
    sources = [(f"--space {args.space.path}", config)] if args.space else []
    sources += [(option(name), {name: value}) for name, value in given.items()]
    for source, arguments in sources:  # each alone, so that the error names its source
        try:
            SearchSpace(**arguments)
        except AutoprepError as error:
            raise ArgumentError(f"{source}: {error}") from error
    return SearchSpace(**{**config, **given})
