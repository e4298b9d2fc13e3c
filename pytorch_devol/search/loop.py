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

With a fidelity scheduler (``fidelity.py``) a candidate has one record per rung it reaches;
promoted candidates continue from the training state saved in the run directory when they
paused (``states/``, by genome key and rung), and only records at the top rung (``final``)
can be the best. The bookkeeping of rungs is ``rungs.RungBook``.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from typing import Any

import attrs
import numpy as np

from ..evolution import CompactState, Updatable
from ..schema import devol_columns, to_devol
from ..training import EvalResult
from .breaker import CircuitBreaker
from .callbacks import CallbackList, summarize
from .donors import NO_LINEAGE, DonorPool
from .evaluators import BetterThan, Evaluator, Task
from .fidelity import Fidelity, pareto_order_of
from .front import ParetoFront, violation_of
from .incumbent import Incumbent
from .objectives import ObjectiveMeter
from .progress import Reporter
from .record import Record
from .rungs import ParetoRanking, RungBook
from .scheduling import run_async, run_generations
from .settings import LoopSettings
from .store import RunStore
from .warm import WarmStart

__all__ = ["MAX_RETRIES", "SearchLoop", "candidate_seed"]

MAX_RETRIES = 2  # extra trainings of a genome whose failures were the machine's fault


def candidate_seed(seed: int, key: tuple[int, ...]) -> int:
    """Training seed of a candidate: from the run's seed and the genome, never from arrival
    order, so every evaluator (serial, pool, Ray) trains a genome identically."""
    digest = hashlib.sha256(f"{seed}:{','.join(map(str, key))}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)


class SearchLoop:
    """Runs one search to completion against a strategy and an evaluator."""

    def __init__(self, schema: Any, strategy: Any, evaluator: Evaluator, store: RunStore,
                 settings: LoopSettings, reporter: Reporter, *,
                 callbacks: CallbackList | None = None, meter: ObjectiveMeter | None = None,
                 fidelity: Fidelity | None = None, warm: WarmStart | None = None):
        self.schema, self.strategy, self.evaluator, self.store = schema, strategy, evaluator, store
        self.settings, self.reporter = settings, reporter
        self.callbacks = callbacks or CallbackList()
        maximize = settings.maximize
        legacy = devol_columns(schema)
        self.columns = legacy or list(schema.column_names)
        self._devol_csv = legacy is not None
        self.records: list[dict[str, Any]] = []
        self.logged: dict[int, dict[int, dict[str, Any]]] = {}  # index -> rung -> record
        self.cache: dict[tuple[int, ...], dict[str, Any]] = {}  # key -> highest trained record
        self.training: dict[tuple[tuple[int, ...], int], list[Task]] = {}  # (key, rung) -> tasks
        self.prior: dict[int, tuple[int, float]] = {}  # index -> (epochs, seconds) resumed from
        self.rungs = RungBook(fidelity, settings.epochs, maximize, None if meter is None else
                              ParetoRanking(meter.names, [o.maximize for o in meter.objectives],
                                            pareto_order_of(fidelity)))
        self.ready: deque[dict[str, Any]] = deque()
        self.incumbent = Incumbent(maximize)
        self.next_index, self.told, self.generation = 0, 0, 0
        self.pending: list[Task] = []
        self.retried: dict[tuple[int, ...], int] = {}  # key -> retriable failures this session
        self.breaker = CircuitBreaker(settings.population_size
                                      if settings.breaker_window is None
                                      else settings.breaker_window)
        self.meter = meter
        self.front = None if meter is None else ParetoFront(
            meter.names, [o.maximize for o in meter.objectives])
        self.donors = DonorPool(store.path, schema, settings.population_size, maximize,
                                warm, settings.heredity) if settings.heredity else None

    # -- state --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Load the log and checkpoint of an interrupted run (a no-op for a new one)."""
        by_index: dict[tuple[int, int], dict[str, Any]] = {}
        for r in self.store.records():  # a duplicate (index, rung) can only be a stale copy
            by_index.setdefault((r["index"], r["rung"]), r)
        self.records = list(by_index.values())
        self.store.repair(self.records, self.columns)
        for r in self.records:
            self.logged.setdefault(r["index"], {})[r["rung"]] = r
            self.rungs.observe(r)
            if not r["cached"]:
                if r["metrics"]["status"] != "infeasible":  # never ran the user's code
                    self.breaker.observe(r["metrics"])
                if not EvalResult.from_dict(r["metrics"]).retriable:
                    self._cache_put(tuple(r["key"]), r)
                if self.front is not None and r.get("objectives") and r["final"]:
                    self.front.add(r["index"], self._vector(r), violation_of(r), r)
            self.incumbent.consider(r)
            if self.donors is not None:
                self.donors.add(r)
        if self.donors is not None:  # before any task is asked or sent
            self.donors.prepare(self.cache)
        if self.front is not None and self.records:
            self.front.save(self.store.path)  # repairs a crash between weights and log
        ckpt = self.store.checkpoint()
        if ckpt is not None:
            self.strategy.load_state_dict(ckpt["strategy"])
            self.next_index, self.told = ckpt["next_index"], ckpt["told"]
            self.generation = ckpt["generation"]
            self.pending = [self._task(t["index"], t["genome"], t["seed"], t["rung"],
                                       t.get("donor")) for t in ckpt["pending"]]
            for t in self.pending:
                if t.rung > t.entry:
                    self.rungs.mark_sent(t.index, t.rung - 1)
            if self._compact_state():  # every genome asked is in the log or in flight
                asked = [r["genome"] for r in self.records] + [t.genome for t in self.pending]
                if asked:
                    self.strategy.remember(np.asarray(asked, dtype=np.int64))
        self._prune_donors()

    def _compact_state(self) -> bool:
        return isinstance(self.strategy, CompactState)

    def checkpoint(self) -> None:
        state = self.strategy.state_dict(include_seen=False) if self._compact_state() \
            else self.strategy.state_dict()
        self.store.save_checkpoint({
            "strategy": state, "next_index": self.next_index,
            "told": self.told, "generation": self.generation,
            "pending": [{"index": t.index, "genome": list(t.genome), "seed": t.seed,
                         "rung": t.rung, "donor": t.donor} for t in self.pending]})

    def _prune_donors(self) -> None:
        if self.donors is not None:
            self.donors.prune({t.donor for t in self.pending if t.donor is not None})

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        budget = self.settings.generations * self.settings.population_size
        (run_async if self.settings.asynchronous else run_generations)(self, budget)
        self.store.drop_states()  # the search is over: no promotion can use them
        if self.donors is not None:
            self.donors.finish()
        self.reporter.close()

    def ask(self, n: int | None) -> list[Task]:
        genomes = np.asarray(self.strategy.ask(n), dtype=np.int64).reshape(-1, len(self.schema))
        tasks = []
        for g in genomes:
            donor = None if self.donors is None else self.donors.choose(g)
            tasks.append(self._task(self.next_index, g, candidate_seed(
                self.settings.seed, self.schema.key(g)), self.rungs.entry(self.next_index),
                donor))
            self.next_index += 1
        self.pending.extend(tasks)
        self.checkpoint()
        self._prune_donors()
        return tasks

    def _task(self, index: int, genome: Any, seed: int, rung: int,
              donor: int | None = None) -> Task:
        entry = self.rungs.entry(index)
        return Task(index, tuple(int(x) for x in genome), seed, self._keep(rung),
                    **self.rungs.task_fields(rung), donor=donor if rung == entry else None,
                    entry=entry)

    def promote(self, index: int, rung: int) -> Task:
        """A task taking candidate ``index`` from ``rung - 1`` on to ``rung`` (checkpointed)."""
        record = self.rungs.latest[index]
        task = self._task(index, record["genome"], record["seed"], rung)
        self.rungs.mark_sent(index, rung - 1)
        if not any(t.index == index and t.rung == rung for t in self.pending):  # resumed
            self.pending.append(task)
            self.checkpoint()
        return task

    def _csv_genome(self, vector: np.ndarray) -> list[int]:
        """The genome as the CSV shows it: DEvol's value encoding for DEvol's space."""
        return to_devol(self.schema, vector) if self._devol_csv else [int(x) for x in vector]

    def _keep(self, rung: int = 0) -> BetterThan | None:
        """Only a candidate at least as good as the best so far sends its weights back (every
        one does in a multi-objective search: any may join the front; none below the top
        rung, which cannot be the best)."""
        if self.meter is not None:
            return BetterThan(self.settings.metric, self.settings.maximize, None,
                              never=rung < self.rungs.top)
        best = None if self.best is None else self.best["fitness"]
        if self.donors is not None:  # a new donor needs its weights too
            best = self.donors.threshold()
        return BetterThan(self.settings.metric, self.settings.maximize, best,
                          never=rung < self.rungs.top)

    def _fitness(self, record: dict[str, Any]) -> float | np.ndarray:
        if self.meter is not None:
            return self.rungs.ranking.told(self._vector(record), record["rung"], self.rungs.top)
        return self.rungs.told_value(record)

    def _vector(self, record: dict[str, Any]) -> np.ndarray:
        return self.rungs.ranking.point(record)[0]

    def tell(self, tasks: list[Task], records: list[dict[str, Any]]) -> None:
        genomes = np.array([t.genome for t in tasks], dtype=np.int64)
        fitness = np.array([self._fitness(r) for r in records])
        if tasks[0].rung > tasks[0].entry:  # a promotion: a better score for a told genome
            if isinstance(self.strategy, Updatable):
                self.strategy.update(genomes, fitness)
            return
        if self.meter is not None and self.meter.constraints:
            violation = [math.nan if r.get("violation") is None else r["violation"]
                         for r in records]  # NaN: failed (dominated by every candidate)
            self.strategy.tell(genomes, fitness, violation=np.array(violation))
        else:
            self.strategy.tell(genomes, fitness)

    def collect(self, tasks: list[Task]) -> None:
        """Dispatch ``tasks`` and wait for all of their records."""
        for t in tasks:
            self.dispatch(t)
        waiting = {t.index for t in tasks}
        while waiting:
            waiting.discard(self.next_record()["index"])

    # -- dispatch and collection -------------------------------------------------------------
    def _logged_at(self, index: int, rung: int) -> dict[str, Any] | None:
        """The record of ``index`` at ``rung``, or at the lowest rung above it (a cached copy
        that arrived higher), from the log."""
        done = self.logged.get(index, {})
        higher = [r for r in done if r >= rung]
        return done[min(higher)] if higher else None

    def _cache_put(self, key: tuple[int, ...], record: dict[str, Any]) -> None:
        old = self.cache.get(key)
        if old is None or old["rung"] < record["rung"]:
            self.cache[key] = record

    def dispatch(self, task: Task) -> None:
        done = self._logged_at(task.index, task.rung)
        if done is not None:                   # finished before a crash: never retrained
            self.ready.append(done)
            return
        key = self.schema.key(task.vector)
        cached = self.cache.get(key)
        infeasible = None
        if task.rung == task.entry and cached is None and self.meter is not None and \
                self.meter.checks_before_training:
            infeasible = self.meter.before_training(task.genome)
        if cached is not None and cached["rung"] >= task.rung:
            self.ready.append(self._log(task, key, cached, cached=True))
        elif infeasible is not None:  # its size breaks a constraint: never trained
            record = self._log(task, key, infeasible, cached=False)
            self._cache_put(key, record)
            self.ready.append(record)
        elif (key, task.rung) in self.training:
            self.training[key, task.rung].append(task)
        else:
            self.training[key, task.rung] = [task]
            self._submit(task, key)

    def _submit(self, task: Task, key: tuple[int, ...]) -> None:
        """Send ``task`` to the evaluator, with the state it paused in one rung below."""
        new = task.rung == task.entry
        state = None if new else self.store.load_state(key, task.rung - 1)
        if state is not None:
            self.prior[task.index] = (state.epoch, state.seconds)
            task = attrs.evolve(task, resume=state)
        elif self.donors is not None and new:  # a donor's, or its own (warm start)
            task = self.donors.attach(task, None if task.donor is None
                                      else self.logged[task.donor][self.rungs.top])
        elif self.donors is not None:  # its paused state is lost: it starts over, from scratch
            self.donors.from_scratch(task.index)
        self.evaluator.submit(task)

    def next_record(self) -> dict[str, Any]:
        if self.ready:
            return self.ready.popleft()
        task, result = self.evaluator.next_result()
        key = self.schema.key(task.vector)
        waiting = [t for t in self.training.pop((key, task.rung), [task])
                   if t.index != task.index]
        leader = self._log(task, key, result, cached=False)
        self.breaker.observe(leader["metrics"], result)
        if result.retriable:  # the machine's fault: not cached, a later copy tries again
            self.retried[key] = self.retried.get(key, 0) + 1
            if self.retried[key] <= MAX_RETRIES:
                if waiting:
                    self.training[key, task.rung] = waiting
                    self._submit(waiting[0], key)
                return leader
        self._cache_put(key, leader)
        for other in waiting:
            self.ready.append(self._log(other, key, leader, cached=True))
        return leader

    def _log(self, task: Task, key: tuple[int, ...], result: EvalResult | dict[str, Any],
             cached: bool) -> dict[str, Any]:
        if isinstance(result, EvalResult):
            metrics, source, weights = result.to_dict(), task.index, result.state_dict
            rung = task.rung
            epochs0, seconds0 = self.prior.pop(task.index, (0, 0.0))
            seconds = result.train_seconds - seconds0 if result.ok else result.total_seconds
            spent = (max(0, result.epochs - epochs0),  # a failure's total is this call's
                     seconds if math.isfinite(seconds) else 0.0)
        else:
            metrics, source, weights = result["metrics"], result["index"], None
            rung, spent = result["rung"], (0, 0.0)
        fitness = (EvalResult.from_dict(metrics).fitness(self.settings.metric))
        record: Record = {
            "index": task.index, "generation": self.generation, "genome": list(task.genome),
            "key": list(key), "csv_genome": self._csv_genome(task.vector), "seed": task.seed,
            "cached": cached, "source_index": source,
            "fitness": None if math.isnan(fitness) else fitness, "metrics": metrics,
            "rung": rung, "rung_epochs": spent[0], "rung_seconds": spent[1],
            "final": rung == self.rungs.top, "finished_at": time.time(),
            **self._lineage(task, result),
        }
        joined = self._measure(record, result, task) if self.meter is not None else False
        if weights is not None and record["final"] and \
                self.incumbent.beaten_by(fitness, task.index):
            self.store.save_best(weights, self._best_info(record))
        if joined and weights is not None:  # weights first: the log names them
            self.front.save_weights(self.store.path, task.index, weights)
        if weights is not None and self.donors is not None and self.donors.would_join(record):
            self.donors.save(task.index, weights)  # before the log, which names it
        state = getattr(result, "train_state", None)
        if state is not None:  # before the log: a logged pause can always be continued
            self.store.save_state(key, rung, state)
        self.store.append(record, self.columns)
        if rung > task.entry and not cached and not EvalResult.from_dict(metrics).retriable:
            self.store.drop_states(key, below=rung)  # a retry would still need it
        if joined:
            self.front.save(self.store.path)
        self.records.append(record)
        self.logged.setdefault(task.index, {})[rung] = record
        self.rungs.observe(record)
        self.incumbent.consider(record)
        if self.donors is not None:
            self.donors.add(record)
        self.reporter.candidate(record)
        self.callbacks.record(record)
        return record

    def end_generation(self, generation: int, records: list[dict[str, Any]]) -> None:
        """Print the generation's line and tell the callbacks."""
        summary = summarize(generation, records, self.best, self.settings.metric,
                            self.settings.maximize)
        self.reporter.end_generation(summary)
        self.callbacks.generation(summary)

    def _lineage(self, task: Task, result: EvalResult | dict[str, Any]) -> dict[str, Any]:
        """Which weights the record's network started from (a cached copy: its source's)."""
        if isinstance(result, dict):
            return {k: result[k] for k in NO_LINEAGE}
        if self.donors is None:
            return dict(NO_LINEAGE)
        return self.donors.lineage(task.index, self.rungs.latest.get(task.index)
                                   if task.rung > task.entry else None)

    def _measure(self, record: dict[str, Any], result: EvalResult | dict[str, Any],
                 task: Task) -> bool:
        """Objective values and violation into ``record``; True if it joins the front."""
        self.meter.annotate(record, task.genome, result)
        return not record["cached"] and record["metrics"]["status"] == "ok" and \
            record["final"] and self.front.add(task.index, self._vector(record),
                                               violation_of(record), record)

    @property
    def best(self) -> dict[str, Any] | None:
        """The best fully trained record so far."""
        return self.incumbent.record

    def _best_info(self, record: dict[str, Any]) -> dict[str, Any]:
        return {"index": record["index"], "genome": record["genome"],
                "fitness": record["fitness"], "metric": self.settings.metric,
                "layers": self.schema.describe(record["genome"]), "metrics": record["metrics"]}
