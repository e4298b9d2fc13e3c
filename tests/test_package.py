"""Packaging promises: light imports, layer boundaries, the public names."""

from __future__ import annotations

import subprocess
import sys

import pytest

OPTIONAL = ["torchvision", "ray", "matplotlib", "tqdm", "sklearn", "onnx", "onnxruntime"]


def _modules_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_pulls_no_optional_dependency():
    loaded = _modules_after("import pytorch_devol")
    assert not [m for m in OPTIONAL if m in loaded]
    assert "torch" not in loaded  # public names load lazily


def test_public_names_resolve_without_optional_dependencies():
    # One interpreter: the modules torch itself loads (it may import some, e.g. tqdm), then
    # what resolving each public name adds to them.
    code = ("import sys, torch; base = set(sys.modules); import pytorch_devol\n"
            "for name in ('InvalidGenomeError', 'GenomeSchema'):\n"
            "    getattr(pytorch_devol, name)\n"
            "    print(name, *sorted(set(sys.modules) - base))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert [line.split()[0] for line in out] == ["InvalidGenomeError", "GenomeSchema"]
    added = {line.split()[0]: set(line.split()[1:]) for line in out}
    assert "pytorch_devol.schema" in added["GenomeSchema"]  # the name really was resolved
    for name, modules in added.items():
        assert not [m for m in OPTIONAL if m in modules], name


def test_unknown_attribute_is_an_attribute_error():
    import pytorch_devol

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        pytorch_devol.Nope  # noqa: B018
