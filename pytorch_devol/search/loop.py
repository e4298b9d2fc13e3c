"""The ask -> evaluate -> tell loop of one search, put together from its parts:

* `RunState` (``run_state.py``): the counters, the tasks in flight and the checkpoint commit;
* `Dispatcher` (``dispatcher.py``): the evaluator, the cache, duplicate genomes in flight and
  retries;
* the observers of the log (``recorder.py``): the log itself, the cache, the rungs, the
  incumbent, the donor pool, the Pareto front and the circuit breaker; a live search writes
  each record and then tells them, a resume replays the log through them;
* a scheduling policy (``scheduling.py``): generational or asynchronous, which only asks,
  dispatches and tells through this loop.

With several objectives (an `ObjectiveMeter`), each record also holds its objective values and
constraint violation, the strategy is told the (n, k) objective matrix (and the violations),
and the Pareto front is kept in ``pareto.json`` with every member's weights. With a fidelity
scheduler a candidate has one record per rung it reaches (``rungs.RungBook``); promoted
candidates continue from the training state saved when they paused, and only records at the
top rung (``final``) can be the best.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np

from ..evolution import Updatable
from .breaker import CircuitBreaker
from .callbacks import CallbackList, summarize
from .dispatcher import MAX_RETRIES, Dispatcher
from .donors import DonorPool
from .evaluators import BetterThan, Evaluator, Task
from .fidelity_protocol import Fidelity, pareto_order_of
from .front import ParetoFront
from .incumbent import Incumbent
from .objectives import ObjectiveMeter
from .progress import Reporter
from .recorder import Cache, Log, Recorder
from .run_state import RunState
from .rungs import ParetoRanking, RungBook
from .scheduling import run_async, run_generations
from .settings import Settings
from .store import RunStore
from .warm import WarmStart

__all__ = ["MAX_RETRIES", "SearchLoop", "candidate_seed"]


def candidate_seed(seed: int, key: tuple[int, ...]) -> int:
    """Training seed of a candidate: from the run's seed and the genome, never from arrival
    order, so every evaluator (serial, pool, Ray) trains a genome identically."""
    digest = hashlib.sha256(f"{seed}:{','.join(map(str, key))}".encode()).digest()
    return int.from_bytes(digest[:4], "little") % (2**31)


class SearchLoop:
    """Runs one search to completion against a strategy and an evaluator."""

    def __init__(self, schema: Any, strategy: Any, evaluator: Evaluator, store: RunStore,
                 settings: Settings, reporter: Reporter, *, epochs: int,
                 callbacks: CallbackList | None = None, meter: ObjectiveMeter | None = None,
                 fidelity: Fidelity | None = None, warm: WarmStart | None = None):
        self.schema, self.strategy, self.store = schema, strategy, store
        self.settings, self.reporter, self.meter = settings, reporter, meter
        self.asynchronous = bool(strategy.steady_state)
        maximize = settings.maximize
        self.rungs = RungBook(fidelity, epochs, maximize, None if meter is None else
                              ParetoRanking(meter.names, [o.maximize for o in meter.objectives],
                                            pareto_order_of(fidelity)))
        self.state = RunState(store, strategy)
        self.log, self.cache, self.incumbent = Log(), Cache(), Incumbent(maximize)
        window = settings.circuit_breaker
        self.breaker = CircuitBreaker(settings.population_size if window is None else window)
        self.front = None if meter is None else ParetoFront(
            meter.names, [o.maximize for o in meter.objectives])
        heredity = settings.heredity
        self.donors = DonorPool(store.path, schema, settings.population_size, maximize,
                                warm, heredity) if heredity else None
        observers = [o for o in (self.log, self.cache, self.rungs, self.incumbent,
                                 self.donors, self.front) if o is not None]
        self.recorder = Recorder(schema, store, settings.metric, self.rungs, observers,
                                 self.incumbent, self.front, self.donors, meter)
        self.dispatcher = Dispatcher(schema, evaluator, self.recorder, self.log, self.cache,
                                     self.state, store=store, top=self.rungs.top,
                                     breaker=self.breaker, reporter=reporter,
                                     callbacks=callbacks or CallbackList(),
                                     donors=self.donors, meter=meter)
        self.callbacks, self.evaluator = self.dispatcher.callbacks, evaluator

    # -- state --------------------------------------------------------------------------------
    def restore(self) -> None:
        """Replay the log and load the checkpoint of an interrupted run (a no-op for a new
        one)."""
        logged, checkpoint = self.store.checked_log()  # before anything is repaired
        by_index: dict[tuple[int, int], dict[str, Any]] = {}
        for r in logged:  # a duplicate (index, rung) can only be a stale copy
            by_index.setdefault((r["index"], r["rung"]), r)
        records = list(by_index.values())
        self.store.repair(records, self.recorder.columns)
        self.recorder.replay(records, self.breaker)
        if self.donors is not None:  # before any task is asked or sent
            self.donors.prepare(self.cache.records)
        if self.front is not None and records:
            self.front.save(self.store.path)  # repairs a crash between weights and log
        if self.state.restore(checkpoint, lambda t: self._task(
                t["index"], t["genome"], t["seed"], t["rung"], t.get("donor")),
                [r["genome"] for r in records]):
            for t in self.state.pending:
                if t.rung > t.entry:
                    self.rungs.mark_sent(t.index, t.rung - 1)
        self._prune_donors()

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records

    @property
    def best(self) -> dict[str, Any] | None:
        """The best fully trained record so far."""
        return self.incumbent.record

    def _prune_donors(self) -> None:
        if self.donors is not None:
            self.donors.prune({t.donor for t in self.state.pending if t.donor is not None})

    # -- running ------------------------------------------------------------------------------
    def run(self) -> None:
        budget = self.settings.generations * self.settings.population_size
        (run_async if self.asynchronous else run_generations)(self, budget)
        self.store.drop_states()  # the search is over: no promotion can use them
        if self.donors is not None:
            self.donors.finish()
        self.reporter.close()

    def ask(self, n: int | None) -> list[Task]:
        """New candidates from the strategy, each at its entry rung (committed)."""
        genomes = np.asarray(self.strategy.ask(n), dtype=np.int64).reshape(-1, len(self.schema))
        tasks = []
        for g in genomes:
            donor = None if self.donors is None else self.donors.choose(g)
            index = self.state.take_index()
            tasks.append(self._task(index, g, candidate_seed(
                self.settings.seed, self.schema.key(g)), self.rungs.entry(index), donor))
        self.state.send(tasks)
        self._prune_donors()
        return tasks

    def promote(self, index: int, rung: int) -> Task:
        """A task taking candidate ``index`` from ``rung - 1`` on to ``rung`` (committed)."""
        record = self.rungs.latest[index]
        task = self._task(index, record["genome"], record["seed"], rung)
        self.rungs.mark_sent(index, rung - 1)
        self.state.send([task])
        return task

    def _task(self, index: int, genome: Any, seed: int, rung: int,
              donor: int | None = None) -> Task:
        entry = self.rungs.entry(index)
        return Task(index, tuple(int(x) for x in genome), seed, self._keep(rung),
                    **self.rungs.task_fields(rung), donor=donor if rung == entry else None,
                    entry=entry)

    def _keep(self, rung: int) -> BetterThan | None:
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

    def dispatch(self, task: Task) -> None:
        self.dispatcher.dispatch(task)

    def next_record(self) -> dict[str, Any]:
        return self.dispatcher.next_record()

    def collect(self, tasks: list[Task]) -> None:
        """Dispatch ``tasks`` and wait for all of their records."""
        for t in tasks:
            self.dispatch(t)
        waiting = {t.index for t in tasks}
        while waiting:
            waiting.discard(self.next_record()["index"])

    def tell(self, tasks: list[Task], records: list[dict[str, Any]]) -> None:
        """Tell the strategy ``records`` (a promotion: through its optional ``update``)."""
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

    def _fitness(self, record: dict[str, Any]) -> float | np.ndarray:
        if self.meter is not None:
            vector = self.rungs.ranking.point(record)[0]
            return self.rungs.ranking.told(vector, record["rung"], self.rungs.top)
        return self.rungs.told_value(record)

    def end_generation(self, generation: int, records: list[dict[str, Any]]) -> None:
        """Print the generation's line and tell the callbacks."""
        summary = summarize(generation, records, self.best, self.settings.metric,
                            self.settings.maximize)
        self.reporter.end_generation(summary)
        self.callbacks.generation(summary)
