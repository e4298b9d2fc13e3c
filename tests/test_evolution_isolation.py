"""The evolution layer depends on numpy, attrs, the standard library and the package's private
leaf module ``pytorch_devol._checks`` only (never torch); ``moocore`` is an optional extra."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytorch_devol.evolution as evolution

PACKAGE = Path(evolution.__file__).parent
ALLOWED_TOP_LEVEL = {"__future__", "attrs", "bisect", "collections", "dataclasses", "inspect",
                     "math", "numbers", "numpy", "typing", "warnings",
                     "moocore"}  # optional: imported lazily, inside try/except ImportError


def test_import_in_a_fresh_interpreter_loads_no_torch_and_nothing_else_of_ours():
    code = (
        "import sys, json; import pytorch_devol.evolution as e; "
        "e.GeneticAlgorithm([3, 3], 4, seed=0).ask(); "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('torch', 'pytorch_devol'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PACKAGE.parent.parent)
    loaded = eval(out.stdout)  # a JSON list of strings
    assert "torch" not in loaded
    assert not [m for m in loaded if m.startswith("torch")]
    ours = [m for m in loaded
            if m not in ("pytorch_devol", "pytorch_devol.evolution", "pytorch_devol._checks")]
    assert ours and all(m.startswith("pytorch_devol.evolution.") for m in ours), loaded


def test_sources_import_only_numpy_stdlib_the_package_itself_and_checks():
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 5
    for path in [*files, PACKAGE.parent / "_checks.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: inside pytorch_devol.evolution, or the leaf _checks
                    assert node.level == 1 or (node.level == 2 and node.module == "_checks"), \
                        f"{path.name} reaches outside the package"
                    continue
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in ALLOWED_TOP_LEVEL, f"{path.name} imports {name}"


def test_every_module_declares_all():
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        names = {t.id for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        assert "__all__" in names, path.name
    for name in evolution.__all__:
        assert hasattr(evolution, name), name
