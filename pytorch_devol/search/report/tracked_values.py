"""What the trackers (``trackers.py``) log: a record's, a generation's and the best
candidate's finite numbers, the genome as TensorBoard hparams, and the settings as text.
Pure functions of the search's data, shared by TensorBoard and MLflow."""

from __future__ import annotations

import json
import math
from typing import Any

from ..callbacks import GenerationSummary

__all__ = ["CANDIDATE_METRICS", "best_values", "candidate_values", "generation_values",
           "genome_hparams", "settings_text"]

# Metrics of a record's ``metrics`` dict logged per candidate (when present and finite).
CANDIDATE_METRICS = ("val_accuracy", "val_loss", "val_mae", "test_accuracy", "test_loss",
                     "test_mae", "params", "epochs", "train_seconds")
HParam = bool | float | str


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _finite(values: dict[str, Any]) -> dict[str, float]:
    out = {k: _number(v) for k, v in values.items()}
    return {k: v for k, v in out.items() if v is not None}


def candidate_values(record: dict[str, Any]) -> dict[str, float]:
    """A record's per-candidate scalars, ``candidate/<name>``; empty unless it is a fresh,
    final, successful training (cached copies and lower rungs would repeat or mislead)."""
    metrics = record["metrics"]
    if record.get("cached") or not record.get("final", True) or metrics["status"] != "ok":
        return {}
    values = {"fitness": record["fitness"], **{k: metrics.get(k) for k in CANDIDATE_METRICS}}
    values.update({f"objective/{k}": v for k, v in (record.get("objectives") or {}).items()})
    return {f"candidate/{k}": v for k, v in _finite(values).items()}


def generation_values(summary: GenerationSummary) -> dict[str, float]:
    """A generation's scalars, ``generation/<name>`` (NaN ones, when nothing trained, left
    out)."""
    best = summary.best_so_far
    return {f"generation/{k}": v for k, v in _finite({
        "best_fitness": summary.best_fitness, "mean_fitness": summary.mean_fitness,
        "std_fitness": summary.std_fitness,
        "best_so_far": None if best is None else best["fitness"],
        "candidates": summary.candidates, "cached": summary.cached, "failed": summary.failed,
        "infeasible": summary.infeasible}).items()}


def best_values(result: Any) -> dict[str, float]:
    """The best candidate's fitness and finite metrics, by bare name (empty if none
    trained)."""
    record = result.best_record
    if record is None:
        return {}
    metrics = record["metrics"]
    return _finite({"fitness": record["fitness"], **{k: metrics.get(k)
                                                     for k in CANDIDATE_METRICS}})


def _field_kind(choices: tuple[Any, ...]) -> type:
    """One type per genome field, so every value (and the HParams domain) agrees."""
    if all(isinstance(c, bool) for c in choices):
        return bool
    if all(_number(c) is not None for c in choices):
        return float
    return str


def _as_kind(value: Any, kind: type) -> HParam:
    if hasattr(value, "item"):  # a numpy scalar
        value = value.item()
    return kind(value) if kind is not str else (value if isinstance(value, str) else repr(value))


def genome_hparams(schema: Any, genome: Any) -> tuple[dict[str, HParam], dict[str, list]]:
    """The decoded genome as ``{"<slot>.<field>": value}`` (an inactive slot: only its
    ``active`` flag), with each field's possible values: TensorBoard's hparams."""
    arr = schema.validate(genome)
    values: dict[str, HParam] = {}
    domains: dict[str, list] = {}
    for slot, gene in zip(schema.slots, schema.decode(arr)):
        active = schema.is_active(slot, arr)
        for field, choices in zip(slot.fields, slot.choices):
            if not active and field != "active":
                continue
            kind = _field_kind(choices)
            name = f"{slot.name}.{field}"
            values[name] = _as_kind(getattr(gene, field), kind)
            domains[name] = list(dict.fromkeys(_as_kind(c, kind) for c in choices))
    return values, domains


def settings_text(config: dict[str, Any]) -> str:
    """The search's settings as a Markdown code block (TensorBoard's text plugin)."""
    shown = {"search": config.get("search"), "train": config.get("train"),
             "data": (config.get("data") or {}).get("summary")}
    body = json.dumps(shown, indent=2, default=str)
    return "\n".join("    " + line for line in body.splitlines())
