"""What the README and docs/ show exists: links resolve, and the commands, options, paths and
calls they write are the package's own; every registered choice is documented."""

import ast
import dataclasses
import inspect
import os
import re
from urllib.parse import urlparse

import pytest
from docs_text import (
    REPO_PATH,
    ROOT,
    anchors,
    autoprep_commands,
    calls,
    code_blocks,
    keywords,
    links,
    options,
    pages,
    prose,
    read,
    section,
    shell_lines,
)

from autoprep.cli import build_parser

PAGES = pages()
NOT_A_FILE = r"(?!(?:py|json|log|lock|md|html|csv)\b)"  # `autoprep.log` is a file name


def _subparsers():
    parser = build_parser()
    return parser, parser._subparsers._group_actions[0].choices


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    targets = [target for target in links(read(page)) if not urlparse(target).scheme]
    for target in targets:
        path, _, anchor = target.partition("#")
        resolved = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path or
                                                 os.path.basename(page)))
        assert os.path.exists(resolved), f"{page}: {target} does not exist"
        assert resolved.startswith(ROOT + os.sep), f"{page}: {target} leaves the repository"
        if anchor:
            assert anchor in anchors(open(resolved, encoding="utf-8").read()), (page, target)


def test_every_docs_page_is_linked_from_the_readme():
    linked = {os.path.normpath(target.partition("#")[0]) for target in links(read("README.md"))}
    assert set(PAGES[1:]) <= linked


@pytest.mark.parametrize("page", PAGES)
def test_every_repository_path_written_exists(page):
    text = read(page)
    paths = {path.rstrip(".") for path in REPO_PATH.findall(text)}
    for path in paths:
        assert os.path.exists(os.path.join(ROOT, path)), f"{page} names {path}"


@pytest.mark.parametrize("page", PAGES)
def test_every_benchmark_command_and_results_page_exists(page):
    text = read(page)
    for script in re.findall(r"python (\S+\.py)", text):
        assert os.path.isfile(os.path.join(ROOT, script)), f"{page}: python {script}"
    for result in re.findall(r"(?<![\w-])(results/[\w.-]+\.(?:md|json))", text):
        assert os.path.isfile(os.path.join(ROOT, result)), f"{page}: {result}"


def _options(parser) -> set:
    return set(parser._option_string_actions)


@pytest.mark.parametrize("page", PAGES)
def test_every_autoprep_command_and_option_written_exists(page):
    parser, commands = _subparsers()
    every = set().union(*map(_options, commands.values()))
    written = autoprep_commands(read(page))
    for words in written:
        if not words:
            continue
        if words[0].startswith("-"):  # `autoprep --help`
            known, name = _options(parser), "autoprep"
        elif words[0].isupper():  # a placeholder: `autoprep COMMAND --help`
            known, name = set.intersection(*map(_options, commands.values())), words[0]
        else:
            assert words[0] in commands, f"{page}: autoprep {words[0]} is no command"
            known, name = _options(commands[words[0]]), words[0]
        for option in options(words):
            assert option in known, f"{page}: autoprep {name} has no {option}"
    # An option written alone (`--time-budget`) belongs to some command.
    alone = [line.split()[0] for line in shell_lines(read(page))
             if line.startswith("--") and not line.startswith("---")]
    for option in alone:
        option = re.match(r"--[\w-]+", option).group(0)
        assert option in every, f"{page}: no command has {option}"


def test_the_docs_show_commands_and_options():
    """The checks above read something: the pages show commands with options."""
    written = [words for page in PAGES for words in autoprep_commands(read(page))]
    assert {"tune", "show", "export", "report", "doctor", "demo"} <= {w[0] for w in written if w}
    assert sum(len(options(words)) for words in written) > 20


def _python(page) -> str:
    return "\n".join(code_blocks(read(page), ("python",)) + [" ".join(prose(read(page)).split())])


@pytest.mark.parametrize("page", PAGES)
def test_every_public_name_and_keyword_written_exists(page):
    import autoprep

    code = _python(page)
    for name in set(re.findall(r"\bautoprep\." + NOT_A_FILE + r"(\w+)", code)):
        assert name in autoprep.__all__, f"{page}: autoprep.{name}"
    for name in set(re.findall(r"\bautoprep\.(\w+)\(", code)):
        parameters = inspect.signature(getattr(autoprep, name)).parameters
        if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
            continue  # SearchSpace(**dimensions): constructed below
        for call in calls(code, f"autoprep.{name}"):
            for keyword in keywords(call):
                assert keyword in parameters, f"{page}: {call} ({keyword})"


@pytest.mark.parametrize("page", PAGES)
def test_every_search_space_written_constructs(page):
    from autoprep import SearchSpace

    for call in calls(_python(page), "SearchSpace"):
        if "..." not in call:
            eval(call, {"SearchSpace": SearchSpace})  # raises for an unknown name or value


def test_every_result_attribute_written_exists():
    from autoprep.run.result import TuneResult

    known = {field.name for field in dataclasses.fields(TuneResult)} | set(dir(TuneResult))
    written = {name for page in PAGES for name in re.findall(r"\bresult\.(\w+)", _python(page))}
    assert written and written <= known, written - known


def test_every_registered_choice_is_in_the_table_of_what_is_searched():
    import autoprep

    table = section(read("docs/search.md"), "What is searched")
    rows = {row.split("|")[1].strip(): row for row in table.splitlines() if row.startswith("| ")}
    for dimension, registry in (("normalization", autoprep.NORMALIZATIONS),
                                ("augmentation", autoprep.AUGMENTATIONS),
                                ("class imbalance", autoprep.IMBALANCE_STRATEGIES)):
        written = set(re.findall(r"`(\w+)`", rows[dimension]))
        assert set(registry) <= written, (dimension, set(registry) - written)
        if dimension != "class imbalance":  # that row also names the module's `from_logits`
            assert written <= set(registry), (dimension, written - set(registry))


def _exported_modules() -> list:
    """The syntax trees of exported modules, one per imbalance strategy that adds names."""
    import numpy as np

    from autoprep import Pipeline
    from autoprep.export.module import render_module

    images = np.random.default_rng(0).integers(0, 255, (12, 8, 8, 1), dtype=np.uint8)
    labels = np.array([0] * 6 + [1] * 4 + [2] * 2)
    trees = []
    for imbalance in ("inverse_frequency", "logit_adjusted_loss", "posthoc_logit_adjustment"):
        pipeline = Pipeline(normalization="rescale_01", augmentation=[],
                            imbalance=imbalance).fit(images, labels, 3)
        source = render_module(pipeline, class_names=["a", "b", "c"], image_size=(8, 8),
                               channels=1, epochs=2)
        trees.append(ast.parse(source))
    return trees


def test_the_exported_module_has_every_name_and_keyword_written():
    functions, names = {}, set()
    for tree in _exported_modules():
        for node in tree.body:
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.FunctionDef):
                names.add(node.name)
                functions[node.name] = node
            elif isinstance(node, ast.Assign):
                names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    written = set()
    for page in PAGES:
        code = _python(page)
        written |= set(re.findall(r"\bpipeline\." + NOT_A_FILE + r"(\w+)", code))
        written |= set(re.findall(r"module's `(\w+)", code))
        for name, node in functions.items():
            arguments = {arg.arg for arg in node.args.args + node.args.kwonlyargs}
            for call in calls(code, f"pipeline.{name}"):
                assert set(keywords(call)) <= arguments, f"{page}: {call}"
    assert {"make_datasets", "FIT_KWARGS", "preprocess"} <= written
    assert written <= names, written - names
