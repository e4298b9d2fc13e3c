"""Export the best model of a run: a portable state_dict, TorchScript or ONNX, each checked
against the original model on a fixed random batch.

The state_dict export carries the genome and the schema spec next to the weights, so
``load_exported_state_dict`` rebuilds the network wherever its gene types are known, without
pickle (``torch.load(weights_only=True)``).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ...schema import GenomeSchema
from ..durable import atomic_write
from ..layout import (
    EXPORT_NAMES,
    STATE_DICT_FORMAT,
    STATE_DICT_VERSION,
    RunLayout,
    state_dict_payload,
)
from ..result import SearchResult, load_result
from ..store import RunStore, load_into, load_pt

__all__ = ["EXPORT_FORMATS", "ExportCheckError", "ExportCheckSkipped", "check_batch",
           "default_name", "export_model", "load_exported_state_dict"]

EXPORT_FORMATS = tuple(EXPORT_NAMES)
CHECK_BATCH, CHECK_SEED, RTOL, ATOL = 4, 0, 1e-5, 1e-5
_ONNX_HINT = 'pip install "pytorch-devol[onnx]"'


class ExportCheckError(RuntimeError):
    """The exported model's outputs differ from the original model's."""


class ExportCheckSkipped(UserWarning):
    """The numeric check could not run (e.g. onnxruntime missing); only a structural one did."""


def _require(*modules: str, what: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"{what} needs {' and '.join(missing)}: {_ONNX_HINT}")


def _retrained(result: SearchResult, candidate: int | None, seed: int,
               gene_modules: Iterable[str] | None) -> tuple[nn.Sequential, np.ndarray]:
    if candidate is None:
        if result.best_record is None:
            raise ValueError(f"{result.run_dir}: no candidate trained successfully")
        candidate = result.best_record["index"]
    path = RunLayout(result.run_dir).retrained_weights(candidate, seed)
    if not path.exists():
        raise ValueError(f"{result.run_dir}: candidate {candidate} has no retrained weights of "
                         f"seed {seed} ({path} is missing): run pytorch-devol retrain "
                         f"{result.run_dir} --candidate {candidate} --seeds {seed + 1} first")
    model, genome = load_exported_state_dict(path, gene_modules)
    record = next((r for r in result.history if r["index"] == candidate), None)
    if record is not None and result.schema.key(genome) != tuple(record["key"]):
        raise ValueError(f"{path} holds another genome's weights than candidate {candidate}'s "
                         "(the file was replaced): retrain it again (--overwrite)")
    return model, genome


def _chosen(run_dir: str | os.PathLike[str], gene_modules: Iterable[str] | None,
            candidate: int | None, retrained: int | None = None
            ) -> tuple[SearchResult, nn.Sequential, np.ndarray]:
    """The run's best model and genome (or candidate ``candidate``'s: the best or a member of
    the Pareto front; or the weights ``retrain`` gave it with seed ``retrained``), refusing a
    run with none or inconsistent best files."""
    result = load_result(run_dir, gene_modules)
    if not result.history:
        raise ValueError(f"{run_dir}: no candidate has been evaluated yet, nothing to export")
    if retrained is not None:
        return (result, *_retrained(result, candidate, retrained, gene_modules))
    if candidate is not None:
        model = result.model(candidate)
        record = next(r for r in result.history if r["index"] == candidate)
        return result, model.cpu().eval(), np.asarray(record["genome"], dtype=np.int64)
    genome = result.best_genome
    if genome is None:
        raise ValueError(f"{run_dir}: no candidate trained successfully, nothing to export")
    info = RunStore(run_dir).best_info()
    if info is not None and [int(v) for v in info["genome"]] != genome.tolist():
        raise ValueError(
            f"{run_dir}: best_genome.json names candidate {info.get('index')} but the log's "
            f"best is candidate {result.best_record['index']}; the run was interrupted while "
            "saving its best model: resume it (Search.resume / --resume) before exporting")
    model = result.best_model
    assert model is not None  # a best genome implies a best model
    return result, model.cpu().eval(), genome


def default_name(format: str, candidate: int | None = None,
                 retrained: int | None = None) -> str:
    """The file an export writes by default: one name per format, candidate and seed, so
    exports of different weights never overwrite each other."""
    base = EXPORT_NAMES[format]
    if candidate is None and retrained is None:
        return base
    stem = "model" + ("" if candidate is None else f"-candidate{candidate}") + \
        ("" if retrained is None else f"-retrained{retrained}")
    return stem + base[len("model"):]


def check_batch(input_shape: tuple[int, ...], batch: int = CHECK_BATCH) -> torch.Tensor:
    """The fixed random batch the exports are checked on (same seed every time)."""
    g = torch.Generator().manual_seed(CHECK_SEED)
    return torch.randn((batch, *input_shape), generator=g)


def _compare(got: Any, want: torch.Tensor, what: str) -> None:
    got = torch.as_tensor(np.asarray(got)) if not isinstance(got, torch.Tensor) else got
    got = got.detach().to(want.dtype)
    if got.shape != want.shape:
        raise ExportCheckError(f"{what}: output shape {tuple(got.shape)} differs from the "
                               f"original model's {tuple(want.shape)}")
    if not torch.allclose(got, want, rtol=RTOL, atol=ATOL):
        diff = (got - want).abs().max().item()
        raise ExportCheckError(f"{what}: outputs differ from the original model's on the check "
                               f"batch (max abs difference {diff:.3g}, tolerance rtol={RTOL}, "
                               f"atol={ATOL})")


# -- state_dict -----------------------------------------------------------------------------------
def _fitness_of(result: SearchResult, genome: np.ndarray) -> float | None:
    record = next((r for r in result.history
                   if r["genome"] == genome.tolist() and not r["cached"]), None)
    return None if record is None else record["fitness"]


def _export_state_dict(result: SearchResult, model: nn.Module, genome: np.ndarray,
                       path: Path) -> None:
    buf = io.BytesIO()
    torch.save(state_dict_payload(result.schema, model.state_dict(), genome, result.metric,
                                  _fitness_of(result, genome)), buf)
    atomic_write(path, buf.getvalue())


def load_exported_state_dict(path: str | os.PathLike[str],
                             gene_modules: Iterable[str] | None = None
                             ) -> tuple[nn.Sequential, np.ndarray]:
    """Rebuild ``(model, genome)`` from a ``state_dict`` export, without pickle.

    The model comes back on the CPU in eval mode. The file is data: its gene types must be
    built in or already defined; ``gene_modules`` names modules you trust to define the others.
    """
    path = Path(path)
    payload = load_pt(path)
    if not isinstance(payload, dict) or payload.get("format") != STATE_DICT_FORMAT:
        raise ValueError(f"{path} is not a pytorch-devol state_dict export (a bare state_dict "
                         "such as best.pt has no genome: use export_model(run_dir, "
                         "format='state_dict'))")
    if payload.get("version") != STATE_DICT_VERSION:
        raise ValueError(f"{path}: unsupported export version {payload.get('version')!r}")
    schema = GenomeSchema.from_spec(payload["schema"], gene_modules)
    genome = np.asarray(payload["genome"], dtype=np.int64)
    return load_into(schema.build_model(genome), payload["state_dict"], path).eval(), genome


def _check_state_dict(path: Path, x: torch.Tensor, want: torch.Tensor) -> None:
    model, _ = load_exported_state_dict(path)  # its gene types are known by now
    with torch.no_grad():
        _compare(model(x), want, f"state_dict export {path}")


# -- TorchScript ----------------------------------------------------------------------------------
def _export_torchscript(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    with warnings.catch_warnings():
        # torch.jit is deprecated in recent torch but TorchScript files remain the format many
        # deployment stacks load; the warning says nothing actionable to our users
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            scripted = torch.jit.script(model)   # keeps control flow; works for built-in genes
        except Exception:  # noqa: BLE001 - user genes may not be scriptable: trace instead
            with torch.no_grad():
                scripted = torch.jit.trace(model, x)
        buf = io.BytesIO()
        torch.jit.save(scripted, buf)
    atomic_write(path, buf.getvalue())


def _check_torchscript(path: Path, x: torch.Tensor, want: torch.Tensor) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        _compare(loaded(x), want, f"TorchScript export {path}")


# -- ONNX -----------------------------------------------------------------------------------------
def _export_onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    _require("onnx", "onnxscript", what="ONNX export")
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)  # silence "torchvision is not installed. Skipping ..." notes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(model, (x,), str(path), input_names=["input"],
                              output_names=["output"],
                              dynamic_shapes=({0: torch.export.Dim("batch")},), verbose=False)
    finally:
        logger.setLevel(level)


def _check_onnx(path: Path, x: torch.Tensor, want: torch.Tensor) -> None:
    import onnx

    onnx.checker.check_model(str(path))  # by path: follows the external .data file
    if importlib.util.find_spec("onnxruntime") is None:
        warnings.warn(f"onnxruntime is not installed: {path} passed onnx.checker but its outputs "
                      f"were not compared with the original model's ({_ONNX_HINT})",
                      ExportCheckSkipped, stacklevel=3)
        return
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    _compare(session.run(None, {name: x.numpy()})[0], want, f"ONNX export {path}")


_CHECKERS: dict[str, Callable[[Path, torch.Tensor, torch.Tensor], None]] = {
    "state_dict": _check_state_dict, "torchscript": _check_torchscript, "onnx": _check_onnx,
}


def export_model(run_dir: str | os.PathLike[str], format: str = "state_dict",
                 out: str | os.PathLike[str] | None = None, check: bool = True,
                 gene_modules: Iterable[str] | None = None,
                 candidate: int | None = None, retrained: int | None = None) -> Path:
    """Export the run's best model and return the file written.

    ``format``: "state_dict" (weights + genome + schema spec, reload with
    ``load_exported_state_dict``), "torchscript" or "onnx" (may also write ``<out>.data``).
    Default file: ``layout.EXPORT_NAMES[format]`` in the run directory, named for the candidate and
    seed too when they are given (``model-candidate3-retrained0_state_dict.pt``). With
    ``check`` the exported file is loaded back and its outputs compared with the original
    model's on a fixed random batch; a mismatch raises ``ExportCheckError``.
    ``gene_modules``: see ``load_result``.
    ``candidate``: export that candidate instead of the best (any Pareto-front member of a
    multi-objective search; see ``pareto.json``). ``retrained``: export the weights that
    ``retrain`` gave the candidate (default: the best) with this seed.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of "
                         f"{', '.join(EXPORT_FORMATS)}")
    if format == "onnx":
        _require("onnx", "onnxscript", what="ONNX export")
    result, model, genome = _chosen(run_dir, gene_modules, candidate, retrained)
    if retrained is not None and candidate is None:  # the file names whose weights they are
        candidate = result.best_record["index"]
    path = Path(out) if out is not None else Path(run_dir) / default_name(format, candidate,
                                                                          retrained)
    path.parent.mkdir(parents=True, exist_ok=True)
    x = check_batch(result.schema.input_shape)
    with torch.no_grad():
        want = model(x)
    example = x[:2]  # exported on 2 rows, checked on more: the batch size must stay free
    if format == "state_dict":
        _export_state_dict(result, model, genome, path)
    elif format == "torchscript":
        _export_torchscript(model, example, path)
    else:
        _export_onnx(model, example, path)
    if check:
        _CHECKERS[format](path, x, want)
    return path
