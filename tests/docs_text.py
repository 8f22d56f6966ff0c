"""What the README and the pages of docs/ say, read as facts: links, commands, paths, calls.

Imported by the tests of the documentation (test_readme, test_docs, test_safety_docs).
"""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
INLINE_CODE = re.compile(r"`([^`]+)`")
# A path of this repository written in a page: a top folder, then a name or more.
REPO_PATH = re.compile(r"(?<![\w./-])((?:benchmarks|results|examples|tests|autoprep|docs|\.ci)"
                       r"/[\w./-]*)")
AUTOPREP_COMMAND = re.compile(r"(?<![\w./-])autoprep(?![\w./'-])((?:[ \t]+[^\s#]+)*)")


def read(name) -> str:
    with open(os.path.join(ROOT, name), encoding="utf-8") as handle:
        return handle.read()


def pages() -> list:
    """README.md and every page of docs/, as paths relative to the repository."""
    docs = sorted(name for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    return ["README.md"] + [f"docs/{name}" for name in docs]


def code_blocks(text, languages=None) -> list:
    """The fenced code blocks of a page, optionally only those in `languages` ("" = untyped)."""
    return [body for language, body in FENCE.findall(text)
            if languages is None or language in languages]


def prose(text) -> str:
    """A page without its fenced code blocks."""
    return FENCE.sub("", text)


def section(text, title) -> str:
    """The body of the section `## title` (up to the next `## `)."""
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def links(text) -> list:
    """The targets of the links and images of a page (outside code blocks)."""
    return LINK.findall(prose(text))


def anchors(text) -> set:
    """GitHub's anchors of a page's headings."""
    result = set()
    for heading in re.findall(r"^#+ (.+)$", prose(text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        result.add(slug)
    return result


def shell_lines(text) -> list:
    """The shell commands of a page: each line of its bash (or untyped) code blocks, continuation
    lines joined and comments removed, and each inline code span outside them."""
    lines = []
    for block in code_blocks(text, ("bash", "sh", "")):
        lines += block.replace("\\\n", " ").splitlines()
    lines += [" ".join(span.split()) for span in INLINE_CODE.findall(prose(text))]
    return [re.sub(r"(^|\s)#.*", "", line) for line in lines]


def autoprep_commands(text) -> list:
    """Every `autoprep ...` command written in a page, as its list of words after `autoprep`."""
    commands = []
    for line in shell_lines(text):
        for part in re.split(r"&&|\|\||[|;&>]", line):
            commands += [match.split() for match in AUTOPREP_COMMAND.findall(part)]
    return commands


def options(words) -> list:
    """The options (`--name`, `-x`) among a command's words."""
    return [re.match(r"(--?[A-Za-z][\w-]*)", word).group(1) for word in words
            if re.match(r"--?[A-Za-z]", word)]


def calls(code, name) -> list:
    """The source of every call `name(...)` in `code` (parentheses balanced)."""
    found = []
    for match in re.finditer(re.escape(name) + r"\(", code):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(code)):
            depth += {"(": 1, ")": -1}.get(code[end], 0)
            if depth == 0:
                break
        found.append(code[match.start():end + 1])
    return found


def keywords(call) -> list:
    """The keyword names passed at the top level of one call's source."""
    inner = re.sub(r"#[^\n]*", "", call[call.index("(") + 1:-1])  # comments
    depth, top = 0, []
    for char in inner:
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(char, 0)
        top.append(char if depth == 0 else " ")
    return re.findall(r"(?:^|,)\s*(\w+)\s*=(?!=)", "".join(top))
