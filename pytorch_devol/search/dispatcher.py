"""`Dispatcher`: sends tasks to the evaluator and hands back their records.

A task already logged (before a crash) is never trained again, nor is a genome the `Cache`
holds at that rung; copies of one genome in flight train once, and the others are logged as
cached copies of its result. A failure that was the machine's fault (``EvalResult.retriable``)
is not cached: a later copy, or a resume, trains it again, at most ``MAX_RETRIES`` more times
per genome in one session. A promoted task continues from the training state its candidate
paused in (``states/``); a new one starts from its donor's weights (heredity), if any.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from ..training import EvalResult
from .breaker import CircuitBreaker
from .callbacks import CallbackList
from .donors import DonorPool
from .evaluators import Evaluator, Task
from .objectives import ObjectiveMeter
from .progress import Reporter
from .recorder import Cache, Log, Recorder
from .run_state import RunState
from .store import RunStore

__all__ = ["MAX_RETRIES", "Dispatcher"]

MAX_RETRIES = 2  # extra trainings of a genome whose failures were the machine's fault


class Dispatcher:
    """Tasks in, records out (`dispatch`, `next_record`), each record logged as it comes."""

    def __init__(self, schema: Any, evaluator: Evaluator, recorder: Recorder, log: Log,
                 cache: Cache, state: RunState, *, store: RunStore, top: int,
                 breaker: CircuitBreaker, reporter: Reporter, callbacks: CallbackList,
                 donors: DonorPool | None = None, meter: ObjectiveMeter | None = None) -> None:
        self.schema, self.evaluator, self.recorder = schema, evaluator, recorder
        self.log, self.cache, self.state = log, cache, state
        self.store, self.top = store, top  # paused states; the top rung (a donor's record)
        self.breaker, self.reporter, self.callbacks = breaker, reporter, callbacks
        self.donors, self.meter = donors, meter
        self.ready: deque[dict[str, Any]] = deque()
        self.training: dict[tuple[tuple[int, ...], int], list[Task]] = {}  # (key, rung) -> tasks
        self.retried: dict[tuple[int, ...], int] = {}  # key -> retriable failures this session

    def dispatch(self, task: Task) -> None:
        """Send ``task`` (or log it at once: done before a crash, cached, infeasible)."""
        done = self.log.at(task.index, task.rung)
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
            self.ready.append(self._write(task, key, cached, cached=True))
        elif infeasible is not None:  # its size breaks a constraint: never trained
            self.ready.append(self._write(task, key, infeasible, cached=False))
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
            self.recorder.resumed(task.index, state.epoch, state.seconds)
            task = attrs.evolve(task, resume=state)
        elif self.donors is not None and new:  # a donor's, or its own (warm start)
            task = self.donors.attach(task, None if task.donor is None
                                      else self.log.by_index[task.donor][self.top])
        elif self.donors is not None:  # its paused state is lost: it starts over, from scratch
            self.donors.from_scratch(task.index)
        self.evaluator.submit(task)

    def next_record(self) -> dict[str, Any]:
        """The next record: one logged at dispatch, or the next result the evaluator has."""
        if self.ready:
            return self.ready.popleft()
        task, result = self.evaluator.next_result()
        key = self.schema.key(task.vector)
        waiting = [t for t in self.training.pop((key, task.rung), [task])
                   if t.index != task.index]
        if not result.ok:
            self.breaker.blame(task.index, result)
        leader = self._write(task, key, result, cached=False)
        if result.retriable:  # the machine's fault: not cached, a later copy tries again
            self.retried[key] = self.retried.get(key, 0) + 1
            if self.retried[key] <= MAX_RETRIES:
                if waiting:
                    self.training[key, task.rung] = waiting
                    self._submit(waiting[0], key)
                return leader
            self.cache.put(key, leader)  # given up on for this session
        for other in waiting:
            self.ready.append(self._write(other, key, leader, cached=True))
        return leader

    def _write(self, task: Task, key: tuple[int, ...], result: EvalResult | dict[str, Any],
               cached: bool) -> dict[str, Any]:
        record = self.recorder.write(task, key, result, cached, self.state.generation)
        self.reporter.candidate(record)
        self.callbacks.record(record)
        self.breaker.observe(record)
        return record
