"""README's Python examples run as written (so the front door stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_the_examples():
    # the fifth, a fidelity scheduler of your own, runs in test_fidelity_protocol.py
    assert len(BLOCKS) == 5 and "class BetterHalf" in BLOCKS[4]


@pytest.mark.slow
def test_readme_search_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_search"}
    exec(compile(BLOCKS[0], "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "readme" / "best.pt").exists()
    assert len(namespace["resumed"].history) == 8
    assert namespace["model"] is not None
    assert 0.0 < namespace["result"].best_metrics["val_accuracy"] <= 1.0


def test_readme_search_spaces_example_runs(capsys):
    namespace = {"__name__": "readme_spaces"}
    exec(compile(BLOCKS[1], "README.md", "exec"), namespace)
    assert capsys.readouterr().out.startswith(
        "['optimizer.optimizer', 'lr.lr_scale', 'batch.batch_size', 'schedule.schedule']")
    assert len(namespace["modern"].training) == 6


def test_readme_custom_gene_example_runs(capsys):
    namespace = {"__name__": "readme_gene"}
    exec(compile(BLOCKS[2], "README.md", "exec"), namespace)
    schema, model = namespace["schema"], namespace["model"]
    printed = capsys.readouterr().out
    assert printed.startswith(f"{len(schema)} ['conv2d0.active', 'conv2d0.filters'")
    import torch

    assert model(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    residual = namespace["ResidualGene"](active=True, kernel=5, activation="gelu")
    modules, shape = residual.build((4, 6, 6))
    assert shape == (4, 6, 6) and modules[0](torch.rand(1, 4, 6, 6)).shape == (1, 4, 6, 6)


@pytest.mark.slow
def test_readme_fidelity_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_fidelity"}
    exec(compile(BLOCKS[3], "README.md", "exec"), namespace)
    rung, spent = map(int, capsys.readouterr().out.split())
    assert rung == 2 and spent < 2 * 9 * 9 / 2
    assert namespace["asha"].best_record["final"]
