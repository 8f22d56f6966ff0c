"""The package's imports point one way, down the data flow: no circle, no import of a higher layer.

Every module of `autoprep/` is parsed with `ast`; every `import autoprep...` and
`from autoprep... import ...` counts, at the top of a module or inside a function (an import
inside a function is a dependency too: it only runs later), and so do the modules named in
`autoprep/__init__.py`'s `_LAZY` table, which loads the public names on first use. There is
no exception: the report, a layer above the result record, is `autoprep.write_report(result)`,
not a method of the record.
"""

import ast
import os

import pytest

import autoprep

PACKAGE_DIR = os.path.dirname(autoprep.__file__)

# Bottom to top. A module may import its own layer (without a circle) and the layers below.
LAYERS = [
    {"errors", "_text", "_registry", "_files", "_quiet", "_frame_stack", "objectives"},
    {"data"},
    {"choices"},
    {"export"},  # the generated module: never reads a result (run/ hands it one)
    {"run"},
    {"search"},
    {"doctor", "report"},
    {"__init__"},  # the public names (`autoprep.tune`, ...), loaded on first use
    {"cli", "__main__"},  # the shell over the public names, and `python -m autoprep`
]


def _module_names() -> dict:
    """Dotted module name -> file path, for every module of the package."""
    names = {}
    for folder, _, files in os.walk(PACKAGE_DIR):
        for file in files:
            if not file.endswith(".py"):
                continue
            relative = os.path.relpath(os.path.join(folder, file), os.path.dirname(PACKAGE_DIR))
            parts = relative[:-3].split(os.sep)
            if parts[-1] == "__init__":
                parts.pop()
            names[".".join(parts)] = os.path.join(folder, file)
    return names


def _imports(path, modules) -> list:
    """(imported module, line, function) of every autoprep import of a file; `function` is the
    qualified name of the function that holds the import, None at the top of the module."""
    found = []

    def visit(node, scope, function):
        for child in ast.iter_child_nodes(node):
            inner_scope, inner_function = scope, function
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                inner_scope = scope + [child.name]
                if not isinstance(child, ast.ClassDef):
                    inner_function = ".".join(inner_scope)
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:  # `from package import submodule` imports the submodule
                    submodule = f"{child.module}.{alias.name}"
                    name = submodule if submodule in modules else child.module
                    found.append((name, child.lineno, function))
            visit(child, inner_scope, inner_function)

    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), (
        f"{path}: relative import (this test reads absolute ones)")
    visit(tree, [], None)
    for node in tree.body:  # `_LAZY = {public name: module}`: imported on first use
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets):
            found.extend((value.value, value.lineno, "__getattr__")
                         for value in node.value.values)
    return [(name, line, function) for name, line, function in found
            if name == "autoprep" or name.startswith("autoprep.")]


def _graph() -> dict:
    """module -> {imported module: (line, function)}."""
    modules = _module_names()
    graph = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for imported, line, function in _imports(path, modules):
            if imported != name:
                edges.setdefault(imported, (line, function))
    return graph


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for rank, layer in enumerate(LAYERS):
        if top in layer:
            return rank
    raise AssertionError(f"{module} is in no layer: add its top-level name to LAYERS")


def test_every_module_is_in_a_layer():
    for module in _module_names():
        _layer(module)


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{module} (layer {_layer(module)}) imports {imported} (layer {_layer(imported)}) "
        f"at line {line}{f' in {function}' if function else ''}"
        for module, edges in sorted(_graph().items())
        for imported, (line, function) in sorted(edges.items())
        if _layer(imported) > _layer(module)
    ]
    assert not upward, "\n".join(upward)


def _circle(graph):
    """One circle of `graph` as a list of modules, or None."""
    state, stack = {}, []

    def visit(module):
        state[module] = "open"
        stack.append(module)
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == "open":
                return stack[stack.index(imported):] + [imported]
            if imported not in state:
                circle = visit(imported)
                if circle:
                    return circle
        state[module] = "done"
        stack.pop()
        return None

    for module in sorted(graph):
        if module not in state:
            circle = visit(module)
            if circle:
                return circle
    return None


def test_no_import_circle():
    circle = _circle(_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)


@pytest.mark.parametrize("graph, circle", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
    ({"a": {"b"}, "b": {"b2"}, "b2": {"b"}}, ["b", "b2", "b"]),
])
def test_the_circle_finder(graph, circle):
    assert _circle(graph) == circle


def test_lazy_imports_count(tmp_path):
    path = tmp_path / "m.py"
    path.write_text("import os\nimport autoprep.errors\n\nclass A:\n    def f(self):\n"
                    "        from autoprep.run import result\n"
                    "        import autoprep.search.loop\n")
    modules = {"autoprep.run.result": "", "autoprep.run": "", "autoprep.search.loop": ""}
    assert _imports(path, modules) == [("autoprep.errors", 2, None),
                                       ("autoprep.run.result", 6, "A.f"),
                                       ("autoprep.search.loop", 7, "A.f")]


def test_the_public_names_table_counts(tmp_path):
    path = tmp_path / "__init__.py"
    path.write_text('_LAZY = {\n    "tune": "autoprep.search.loop",\n}\n')
    assert _imports(path, {}) == [("autoprep.search.loop", 2, "__getattr__")]
