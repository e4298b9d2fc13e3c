"""The package stays readable: short functions and files (the benchmarks' too), one definition of
shared types, one registry per extension point, and the command line's choices taken from those
registries."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytorch_devol"
SOURCES = sorted(PACKAGE.rglob("*.py"))
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
BENCHMARK_SOURCES = sorted(BENCHMARKS.glob("*.py"))


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_functions_stay_short(path):
    assert len(path.read_text().splitlines()) <= 400
    limit = 60 if path.relative_to(PACKAGE).parts[0] in ("training", "search") else 80
    long = [(name, n) for name, n in _functions(path) if n > limit]
    assert not long, f"functions over {limit} lines: {long}"


@pytest.mark.parametrize("path", BENCHMARK_SOURCES, ids=lambda p: p.name)
def test_benchmark_files_and_functions_stay_short(path):
    """The benchmark scripts and their modules too: files <= 400 lines, functions <= 80."""
    lines = len(path.read_text().splitlines())
    assert lines <= 400, f"{path.name} has {lines} lines"
    long = [(name, n) for name, n in _functions(path) if n > 80]
    assert not long, f"functions over 80 lines: {long}"


def test_shared_array_types_are_defined_once():
    defining = [p.name for p in SOURCES if "\nIntArray = " in p.read_text()]
    assert defining == ["_common.py"]


def test_no_legacy_shims():
    assert not list(PACKAGE.rglob("_legacy.py"))
    assert not [p for p in SOURCES if "DeprecationWarning, stacklevel" in p.read_text()]


def test_cli_choices_are_the_registries():
    from pytorch_devol.cli import build_parser
    from pytorch_devol.search.fidelity import FIDELITIES
    from pytorch_devol.search.strategies import STRATEGIES

    search = build_parser()._subparsers._group_actions[0].choices["search"]
    options = {a.dest: a for a in search._actions}
    assert options["strategy"].choices == list(STRATEGIES)
    assert options["fidelity"].choices == ["none", *FIDELITIES]
