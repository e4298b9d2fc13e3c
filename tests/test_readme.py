"""README's Python examples run as written (so the front door stays true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def block(marker: str) -> str:
    """The one Python example of README.md that contains ``marker``."""
    (found,) = [b for b in BLOCKS if marker in b]
    return found


def test_readme_has_the_examples():
    # a fidelity scheduler of your own runs in test_fidelity_protocol.py
    assert len(BLOCKS) == 7 and "class BetterHalf" in block("class BetterHalf")


@pytest.mark.slow
def test_readme_search_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme_search"}
    exec(compile(block("run_dir=\"runs/readme\""), "README.md", "exec"), namespace)
    assert (tmp_path / "runs" / "readme" / "best.pt").exists()
    assert sorted({r["index"] for r in namespace["resumed"].history}) == list(range(8))
    assert namespace["model"] is not None
    assert 0.0 < namespace["result"].best_metrics["val_accuracy"] <= 1.0


def test_readme_search_spaces_example_runs(capsys):
    namespace = {"__name__": "readme_spaces"}
    exec(compile(block("GenomeSchema.modern("), "README.md", "exec"), namespace)
    assert capsys.readouterr().out.startswith(
        "['optimizer.optimizer', 'lr.lr_scale', 'batch.batch_size', 'schedule.schedule']")
    assert len(namespace["modern"].training) == 6


def test_readme_custom_gene_example_runs(capsys):
    namespace = {"__name__": "readme_gene"}
    exec(compile(block("class ResidualGene"), "README.md", "exec"), namespace)
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
    exec(compile(block("asha ="), "README.md", "exec"), namespace)
    rung, spent = map(int, capsys.readouterr().out.split())
    assert rung == 2 and spent < 2 * 9 * 9 / 2
    assert namespace["asha"].best_record["final"]


@pytest.mark.slow
def test_readme_callbacks_example_runs(tmp_path, monkeypatch, capsys, digits):
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    import functools

    from pytorch_devol import GenomeSchema, Search

    monkeypatch.chdir(tmp_path)
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=1, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    tiny = functools.partial(Search, generations=2, population_size=3, epochs=1,
                             verbose=False, run_dir=tmp_path / "run")
    namespace = {"schema": schema, "data": digits}
    source = block("class Notify").replace("Search(schema", "tiny(schema")
    exec(compile(source, "README.md", "exec"), {**namespace, "tiny": tiny})
    printed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [int(g) for g, _ in printed] == [0, 1]
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert (tmp_path / "mlflow.db").exists()


@pytest.mark.slow
def test_readme_warm_start_example_runs(tmp_path, monkeypatch, capsys, digits):
    import functools

    from pytorch_devol import GenomeSchema, Search

    monkeypatch.chdir(tmp_path)
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    tiny = functools.partial(Search, generations=2, population_size=3, epochs=1,
                             verbose=False)
    source = block("warm_start=").replace("Search(schema", "tiny(schema")
    exec(compile(source, "README.md", "exec"), {"schema": schema, "data": digits, "tiny": tiny})
    parent, run, index = capsys.readouterr().out.split()
    assert run == str((tmp_path / "runs" / "old").resolve()) and parent == index
    assert any((tmp_path / "runs" / "old" / "donors").glob("*.pt"))  # the final pool stays
    assert not (tmp_path / "runs" / "new" / "warm").exists()  # the copies go at the end
