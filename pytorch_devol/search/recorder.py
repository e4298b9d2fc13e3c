"""Writing a candidate's record, and the state that follows the log.

Everything the search knows about past candidates follows the log, ``results.jsonl``, through
one small interface, `Observer`: ``observe(record)``. The observers are the `Log` (records
by index and rung), the `Cache` (a genome's highest trained record), the rungs
(``rungs.RungBook``), the incumbent, the donor pool, the Pareto front and the circuit
breaker. A live search writes each record, then tells every observer; a resume replays the
log through the same observers, so both reach the same state.

Files a record names are written before it: the best model, a Pareto-front member's or a
donor's weights, a paused training state. A crash between the two leaves a file nothing names
(overwritten or pruned later), never a record naming a missing file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from ..schema import devol_columns, to_devol
from ..training import EvalResult
from .donors import NO_LINEAGE, DonorPool
from .evaluators import Task
from .front import ParetoFront
from .incumbent import Incumbent
from .objectives import ObjectiveMeter
from .record import Record
from .rungs import RungBook
from .store import RunStore

__all__ = ["Cache", "Log", "Observer", "Recorder"]


@runtime_checkable
class Observer(Protocol):
    """State that follows the log: told each record as it is written, and each logged
    record again, in order, on resume."""

    def observe(self, record: dict[str, Any]) -> None: ...


class Log:
    """The records so far, and each candidate's by rung."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.by_index: dict[int, dict[int, dict[str, Any]]] = {}  # index -> rung -> record

    def observe(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        self.by_index.setdefault(record["index"], {})[record["rung"]] = record

    def at(self, index: int, rung: int) -> dict[str, Any] | None:
        """The record of ``index`` at ``rung``, or at the lowest rung above it (a cached
        copy that arrived higher)."""
        done = self.by_index.get(index, {})
        higher = [r for r in done if r >= rung]
        return done[min(higher)] if higher else None


class Cache:
    """Each genome's highest-rung trained record (by canonical key); failures that were the
    machine's fault are left out, so a later copy trains again."""

    def __init__(self) -> None:
        self.records: dict[tuple[int, ...], dict[str, Any]] = {}

    def observe(self, record: dict[str, Any]) -> None:
        if not record["cached"] and not EvalResult.from_dict(record["metrics"]).retriable:
            self.put(tuple(record["key"]), record)

    def put(self, key: tuple[int, ...], record: dict[str, Any]) -> None:
        old = self.records.get(key)
        if old is None or old["rung"] < record["rung"]:
            self.records[key] = record

    def get(self, key: tuple[int, ...]) -> dict[str, Any] | None:
        return self.records.get(key)


class Recorder:
    """Builds each record, writes it (and the files it names) and tells the observers."""

    def __init__(self, schema: Any, store: RunStore, metric: str, rungs: RungBook,
                 observers: Sequence[Observer], incumbent: Incumbent,
                 front: ParetoFront | None, donors: DonorPool | None,
                 meter: ObjectiveMeter | None) -> None:
        self.schema, self.store, self.metric, self.rungs = schema, store, metric, rungs
        self.observers, self.incumbent = list(observers), incumbent
        self.front, self.donors, self.meter = front, donors, meter
        legacy = devol_columns(schema)
        self.columns = legacy or list(schema.column_names)
        self._devol_csv = legacy is not None
        self.prior: dict[int, tuple[int, float]] = {}  # index -> (epochs, seconds) resumed from

    def replay(self, records: Sequence[dict[str, Any]], *more: Observer) -> None:
        """Tell the observers (and ``more``) every logged record, in order (a resume)."""
        for record in records:
            for observer in (*self.observers, *more):
                observer.observe(record)

    def resumed(self, index: int, epochs: int, seconds: float) -> None:
        """Candidate ``index`` continues from a state that had trained this much."""
        self.prior[index] = (epochs, seconds)

    def write(self, task: Task, key: tuple[int, ...], result: EvalResult | dict[str, Any],
              cached: bool, generation: int) -> dict[str, Any]:
        """Log ``task``'s result (or, ``cached``, a copy of an earlier record)."""
        record = self._record(task, key, result, cached, generation)
        live = isinstance(result, EvalResult)
        weights = result.state_dict if live else None
        fitness = math.nan if record["fitness"] is None else record["fitness"]
        joined = self.front is not None and self.front.would_join(record)
        if weights is not None and record["final"] and \
                self.incumbent.beaten_by(fitness, task.index):
            self.store.save_best(weights, self._best_info(record))
        if joined and weights is not None:
            self.front.save_weights(self.store.path, record, weights)
        if weights is not None and self.donors is not None and self.donors.would_join(record):
            self.donors.save(record, weights)
        state = result.train_state if live else None
        if state is not None:  # a logged pause can always be continued
            self.store.save_state(key, record["rung"], state)
        self.store.append(record, self.columns)
        if live and record["rung"] > task.entry and not result.retriable:
            self.store.drop_states(key, below=record["rung"])  # a retry would still need it
        for observer in self.observers:
            observer.observe(record)
        if joined:
            self.front.save(self.store.path)
        return record

    def _record(self, task: Task, key: tuple[int, ...], result: EvalResult | dict[str, Any],
                cached: bool, generation: int) -> dict[str, Any]:
        if isinstance(result, EvalResult):
            metrics, source, rung = result.to_dict(), task.index, task.rung
            epochs0, seconds0 = self.prior.pop(task.index, (0, 0.0))
            seconds = result.train_seconds - seconds0 if result.ok else result.total_seconds
            spent = (max(0, result.epochs - epochs0),  # a failure's total is this call's
                     seconds if math.isfinite(seconds) else 0.0)
        else:
            metrics, source = result["metrics"], result["index"]
            rung, spent = result["rung"], (0, 0.0)
        fitness = EvalResult.from_dict(metrics).fitness(self.metric)
        record: Record = {
            "index": task.index, "generation": generation, "genome": list(task.genome),
            "key": list(key), "csv_genome": self._csv_genome(task), "seed": task.seed,
            "cached": cached, "source_index": source,
            "fitness": None if math.isnan(fitness) else fitness, "metrics": metrics,
            "rung": rung, "rung_epochs": spent[0], "rung_seconds": spent[1],
            "final": rung == self.rungs.top, "finished_at": time.time(),
            **self._lineage(task, result),
        }
        if self.meter is not None:  # objective values and violation
            self.meter.annotate(record, task.genome, result)
        return record

    def _csv_genome(self, task: Task) -> list[int]:
        """The genome as the CSV shows it: DEvol's value encoding for DEvol's space."""
        return to_devol(self.schema, task.vector) if self._devol_csv else list(task.genome)

    def _lineage(self, task: Task, result: EvalResult | dict[str, Any]) -> dict[str, Any]:
        """Which weights the record's network started from (a cached copy: its source's)."""
        if isinstance(result, dict):
            return {k: result[k] for k in NO_LINEAGE}
        if self.donors is None:
            return dict(NO_LINEAGE)
        return self.donors.lineage(task.index, self.rungs.latest.get(task.index)
                                   if task.rung > task.entry else None)

    def _best_info(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"index": record["index"], "genome": record["genome"],
                "fitness": record["fitness"], "metric": self.metric,
                "layers": self.schema.describe(record["genome"]), "metrics": record["metrics"]}
