"""One candidate's record: a line of ``results.jsonl``, and what the loop and reports read.

The loop writes every field of `Record` for every candidate (one record per rung reached with a
fidelity scheduler). `as_record` gives a record read back from disk the defaults of the fields
it lacks, in this one place, so readers index fields directly.
"""

from __future__ import annotations

from typing import Any, TypedDict

__all__ = ["Record", "as_record"]


class _MultiObjective(TypedDict, total=False):
    objectives: dict[str, float | None]  # a multi-objective search only
    violation: float | None  # with constraints: 0 = feasible


class Record(_MultiObjective):
    """A candidate's result at one rung (the only rung without a fidelity scheduler)."""

    index: int  # position in the run: the order candidates were asked
    generation: int
    genome: list[int]
    key: list[int]  # the canonical genome: equal keys are the same network
    csv_genome: list[Any]  # DEvol's flat genome, for results.csv
    seed: int  # the training seed
    cached: bool  # a copy of an earlier result for the same key (not trained again)
    source_index: int  # the record it was copied from (its own index when trained)
    fitness: float | None  # the search's metric on validation data; None: failed
    metrics: dict[str, Any]  # `EvalResult.to_dict()`: status, losses, accuracies, epochs, ...
    rung: int  # the fidelity scheduler's rung (0 without one)
    rung_epochs: int  # epochs trained for this record (a promotion continues, so only new ones)
    rung_seconds: float
    final: bool  # trained at the full budget: only final records can be the best
    finished_at: float  # time.time() when it was logged
    parent: int | None  # heredity: the donor its weights started from (None: random)
    parent_run: str | None  # a warm start: the earlier run holding ``parent`` (None: this one)
    inherited_params: int  # parameters copied from the donor
    lineage_epochs: int  # epochs its starting weights had seen, through all its ancestors


def as_record(raw: dict[str, Any]) -> Record:
    """``raw`` (a line read back from a run directory) with every defaulted field present."""
    metrics = raw.get("metrics") or {}
    defaults: dict[str, Any] = {
        "rung": 0, "rung_epochs": metrics.get("epochs", 0),
        "rung_seconds": metrics.get("train_seconds") or 0.0, "final": True, "cached": False,
        "source_index": raw.get("index"), "finished_at": 0.0,
        "parent": None, "parent_run": None, "inherited_params": 0, "lineage_epochs": 0}
    return {**defaults, **raw}  # type: ignore[typeddict-item]
