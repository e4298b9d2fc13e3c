"""`ScoreEvaluator`: an evaluator that trains nothing, for tests of the loop's bookkeeping.

Its score is a pure function of the genome and the epochs asked for, rising with the epochs,
so any schedule of the same tasks gives the same records, fast.
"""

from __future__ import annotations

import hashlib
from collections import deque

import torch

from pytorch_devol.search import Task
from pytorch_devol.training import EvalResult
from pytorch_devol.training.state import TrainState

__all__ = ["ScoreEvaluator", "score"]


def score(genome: tuple[int, ...], epochs: int, full: int) -> float:
    """In [0.1, 0.9): the genome's own level, reached in full at ``full`` epochs."""
    digest = hashlib.sha256(",".join(map(str, genome)).encode()).digest()
    level = int.from_bytes(digest[:4], "little") / 2**32
    return 0.1 + 0.8 * level * (0.5 + 0.5 * min(epochs, full) / full)


def paused(weights: dict, epochs: int, accuracy: float) -> TrainState:
    """A training state as a paused candidate leaves it (so ``states/`` is written)."""
    return TrainState(epoch=epochs, stop_reason="paused", model=weights, optimizer={},
                      scheduler=None, generator=torch.Generator().get_state(),
                      rng=torch.get_rng_state(), cuda_rng=None, best_model=None,
                      best_loss=1 - accuracy, best_metric=accuracy, best_epoch=epochs,
                      waited=0, seconds=0.0, history={})


class ScoreEvaluator:
    """Returns `score` for each task, with the untrained network's weights (so best.pt, the
    Pareto front and the donor pool are written as in a real search)."""

    def __init__(self, capacity: int = 1) -> None:
        self.capacity = capacity
        self._queue: deque[Task] = deque()
        self._schema = None
        self._epochs = 1
        self.submitted: list[Task] = []

    def open(self, schema, data, config) -> None:
        self._schema, self._epochs = schema, config.epochs

    def submit(self, task: Task) -> None:
        self._queue.append(task)
        self.submitted.append(task)

    def next_result(self) -> tuple[Task, EvalResult]:
        task = self._queue.popleft()
        epochs = task.epochs or self._epochs
        accuracy = score(task.genome, epochs, self._epochs)
        with torch.random.fork_rng():  # the same weights for the same task, every run
            torch.manual_seed(task.seed)
            weights = self._schema.build_model(task.vector).state_dict()
        keep = task.keep is None or task.keep(EvalResult(
            status="ok", val_accuracy=accuracy, val_loss=1 - accuracy))
        return task, EvalResult(
            status="ok", val_accuracy=accuracy, val_loss=1 - accuracy,
            test_accuracy=accuracy, test_loss=1 - accuracy, epochs=epochs,
            train_seconds=0.0, total_seconds=0.0,
            params=sum(int(t.numel()) for t in weights.values()),
            state_dict={k: v.clone() for k, v in weights.items()} if keep else None,
            train_state=paused(weights, epochs, accuracy) if task.keep_state else None)

    def close(self) -> None:
        self._queue.clear()
