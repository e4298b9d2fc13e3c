"""The evaluator protocol (tasks in, results out as they finish) and what every evaluator
uses to train a task: `build_trainer`, `set_threads`, `train_task`.

Implementations: `SerialEvaluator` (in-process, ``serial.py``), `ProcessPoolEvaluator`
(``pool.py``, its wire format in ``pool_protocol.py``, its worker in ``pool_worker.py``) and
`RayEvaluator` (``ray.py``); `make_evaluator` (``factory.py``) picks one from command-line style
options.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import torch

from ...training import EvalResult, TrainConfig, Trainer
from ...training.state import TrainState

__all__ = ["BetterThan", "Evaluator", "Task", "build_trainer", "set_threads", "train_task"]


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
    whether the result must carry the state it pauses in (a later rung may continue it).

    ``entry`` is the rung the candidate entered at (0 unless the scheduler has brackets,
    `EntryRung`): a task with ``rung == entry`` is a new candidate, above it a promotion.

    Heredity: ``donor`` is the index of the trained candidate whose weights it starts from
    (chosen when it was asked) and ``initial`` those weights, as the child's partial state
    dict (see ``schema.heredity``); they travel with the task like ``resume``."""

    index: int
    genome: tuple[int, ...]
    seed: int
    keep: BetterThan | None = None
    rung: int = 0
    epochs: int | None = None
    resume: TrainState | None = attrs.field(default=None, repr=False)
    keep_state: bool = False
    donor: int | None = None
    entry: int = 0
    initial: dict[str, torch.Tensor] | None = attrs.field(default=None, repr=False)

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
                            epochs=task.epochs, resume=task.resume, keep_state=task.keep_state,
                            initial=task.initial)


def set_threads(threads: int | None) -> None:
    """Limit this process's torch CPU threads (several workers share the cores)."""
    if threads is None:
        return
    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before any inter-op work; harmless if too late
        pass


def build_trainer(data: Any, config: TrainConfig, device: str | None,
                  shared_device: bool = False) -> Trainer:
    """A `Trainer` on ``device`` (None: keep ``config.device``); the data moves there now.
    ``shared_device``: other workers train on the same GPU (an out-of-memory error may be
    theirs, so it is the machine's fault, not the candidate's)."""
    if device is not None:
        config = attrs.evolve(config, device=device)
        index = torch.device(device).index
        if torch.device(device).type == "cuda" and index is not None:
            torch.cuda.set_device(index)  # no stray context or allocation on GPU 0
    return Trainer(data, config, shared_device=shared_device)
