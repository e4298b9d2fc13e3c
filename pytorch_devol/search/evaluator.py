"""The evaluator protocol: tasks (genomes to train) in, results out as they finish.

Implementations: `SerialEvaluator` (in-process, ``serial.py``), `ProcessPoolEvaluator`
(``pool.py``) and `RayEvaluator` (``ray_evaluator.py``); `make_evaluator` (``factory.py``) picks
one from command-line style options.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np

from ..training import EvalResult, TrainConfig, Trainer
from ..training.state import TrainState

__all__ = ["BetterThan", "Evaluator", "Task", "train_task"]


@attrs.frozen
class BetterThan:
    """Which results must bring their weights back: those that beat the best fitness known
    when the task was sent (only a new best is saved, so the rest stay on the worker)."""

    metric: str
    maximize: bool
    threshold: float | None = None
    never: bool = False  # no weights at all (a candidate below the top rung)

    def __call__(self, result: EvalResult) -> bool:
        fitness = result.fitness(self.metric)
        if self.never or fitness != fitness:  # NaN: a failed candidate
            return False
        if self.threshold is None:
            return True
        return fitness >= self.threshold if self.maximize else fitness <= self.threshold


@attrs.frozen
class Task:
    """One candidate to train: its position in the run, its genome, its training seed, and
    which results must return their weights (``None``: always).

    Multi-fidelity: ``rung`` of the search's fidelity scheduler, ``epochs`` the epochs the
    network should have in all at the end (None: the full budget), ``resume`` the
    `TrainState` it paused in at the rung below (None: from scratch) and ``keep_state``
    whether the result must carry the state it pauses in (a later rung may continue it)."""

    index: int
    genome: tuple[int, ...]
    seed: int
    keep: BetterThan | None = None
    rung: int = 0
    epochs: int | None = None
    resume: TrainState | None = attrs.field(default=None, repr=False)
    keep_state: bool = False

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


def train_task(trainer: Trainer, schema: Any, task: Task) -> EvalResult:
    """Train ``task`` with ``trainer``: what every evaluator runs, in-process or in a worker."""
    return trainer.evaluate(schema, task.vector, seed=task.seed, keep_weights=task.keep or True,
                            epochs=task.epochs, resume=task.resume, keep_state=task.keep_state)
