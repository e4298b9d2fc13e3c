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


@pytest.mark.parametrize("name", ["GenomeSchema", "InvalidGenomeError"])
def test_public_names_resolve_without_optional_dependencies(name):
    baseline = _modules_after("import torch")  # torch itself may import some (tqdm)
    loaded = _modules_after(f"import pytorch_devol; pytorch_devol.{name}")
    assert not [m for m in OPTIONAL if m in loaded - baseline]


def test_unknown_attribute_is_an_attribute_error():
    import pytorch_devol

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        pytorch_devol.Nope  # noqa: B018
