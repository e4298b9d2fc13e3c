"""The documentation site: every public name has a docstring and a place in the API reference,
the CLI reference is the parser's, and ``mkdocs build --strict`` passes."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import re
import subprocess
import sys

import pytest

import pytorch_devol
from pytorch_devol.cli import build_parser
from tests.docs_examples import ROOT

griffe = pytest.importorskip("griffe", reason="the docs extra is not installed "
                             "(pip install -e '.[docs]')")
import docs_hooks  # noqa: E402  (it needs griffe)


def test_every_public_package_has_an_api_page():
    packages = {"pytorch_devol"} | {
        m.name for m in pkgutil.walk_packages(pytorch_devol.__path__, "pytorch_devol.")
        if m.ispkg and not any(part.startswith("_") for part in m.name.split("."))}
    assert packages == set(docs_hooks.PACKAGES)
    for package, page in docs_hooks.PACKAGES.items():
        assert f"<!-- api: {package} -->" in (ROOT / "docs" / page).read_text()


def test_every_public_name_has_a_docstring():
    loader = griffe.GriffeLoader(search_paths=[str(ROOT)])
    loader.load("pytorch_devol")
    loader.resolve_aliases(implicit=False, external=False)
    missing = []
    for package, names in docs_hooks.public_api().items():
        for name, home in names:
            if home != package:  # documented on its home package's page
                continue
            obj = loader.modules_collection[f"{package}.{name}"]
            obj = obj.final_target if obj.is_alias else obj
            if not (obj.docstring and obj.docstring.value.strip()):
                missing.append(f"{package}.{name}")
    assert missing == [], f"public names without a docstring: {missing}"


def test_each_name_has_one_home_that_exports_it():
    for package, names in docs_hooks.public_api().items():
        module = importlib.import_module(package)
        for name, home in names:
            assert name in importlib.import_module(home).__all__
            assert getattr(importlib.import_module(home), name) is getattr(module, name)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "-d", str(out)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    # not -q: a quiet build does not count its warnings, so --strict would pass them
    assert done.returncode == 0, done.stderr[-4000:]
    return out


@pytest.mark.slow
def test_the_site_builds_strict_with_every_public_name(site):
    for package, names in docs_hooks.public_api().items():
        page = docs_hooks.PACKAGES[package].removesuffix(".md").removesuffix("index")
        html = (site / page / "index.html").read_text()
        assert not re.search(r":(class|func|meth|mod|attr):", html)  # Sphinx roles became code
        for name, home in names:
            path = docs_hooks.identifier(home, name)
            anchor = f'id="{path}"' if home == package else f'#{path}"'
            assert anchor in html, f"{package}.{name} is not on {page}"


@pytest.mark.slow
def test_the_cli_reference_is_the_parser(site):
    html = (site / "guide" / "cli" / "index.html").read_text()
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    flags = {f for command in sub.choices.values() for a in command._actions
             for f in a.option_strings if f not in ("-h", "--help")}
    assert len(flags) > 40
    for name in sub.choices:
        assert f"pytorch-devol {name}" in html
    missing = [f for f in flags if not re.search(rf"<code>{re.escape(f)}[ ,<]", html)]
    assert missing == []


@pytest.mark.slow
def test_benchmark_results_are_published(site):
    for path in docs_hooks.RESULTS.glob("*.md"):
        assert (site / "benchmarks" / "results" / path.stem / "index.html").exists()
