"""No import circle inside ``pytorch_devol/``: every import counts, at the top of a module,
inside a function, or under ``TYPE_CHECKING``. Modules are read, never imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytorch_devol"


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (a name from a package's ``__init__``
    counts as an import of that ``__init__``; a submodule, of the submodule)."""
    root = package.name
    modules: dict[str, bool] = {}  # dotted name -> is a package
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = \
            parts[-1] == "__init__"

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, is_package in modules.items():
        path = package.parent.joinpath(*name.split(".")) / "__init__.py" if is_package else \
            package.parent.joinpath(*name.split(".")).with_suffix(".py")
        here = name if is_package else name.rpartition(".")[0]
        out: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here.split(".")[:len(here.split(".")) - node.level + 1] \
                    if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                if target.split(".")[0] != root:
                    continue
                out.update(f"{target}.{a.name}" if f"{target}.{a.name}" in modules
                           else known(target) for a in node.names)
            elif isinstance(node, ast.Import):
                out.update(known(a.name) for a in node.names if a.name.split(".")[0] == root)
        graph[name] = {m for m in out if m is not None and m != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle():
    graph = import_graph(PACKAGE)
    assert "pytorch_devol.search.loop" in graph and graph["pytorch_devol.search.loop"]
    assert circles(graph) == []


@pytest.mark.parametrize("where", ["top", "function", "type_checking"])
def test_a_planted_circle_is_found(tmp_path, where):
    pkg = tmp_path / "pytorch_devol"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from .a import A\n")
    (pkg / "sub" / "a.py").write_text("from .b import B\nA = 1\n")
    back = {"top": "from .a import A\n",
            "function": "def f():\n    from .a import A\n",
            "type_checking": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                             "    from pytorch_devol.sub.a import A\n"}[where]
    (pkg / "sub" / "b.py").write_text(back + "B = 2\n")
    assert circles(import_graph(pkg)) == [["pytorch_devol.sub.a", "pytorch_devol.sub.b"]]
