"""Callbacks: what a running search tells your code (and TensorBoard, MLflow) as it goes.

A callback is any object with some of these methods; the search calls those it has:

- ``on_start(run)``: a `RunInfo` (run directory, saved settings, whether it resumes);
- ``on_record(record)``: each candidate's record right after it is logged (a dict, as in
  ``results.jsonl``; cached copies and every rung of a multi-fidelity run included);
- ``on_generation(summary)``: a `GenerationSummary` after each generation (steady-state
  strategies: after each ``population_size`` candidates);
- ``on_end(result)``: the `SearchResult` when the search has finished.

Subclass `Callback` (every method a no-op) and override what you need. An exception raised in a
callback stops the search and reaches you: a bug in your code is never swallowed. The one
exception: a callback whose ``best_effort`` is True (the trackers) that raises an OSError (a
full disk, an I/O error) is dropped with one warning and the search goes on. Callbacks are
not saved with the run: a resumed search calls those passed to it, ``on_start`` again, then
only what happens after the interruption (records logged just before a kill -9 are not sent
again; ``on_end`` comes only when a search finishes). A callback's optional ``describe()`` (one
line) is saved in ``config.json``, so a resume without it says how to pass it again.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs

__all__ = ["Callback", "CallbackList", "GenerationSummary", "RunInfo", "summarize"]

_EVENTS = ("on_start", "on_record", "on_generation", "on_end")


class Callback:
    """A search callback that does nothing: subclass it and override what you need."""

    def on_start(self, run: RunInfo) -> None:
        """The search is about to train (a new run, or a resumed one)."""

    def on_record(self, record: dict[str, Any]) -> None:
        """A candidate's record was logged."""

    def on_generation(self, summary: GenerationSummary) -> None:
        """A generation was told to the strategy."""

    def on_end(self, result: Any) -> None:
        """The search finished; ``result`` is its `SearchResult`."""


@attrs.frozen
class RunInfo:
    """Where a search writes and what it was asked to do (``config.json``'s contents)."""

    run_dir: Path
    config: dict[str, Any]
    resumed: bool


@attrs.frozen
class GenerationSummary:
    """One generation's outcome. Fitness values are on ``metric`` (NaN when nothing in the
    generation trained); ``best_so_far`` is the best fully trained record of the search."""

    generation: int
    metric: str
    maximize: bool
    candidates: int
    cached: int
    failed: int
    infeasible: int
    best_fitness: float
    mean_fitness: float
    std_fitness: float
    best_so_far: dict[str, Any] | None
    records: tuple[dict[str, Any], ...] = attrs.field(repr=False)


def summarize(generation: int, records: Sequence[dict[str, Any]], best: dict[str, Any] | None,
              metric: str, maximize: bool) -> GenerationSummary:
    """The `GenerationSummary` of ``records`` (one per candidate of the generation)."""
    scores = [r["fitness"] for r in records if r["fitness"] is not None]
    infeasible = sum(1 for r in records if r["metrics"]["status"] == "infeasible")
    mean = sum(scores) / len(scores) if scores else math.nan
    std = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores)) if scores else math.nan
    return GenerationSummary(
        generation=generation, metric=metric, maximize=maximize, candidates=len(records),
        cached=sum(1 for r in records if r["cached"]),
        failed=len(records) - len(scores) - infeasible, infeasible=infeasible,
        best_fitness=(max(scores) if maximize else min(scores)) if scores else math.nan,
        mean_fitness=mean, std_fitness=std, best_so_far=best, records=tuple(records))


class _RecordFunction(Callback):
    """``Search(on_record=f)``: the one-function form of a callback."""

    def __init__(self, function: Callable[[dict[str, Any]], None]):
        self.function = function

    def on_record(self, record: dict[str, Any]) -> None:
        self.function(record)


class CallbackList:
    """Fans each event out to every callback that handles it, in the order given."""

    def __init__(self, callbacks: Iterable[Any] | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None):
        items = list(callbacks or ())
        for cb in items:
            if not any(callable(getattr(cb, name, None)) for name in _EVENTS):
                raise TypeError(f"callback {cb!r} has none of the methods {', '.join(_EVENTS)} "
                                "(see pytorch_devol.search.Callback)")
        if on_record is not None:
            if not callable(on_record):
                raise TypeError(f"on_record must be callable, got {type(on_record).__name__}")
            items.append(_RecordFunction(on_record))
        self.callbacks = tuple(items)
        self.dropped: list[Any] = []  # best-effort callbacks that could not write

    def _call(self, event: str, value: Any) -> None:
        for cb in self.callbacks:
            method = getattr(cb, event, None)
            if not callable(method) or any(cb is d for d in self.dropped):
                continue
            try:
                method(value)
            except OSError as err:  # a full disk under a tracker: not the search's record
                if not getattr(cb, "best_effort", False):
                    raise
                self.dropped.append(cb)
                warnings.warn(f"{type(cb).__name__} cannot write ({err}); it stops here, the "
                              "search goes on (its record is the run directory)",
                              RuntimeWarning, stacklevel=2)

    def start(self, run: RunInfo) -> None:
        self._call("on_start", run)

    def record(self, record: dict[str, Any]) -> None:
        self._call("on_record", record)

    def generation(self, summary: GenerationSummary) -> None:
        self._call("on_generation", summary)

    def end(self, result: Any) -> None:
        self._call("on_end", result)

    def descriptions(self) -> list[str]:
        """What each callback with a ``describe()`` says of itself (for ``config.json``)."""
        return [str(cb.describe()) for cb in self.callbacks if callable(getattr(cb, "describe",
                                                                                 None))]

    def missing(self, saved: Any) -> list[str]:
        """The saved descriptions of callbacks of a type not passed this time."""
        given = {type(cb).__name__ for cb in self.callbacks}
        return [d for d in saved or () if isinstance(d, str) and d.split("(")[0] not in given]
