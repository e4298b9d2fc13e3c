"""`SerialEvaluator`: trains candidates one at a time in this process (the default)."""

from __future__ import annotations

from collections import deque
from typing import Any

from ...training import EvalResult, TrainConfig, Trainer
from .base import Task, train_task

__all__ = ["SerialEvaluator"]


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
        if self._trainer.broken:  # a sticky CUDA error: this process's context is unusable
            raise RuntimeError("the CUDA context of this process is broken by an earlier "
                               "candidate's error; resume the search (nothing is lost): "
                               "Search.resume(run_dir) or pytorch-devol search --resume DIR")
        return task, train_task(self._trainer, self._schema, task)

    def close(self) -> None:
        self._queue.clear()
        self._trainer = None

    def __repr__(self) -> str:
        return "SerialEvaluator()"
