"""The evaluator protocol (genomes in, results out as they finish) and the in-process one."""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from ..training import EvalResult, TrainConfig, Trainer

__all__ = ["BetterThan", "Evaluator", "SerialEvaluator", "Task"]


@attrs.frozen
class BetterThan:
    """Which results must bring their weights back: those that beat the best fitness known
    when the task was sent (only a new best is saved, so the rest stay on the worker)."""

    metric: str
    maximize: bool
    threshold: float | None = None

    def __call__(self, result: EvalResult) -> bool:
        fitness = result.fitness(self.metric)
        if fitness != fitness:  # NaN: a failed candidate
            return False
        if self.threshold is None:
            return True
        return fitness >= self.threshold if self.maximize else fitness <= self.threshold


@attrs.frozen
class Task:
    """One candidate to train: its position in the run, its genome, its training seed, and
    which results must return their weights (``None``: always)."""

    index: int
    genome: tuple[int, ...]
    seed: int
    keep: BetterThan | None = None

    @property
    def vector(self) -> np.ndarray:
        return np.asarray(self.genome, dtype=np.int64)


@runtime_checkable
class Evaluator(Protocol):
    """Maps genomes to results, streaming: ``submit`` tasks, then ``next_result`` returns
    whichever finishes first. ``capacity`` is how many candidates it trains at once (the
    runner keeps that many in flight for asynchronous strategies)."""

    capacity: int

    def open(self, schema: Any, data: Any, config: TrainConfig) -> None: ...

    def submit(self, task: Task) -> None: ...

    def next_result(self) -> tuple[Task, EvalResult]: ...

    def close(self) -> None: ...


class SerialEvaluator:
    """Trains candidates one at a time in this process (the default).

    The dataset is moved to the device once, in ``open``, and reused by every candidate.
    """

    capacity = 1

    def __init__(self) -> None:
        self._queue: deque[Task] = deque()
        self._trainer: Trainer | None = None
        self._schema: Any = None

    def open(self, schema: Any, data: Any, config: TrainConfig) -> None:
        self._schema = schema
        self._trainer = Trainer(data, config)

    def submit(self, task: Task) -> None:
        if self._trainer is None:
            raise RuntimeError("SerialEvaluator.open() must be called before submit()")
        self._queue.append(task)

    def next_result(self) -> tuple[Task, EvalResult]:
        if not self._queue:
            raise RuntimeError("next_result() called with no task submitted")
        task = self._queue.popleft()
        assert self._trainer is not None
        result = self._trainer.evaluate(self._schema, task.vector, seed=task.seed,
                                        keep_weights=task.keep or True)
        return task, result

    def close(self) -> None:
        self._queue.clear()
        self._trainer = None

    def __repr__(self) -> str:
        return "SerialEvaluator()"
