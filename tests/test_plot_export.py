"""The progress plot and the model exports, on small real runs over the digits dataset."""

from __future__ import annotations

import importlib.util
import json
import shutil
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_devol import GenomeSchema, Search, load_dataset
from pytorch_devol.search import load_result
from pytorch_devol.search.report import export as export_mod
from pytorch_devol.search.report.export import (
    EXPORT_FORMATS,
    ExportCheckError,
    ExportCheckSkipped,
    export_model,
    load_exported_state_dict,
)
from pytorch_devol.search.report.plot import plot_run, progress_series

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HAVE_ONNX = all(importlib.util.find_spec(m) is not None
                for m in ("onnx", "onnxscript", "onnxruntime"))
needs_mpl = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                               reason="the plot needs matplotlib (the [plot] extra)")
needs_onnx = pytest.mark.skipif(not HAVE_ONNX, reason="onnx, onnxscript and onnxruntime are "
                                "needed for the ONNX export (the [onnx] extra)")


def _schema() -> GenomeSchema:
    return GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


@pytest.fixture(scope="module")
def data():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data) -> Path:
    path = tmp_path_factory.mktemp("runs") / "run"
    Search(_schema(), data, generations=2, population_size=4, epochs=1, run_dir=path,
           verbose=False).run()
    return path


@pytest.fixture(scope="module")
def loss_run_dir(tmp_path_factory, data) -> Path:
    path = tmp_path_factory.mktemp("runs") / "loss"
    Search(_schema(), data, generations=2, population_size=3, epochs=1, run_dir=path,
           metric="loss", verbose=False).run()
    return path


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(run_dir, dest)
    return dest


def _rewrite_records(run_dir: Path, change) -> None:
    path = run_dir / "results.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = change(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _fail(record: dict) -> dict:
    record["fitness"] = None
    record["metrics"] = {**record["metrics"], "status": "failed", "reason": "injected",
                         "val_accuracy": None, "val_loss": None}
    return record


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- plot ------------------------------------------------------------------------------------
@needs_mpl
def test_plot_writes_png_in_run_dir(run_dir):
    path = plot_run(run_dir)
    assert path == run_dir / "progress.png"
    width, height = _png_size(path)
    assert width > 500 and height > 500
    assert path.stat().st_size > 10_000


@needs_mpl
def test_plot_custom_out_creates_parent(run_dir, tmp_path):
    out = tmp_path / "figs" / "p.png"
    assert plot_run(run_dir, out=out) == out
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_running_best_is_running_max_for_accuracy(run_dir):
    s = progress_series(load_result(run_dir))
    assert s["index"] == sorted(s["index"]) and len(s["index"]) == 8
    scores = [v for v in s["score"] if v is not None]
    assert s["running_best"][-1] == max(scores)
    best = s["running_best"]
    assert all(b >= a for a, b in zip(best, best[1:]))
    assert sorted(s["generations"]) == [0, 1]


@needs_mpl
def test_plot_loss_run_uses_running_min(loss_run_dir):
    result = load_result(loss_run_dir)
    assert result.metric == "loss" and not result.maximize
    s = progress_series(result)
    scores = [v for v in s["score"] if v is not None]
    assert s["running_best"][-1] == min(scores)
    best = s["running_best"]
    assert all(b <= a for a, b in zip(best, best[1:]))
    assert _png_size(plot_run(loss_run_dir))[0] > 500


@needs_mpl
def test_plot_with_failed_candidates(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    _rewrite_records(run, lambda rs: [_fail(r) if r["index"] in (0, 3) else r for r in rs])
    s = progress_series(load_result(run))
    assert s["failed"][0] and s["failed"][3] and not s["failed"][1]
    assert s["score"][0] is None and s["running_best"][0] is None
    assert s["running_best"][1] == s["score"][1]
    assert all(v is not None for v in s["generations"][0])  # failed ones left out of the spread
    assert len(s["generations"][0]) == 2
    assert _png_size(plot_run(run))[0] > 500


@needs_mpl
def test_plot_all_failed(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    _rewrite_records(run, lambda rs: [_fail(r) for r in rs])
    s = progress_series(load_result(run))
    assert all(s["failed"]) and all(b is None for b in s["running_best"])
    assert plot_run(run).stat().st_size > 5_000


@needs_mpl
def test_plot_empty_run_is_a_clear_error(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    (run / "results.jsonl").write_text("")  # a new run: nothing asked, nothing logged yet
    (run / "checkpoint.json").unlink()
    (run / "progress.png").unlink(missing_ok=True)  # another test may have drawn one
    with pytest.raises(ValueError, match="no candidate has been evaluated"):
        plot_run(run)
    assert not (run / "progress.png").exists()


def test_plot_without_matplotlib_names_the_extra(run_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r'pytorch-devol\[plot\]'):
        plot_run(run_dir)


# -- export ----------------------------------------------------------------------------------
def _reference(run_dir: Path, batch: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    result = load_result(run_dir)
    x = torch.randn((batch, *result.schema.input_shape), generator=torch.Generator()
                    .manual_seed(123))
    with torch.no_grad():
        return x, result.best_model(x)


def test_export_state_dict_round_trip(run_dir):
    path = export_model(run_dir, "state_dict")
    assert path == run_dir / "model_state_dict.pt"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    result = load_result(run_dir)
    assert payload["genome"] == result.best_genome.tolist()
    assert GenomeSchema.from_spec(payload["schema"]) == result.schema
    model, genome = load_exported_state_dict(path)
    np.testing.assert_array_equal(genome, result.best_genome)
    assert not model.training
    x, want = _reference(run_dir)
    with torch.no_grad():
        torch.testing.assert_close(model(x), want, rtol=0, atol=0)


def test_state_dict_export_reloads_outside_the_run_dir(run_dir, tmp_path):
    out = tmp_path / "elsewhere" / "m.pt"
    assert export_model(run_dir, "state_dict", out=out) == out
    moved = tmp_path / "moved.pt"
    out.rename(moved)
    model, _ = load_exported_state_dict(moved)
    x, want = _reference(run_dir)
    with torch.no_grad():
        torch.testing.assert_close(model(x), want, rtol=0, atol=0)


def test_load_exported_rejects_a_bare_state_dict(run_dir):
    with pytest.raises(ValueError, match="not a pytorch-devol state_dict export"):
        load_exported_state_dict(run_dir / "best.pt")


def test_export_torchscript_round_trip(run_dir):
    path = export_model(run_dir, "torchscript")
    assert path == run_dir / "model.torchscript.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path))
    x, want = _reference(run_dir, batch=7)  # another batch size than the export's
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), want, rtol=1e-5, atol=1e-6)


@needs_onnx
def test_export_onnx_round_trip(run_dir):
    import onnxruntime as ort

    path = export_model(run_dir, "onnx")
    assert path == run_dir / "model.onnx" and path.stat().st_size > 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x, want = _reference(run_dir, batch=7)
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)


@needs_onnx
def test_export_onnx_without_onnxruntime_warns_check_skipped(run_dir, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(export_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    with pytest.warns(ExportCheckSkipped, match="outputs were not compared"):
        path = export_model(run_dir, "onnx", out=tmp_path / "m.onnx")
    assert path.exists()


def test_export_onnx_without_onnxscript_names_the_extra(run_dir, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(export_mod.importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxscript" else real(name, *a))
    with pytest.raises(ImportError, match=r'onnxscript.*pytorch-devol\[onnx\]'):
        export_model(run_dir, "onnx", out=tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_check_detects_a_mismatch(run_dir, tmp_path, monkeypatch):
    real = export_mod.load_exported_state_dict

    def corrupted(path):
        model, genome = real(path)
        with torch.no_grad():
            model[-1].bias.add_(0.5)
        return model, genome

    monkeypatch.setattr(export_mod, "load_exported_state_dict", corrupted)
    with pytest.raises(ExportCheckError, match="outputs differ"):
        export_model(run_dir, "state_dict", out=tmp_path / "m.pt")
    # without the check the same export goes through
    assert export_model(run_dir, "state_dict", out=tmp_path / "m.pt", check=False).exists()


def test_export_unknown_format_lists_formats(run_dir):
    with pytest.raises(ValueError, match="state_dict, torchscript, onnx") as err:
        export_model(run_dir, "pickle")
    assert "'pickle'" in str(err.value)
    assert EXPORT_FORMATS == ("state_dict", "torchscript", "onnx")


@pytest.mark.parametrize("fmt", ["state_dict", "torchscript"])
def test_export_empty_run_is_a_clear_error(run_dir, tmp_path, fmt):
    run = _copy(run_dir, tmp_path)
    (run / "results.jsonl").write_text("")  # a new run: nothing asked, nothing logged yet
    (run / "checkpoint.json").unlink()
    with pytest.raises(ValueError, match="no candidate has been evaluated"):
        export_model(run, fmt)


def test_export_run_without_success_is_a_clear_error(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    _rewrite_records(run, lambda rs: [_fail(r) for r in rs])
    with pytest.raises(ValueError, match="no candidate trained successfully"):
        export_model(run, "state_dict")


def test_export_refuses_inconsistent_best_files(run_dir, tmp_path):
    run = _copy(run_dir, tmp_path)
    info = json.loads((run / "best_genome.json").read_text())
    other = next(r for r in load_result(run).history if r["genome"] != info["genome"])
    info.update(index=other["index"], genome=other["genome"])
    (run / "best_genome.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="resume it"):
        export_model(run, "state_dict")
