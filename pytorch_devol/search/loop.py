"""The ask -> evaluate -> tell loop, with the cache and the crash-safe bookkeeping.

Every step that changes what a restart would do is written down first: the checkpoint (the
strategy state plus the candidates asked but not yet told) is saved right after each ask and
each tell, and each result is appended to the log as it arrives. After a crash the checkpoint
says exactly which candidates were in flight; those already in the log are not trained again.
The checkpoint stays small: a built-in strategy's memory of every genome ever asked is left out
of it and rebuilt from the log on restore, so its cost per event does not grow with the run.

With several objectives (an `ObjectiveMeter`), each record also holds its objective values and
constraint violation, the strategy is told the (n, k) objective matrix (and the violations),
and the Pareto front is kept in ``pareto.json`` with every member's weights (``search.front``).

Results are cached by canonical genome, except failures that were the machine's fault
(``EvalResult.retriable``): a later copy of that genome, or a resume, trains it again, at most
``MAX_RETRIES`` more times per genome in one session.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np

from ..evolution import BaseStrategy
from ..schema import devol_columns, to_devol
from ..training import EvalResult
from .breaker import CircuitBreaker
from .evaluator import BetterThan, Evaluator, Task
from .front import ParetoFront, violation_of
from .objectives import ObjectiveMeter
from .progress import Reporter
from .store import RunStore

__all__ = ["MAX_RETRIES", "SearchLoop", "candidate_seed"]

MAX_RETRIES = 2  # extra trainings of a genome whose failures were the machine's fault


def candidate_seed(seed: int, key: tuple[int, ...]) -> int:
    """Training seed of a candidate: from the run's seed and the genome, never from arrival
    order, so every evaluator (serial, pool, Ray) trains a genome identically."""
    digest = hashlib.sha256(f"{seed}:{','.join(map(str, key))}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)


class SearchLoop:
    """Runs one search to completion against a strategy and an evaluator."""

    def __init__(self, schema: Any, strategy: Any, evaluator: Evaluator, store: RunStore, *,
                 generations: int, population_size: int, seed: int, metric: str,
                 maximize: bool, asynchronous: bool, reporter: Reporter,
                 breaker_window: int | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None,
                 meter: ObjectiveMeter | None = None):
        self.schema, self.strategy, self.evaluator, self.store = schema, strategy, evaluator, store
        self.generations, self.population_size = generations, population_size
        self.seed, self.metric, self.maximize = seed, metric, maximize
        self.asynchronous, self.reporter, self.on_record = asynchronous, reporter, on_record
        legacy = devol_columns(schema)
        self.columns = legacy or list(schema.column_names)
        self._devol_csv = legacy is not None
        self.records: list[dict[str, Any]] = []
        self.logged: dict[int, dict[str, Any]] = {}   # index -> record
        self.cache: dict[tuple[int, ...], dict[str, Any]] = {}  # key -> trained record
        self.training: dict[tuple[int, ...], list[Task]] = {}   # key -> tasks waiting on it
        self.ready: deque[dict[str, Any]] = deque()
        self.best: dict[str, Any] | None = None
        self.next_index, self.told, self.generation = 0, 0, 0
        self.pending: list[Task] = []
        self.retried: dict[tuple[int, ...], int] = {}  # key -> retriable failures this session
        self.breaker = CircuitBreaker(population_size if breaker_window is None
                                      else breaker_window)
        self.meter = meter
        self.front = None if meter is None else ParetoFront(
            meter.names, [o.maximize for o in meter.objectives])

    # -- state --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load the log and checkpoint of an interrupted run (a no-op for a new one)."""
        by_index: dict[int, dict[str, Any]] = {}
        for r in self.store.records():
            by_index.setdefault(r["index"], r)   # a duplicate index can only be a stale copy
        self.records = list(by_index.values())
        self.store.repair(self.records, self.columns)
        for r in self.records:
            self.logged[r["index"]] = r
            if not r["cached"]:
                self.breaker.observe(r["metrics"])
                if not EvalResult.from_dict(r["metrics"]).retriable:
                    self.cache.setdefault(tuple(r["key"]), r)
                if self.front is not None and r.get("objectives"):
                    self.front.add(r["index"], self._vector(r), violation_of(r), r)
            self._consider_best(r)
        if self.front is not None and self.records:
            self.front.save(self.store.path)  # repairs a crash between weights and log
        ckpt = self.store.checkpoint()
        if ckpt is not None:
            self.strategy.load_state_dict(ckpt["strategy"])
            self.next_index, self.told = ckpt["next_index"], ckpt["told"]
            self.generation = ckpt["generation"]
            self.pending = [Task(t["index"], tuple(t["genome"]), t["seed"], self._keep())
                            for t in ckpt["pending"]]
            if self._compact_state():  # every genome asked is in the log or in flight
                asked = [r["genome"] for r in self.records] + [t.genome for t in self.pending]
                if asked:
                    self.strategy.remember(np.asarray(asked, dtype=np.int64))

    def _compact_state(self) -> bool:
        return isinstance(self.strategy, BaseStrategy)

    def _checkpoint(self) -> None:
        state = self.strategy.state_dict(include_seen=False) if self._compact_state() \
            else self.strategy.state_dict()
        self.store.save_checkpoint({
            "strategy": state, "next_index": self.next_index,
            "told": self.told, "generation": self.generation,
            "pending": [{"index": t.index, "genome": list(t.genome), "seed": t.seed}
                        for t in self.pending]})

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        budget = self.generations * self.population_size
        if self.asynchronous:
            self._run_async(budget)
        else:
            self._run_generations(budget)
        self.reporter.close()

    def _ask(self, n: int | None) -> list[Task]:
        genomes = np.asarray(self.strategy.ask(n), dtype=np.int64).reshape(-1, len(self.schema))
        tasks = []
        for g in genomes:
            key = self.schema.key(g)
            tasks.append(Task(self.next_index, tuple(int(x) for x in g),
                              candidate_seed(self.seed, key), self._keep()))
            self.next_index += 1
        self.pending.extend(tasks)
        self._checkpoint()
        return tasks

    def _csv_genome(self, vector: np.ndarray) -> list[int]:
        """The genome as the CSV shows it: DEvol's value encoding for DEvol's space."""
        return to_devol(self.schema, vector) if self._devol_csv else [int(x) for x in vector]

    def _keep(self) -> BetterThan | None:
        """Only a candidate at least as good as the best so far sends its weights back (every
        one does in a multi-objective search: any may join the front)."""
        if self.meter is not None:
            return None
        best = None if self.best is None else self.best["fitness"]
        return BetterThan(self.metric, self.maximize, best)

    def _fitness(self, record: dict[str, Any]) -> float | np.ndarray:
        if self.meter is not None:
            return self._vector(record)
        value = record["fitness"]
        return math.nan if value is None else float(value)

    def _vector(self, record: dict[str, Any]) -> np.ndarray:
        values = record.get("objectives") or {}
        return np.array([math.nan if values.get(n) is None else values[n]
                         for n in self.meter.names], dtype=np.float64)

    def _tell(self, tasks: list[Task], records: list[dict[str, Any]]) -> None:
        genomes = np.array([t.genome for t in tasks], dtype=np.int64)
        fitness = np.array([self._fitness(r) for r in records])
        if self.meter is not None and self.meter.constraints:
            violation = [math.nan if r.get("violation") is None else r["violation"]
                         for r in records]  # NaN: failed (dominated by every candidate)
            self.strategy.tell(genomes, fitness, violation=np.array(violation))
        else:
            self.strategy.tell(genomes, fitness)

    def _run_generations(self, budget: int) -> None:
        while self.told < budget:
            tasks = list(self.pending) or self._ask(budget - self.told)
            if not tasks:
                raise RuntimeError("the generational strategy asked for no genome")
            self.reporter.start_generation(self.generation, len(tasks))
            for t in tasks:
                self._dispatch(t)
            done: dict[int, dict[str, Any]] = {}
            while len(done) < len(tasks):
                record = self._next_record()
                done[record["index"]] = record
            ordered = [done[t.index] for t in tasks]
            self._tell(tasks, ordered)
            self.told += len(tasks)
            self.pending = []
            self.generation += 1
            self._checkpoint()
            self.reporter.end_generation(self.generation - 1, ordered, self.best)

    def _run_async(self, budget: int) -> None:
        in_flight = list(self.pending)
        for t in in_flight:
            self._dispatch(t)
        self.reporter.start_generation(self.told // self.population_size, budget - self.told)
        window: list[dict[str, Any]] = []
        while self.told < budget:
            while len(in_flight) < max(1, self.evaluator.capacity) and self.next_index < budget:
                new = self._ask(1)
                if not new:
                    break
                in_flight.extend(new)
                for t in new:
                    self._dispatch(t)
            if not in_flight:
                raise RuntimeError("the strategy asked for nothing while results were due")
            record = self._next_record()
            task = next(t for t in in_flight if t.index == record["index"])
            in_flight.remove(task)
            self.pending = [t for t in self.pending if t.index != task.index]
            self._tell([task], [record])
            self.told += 1
            self.generation = self.told // self.population_size
            self._checkpoint()
            window.append(record)
            if self.told % self.population_size == 0:
                self.reporter.end_generation(self.generation - 1, window, self.best)
                window = []

    # -- dispatch and collection -------------------------------------------------------------
    def _dispatch(self, task: Task) -> None:
        if task.index in self.logged:          # finished before a crash: never retrained
            self.ready.append(self.logged[task.index])
            return
        key = self.schema.key(task.vector)
        if key in self.cache:
            self.ready.append(self._log(task, key, self.cache[key], cached=True))
        elif key in self.training:
            self.training[key].append(task)
        else:
            self.training[key] = [task]
            self.evaluator.submit(task)

    def _next_record(self) -> dict[str, Any]:
        if self.ready:
            return self.ready.popleft()
        task, result = self.evaluator.next_result()
        key = self.schema.key(task.vector)
        waiting = [t for t in self.training.pop(key, [task]) if t.index != task.index]
        leader = self._log(task, key, result, cached=False)
        self.breaker.observe(leader["metrics"], result)
        if result.retriable:  # the machine's fault: not cached, a later copy tries again
            self.retried[key] = self.retried.get(key, 0) + 1
            if self.retried[key] <= MAX_RETRIES:
                if waiting:
                    self.training[key] = waiting
                    self.evaluator.submit(waiting[0])
                return leader
        self.cache[key] = leader
        for other in waiting:
            self.ready.append(self._log(other, key, leader, cached=True))
        return leader

    def _log(self, task: Task, key: tuple[int, ...], result: EvalResult | dict[str, Any],
             cached: bool) -> dict[str, Any]:
        if isinstance(result, EvalResult):
            metrics, source, weights = result.to_dict(), task.index, result.state_dict
        else:
            metrics, source, weights = result["metrics"], result["index"], None
        fitness = (EvalResult.from_dict(metrics).fitness(self.metric))
        record = {
            "index": task.index, "generation": self.generation, "genome": list(task.genome),
            "key": list(key), "csv_genome": self._csv_genome(task.vector), "seed": task.seed,
            "cached": cached, "source_index": source,
            "fitness": None if math.isnan(fitness) else fitness, "metrics": metrics,
            "finished_at": time.time(),
        }
        joined = self._measure(record, result, task) if self.meter is not None else False
        if weights is not None and self._better(fitness, task.index):
            self.store.save_best(weights, self._best_info(record))
        if joined and weights is not None:  # weights first: the log names them
            self.front.save_weights(self.store.path, task.index, weights)
        self.store.append(record, self.columns)
        if joined:
            self.front.save(self.store.path)
        self.records.append(record)
        self.logged[task.index] = record
        self._consider_best(record)
        self.reporter.candidate(record)
        if self.on_record is not None:
            self.on_record(record)
        return record

    def _measure(self, record: dict[str, Any], result: EvalResult | dict[str, Any],
                 task: Task) -> bool:
        """Objective values and violation into ``record``; True if it joins the front."""
        if isinstance(result, EvalResult):
            values = self.meter.measure(task.genome, result)
            record["objectives"] = {k: None if math.isnan(v) else v for k, v in values.items()}
            violation = self.meter.violation(values)
            record["violation"] = violation if math.isfinite(violation) else None
        else:  # a cached copy: the same network, the same values
            record["objectives"], record["violation"] = result.get("objectives"), \
                result.get("violation")
        return not record["cached"] and record["metrics"]["status"] == "ok" and \
            self.front.add(task.index, self._vector(record), violation_of(record), record)

    # -- best ---------------------------------------------------------------------------------
    def _better(self, fitness: float, index: int) -> bool:
        """Strictly better than the best so far; ties go to the earlier candidate, so the best
        does not depend on the order in which parallel results arrive."""
        if math.isnan(fitness):
            return False
        if self.best is None:
            return True
        best = self.best["fitness"]
        if fitness == best:
            return index < self.best["index"]
        return fitness > best if self.maximize else fitness < best

    def _consider_best(self, record: dict[str, Any]) -> None:
        if record["fitness"] is not None and not record["cached"] and \
                self._better(record["fitness"], record["index"]):
            self.best = record

    def _best_info(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"index": record["index"], "genome": record["genome"],
                "fitness": record["fitness"], "metric": self.metric,
                "layers": self.schema.describe(record["genome"]), "metrics": record["metrics"]}
