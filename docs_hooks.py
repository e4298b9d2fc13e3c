"""MkDocs hooks: pages written from the code at build time, so they cannot drift from it.

A page asks for generated text with an HTML comment on a line of its own:

- ``<!-- api: pytorch_devol.schema -->``: every name in that package's ``__all__``; a name is
  documented (by mkdocstrings) on the page of the package that defines it, and listed with a
  link on the others;
- ``<!-- cli -->``: every subcommand and flag of ``pytorch-devol``, from its argparse parser;
- ``<!-- results -->``: a table of the files in ``benchmarks/results/``, each also published as
  a page of its own.

``tests/test_docs_site.py`` uses :func:`public_api` to check that every public name has a
docstring.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import griffe

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "benchmarks" / "results"

#: The public packages, each with an ``__all__``, and the API page that documents it.
PACKAGES = {
    "pytorch_devol": "api/index.md",
    "pytorch_devol.schema": "api/schema.md",
    "pytorch_devol.evolution": "api/evolution.md",
    "pytorch_devol.training": "api/training.md",
    "pytorch_devol.search": "api/search.md",
    "pytorch_devol.search.evaluators": "api/evaluators.md",
    "pytorch_devol.search.report": "api/report.md",
    "pytorch_devol.compat": "api/compat.md",
    "pytorch_devol.cli": "api/cli.md",
}
_DIRECTIVE = re.compile(r"^<!-- (api: (?P<package>[\w.]+)|cli|results) -->$", re.M)


def home(package: str, name: str) -> str:
    """The public package whose page documents ``package.name``: the most specific package
    that exports it and contains the module defining it (the package itself for data)."""
    obj = getattr(importlib.import_module(package), name)
    module = obj.__module__ if callable(obj) else package  # data: where it is exported
    exporters = [p for p in PACKAGES if name in importlib.import_module(p).__all__
                 and (module == p or module.startswith(p + "."))]
    return max(exporters, key=len) if exporters else package


def identifier(package: str, name: str) -> str:
    """The path mkdocstrings renders ``package.name`` by: where a class or function is defined
    (a name such as ``search.retrain`` may also be a submodule's), else the package's."""
    obj = getattr(importlib.import_module(package), name)
    if isinstance(obj, type) or inspect.isfunction(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    return f"{package}.{name}"


def public_api() -> dict[str, list[tuple[str, str]]]:
    """Each public package's ``__all__`` names with their home package, in ``__all__`` order."""
    return {p: [(n, home(p, n)) for n in importlib.import_module(p).__all__] for p in PACKAGES}


def _api_markdown(package: str, page: str) -> str:
    if package not in PACKAGES:
        raise ValueError(f"{page}: <!-- api: {package} --> names no public package; "
                         f"these are: {', '.join(PACKAGES)}")
    names = [(n, home(package, n)) for n in importlib.import_module(package).__all__]
    own = [n for n, where in names if where == package]
    elsewhere = [(n, where) for n, where in names if where != package]
    parts = [f"::: {identifier(package, n)}" for n in sorted(own, key=str.lower)]
    if elsewhere:
        rows = [f"| [`{n}`][{identifier(where, n)}] | `{where}` |"
                for n, where in sorted(elsewhere, key=lambda x: x[0].lower())]
        parts.append("## Also exported here\n\n| name | documented in |\n| --- | --- |\n"
                     + "\n".join(rows))
    return "\n\n".join(parts)


_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|exc|obj):`~?\.?([^`]+)`")


def _annotation(kind: object) -> str | None:
    if kind is None or isinstance(kind, str):  # as written, under `from __future__ import
        return kind                            # annotations`
    return inspect.formatannotation(kind)


def _default(value: object) -> str | None:
    if value is attrs.NOTHING:
        return None
    if isinstance(value, attrs.Factory):  # type: ignore[arg-type]
        return f"factory({getattr(value.factory, '__name__', 'callable')})"
    return repr(value)


class ApiExtension(griffe.Extension):
    """A griffe extension for the API reference: Sphinx roles in docstrings (``:class:`X```)
    become code, and each attrs class gets the ``__init__`` attrs writes at run time (static
    analysis cannot see it), so its signature shows."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        """Sphinx roles in ``obj``'s docstring become code."""
        if obj.docstring is not None:
            obj.docstring.value = _ROLE.sub(r"`\1`", obj.docstring.value)

    def on_class_members(self, *, cls: griffe.Class, **kwargs) -> None:
        """An attrs class gets its ``__init__``: one parameter per ``init`` field, with the
        field's declared type and default (a factory shown as ``factory(name)``)."""
        if "__init__" in cls.members or cls.parent is None or not cls.parent.is_module:
            return
        try:
            runtime = getattr(importlib.import_module(cls.module.path), cls.name)
        except Exception:  # a module that cannot be imported here keeps its static view
            return
        if not (isinstance(runtime, type) and attrs.has(runtime)):
            return
        params = [griffe.Parameter("self")] + [griffe.Parameter(
            f.alias, annotation=_annotation(f.type),
            kind=griffe.ParameterKind.keyword_only if f.kw_only
            else griffe.ParameterKind.positional_or_keyword, default=_default(f.default))
            for f in attrs.fields(runtime) if f.init]
        cls.set_member("__init__", griffe.Function(
            "__init__", parent=cls, parameters=griffe.Parameters(*params), returns="None"))


def _flags(action: argparse.Action) -> str:
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    flags = ", ".join(action.option_strings)
    if action.nargs == 0:
        return f"`{flags}`"
    metavar = action.metavar or action.dest.upper()
    if action.choices and not action.metavar:
        metavar = "{" + ",".join(map(str, action.choices)) + "}"
    return f"`{flags} {metavar}`" if action.nargs != "?" else f"`{flags} [{metavar}]`"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def _cli_markdown() -> str:
    from pytorch_devol.cli import build_parser

    parser = build_parser()
    out = [parser.description or ""]
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    helps = {c.dest: c.help for c in sub._choices_actions}
    for name, command in sub.choices.items():
        out.append(f"## `pytorch-devol {name}`\n\n{_cell(helps.get(name))}\n\n"
                   f"```text\n{command.format_usage().strip()}\n```")
        for group in command._action_groups:
            actions = [a for a in group._group_actions if a.help != argparse.SUPPRESS
                       and not isinstance(a, argparse._HelpAction)]
            if not actions:
                continue
            title = group.title[0].upper() + group.title[1:]
            rows = [f"| {_flags(a)} | {_cell(a.help % vars(a) if a.help else '')} |"
                    for a in actions]
            out.append(f"### {title}\n\n| flag | what (and its default) |\n| --- | --- |\n"
                       + "\n".join(rows))
    return "\n\n".join(out)


def _results() -> list[Path]:
    return sorted(RESULTS.glob("*.md"))


def _results_markdown() -> str:
    rows = []
    for path in _results():
        text = path.read_text()
        title = next((line.lstrip("# ").strip() for line in text.splitlines()
                      if line.startswith("#")), path.stem)
        rows.append(f"| [{_cell(title)}](benchmarks/results/{path.name}) | `{path.name}` |")
    return "| result | file in `benchmarks/results/` |\n| --- | --- |\n" + "\n".join(rows)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Publish each ``benchmarks/results/*.md`` (and the plots they show) in the site, under
    the same path (so ``<!-- results -->`` links resolve from a top-level page only)."""
    from mkdocs.structure.files import File

    for path in [*_results(), *sorted(RESULTS.glob("*.png"))]:
        files.append(File.generated(config, f"benchmarks/results/{path.name}",
                                    content=path.read_bytes()))
    return files


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Replace each directive comment with the text generated for it."""

    def expand(match: re.Match) -> str:
        if match.group("package"):
            return _api_markdown(match.group("package"), page.file.src_uri)
        return _cli_markdown() if match.group(1) == "cli" else _results_markdown()

    return _DIRECTIVE.sub(expand, markdown)
