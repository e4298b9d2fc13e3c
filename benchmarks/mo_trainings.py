"""What the multi-objective peers (Optuna's NSGA-II, Syne Tune's MOASHA) train with in
``multi_objective.py``: the project's `Trainer`, a genome trained to ``e`` epochs in all (from
scratch, or continuing a paused network at ``e - 1``), results cached per (canonical key,
epochs), one event per call (the fields every arm of that benchmark logs) and the budget stop.
"""

from __future__ import annotations

from typing import Any

from benchmarks.common import BudgetSpent
from pytorch_devol.search.loop import candidate_seed

__all__ = ["Trainings"]


class Trainings:
    """Trains genomes for the Optuna and MOASHA arms and logs every result as an event:
    a cache per (canonical key, epochs), the epochs spent, BudgetSpent once they reach
    ``budget``."""

    def __init__(self, schema: Any, trainer: Any, seed: int, top: int, budget: int) -> None:
        self.schema, self.trainer, self.seed, self.top, self.budget = \
            schema, trainer, seed, top, budget
        self.cache: dict[tuple[tuple[int, ...], int], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.spent = 0
        self.retrained = 0

    def train(self, index: int, genome: list[int], e: int, live: Any = None) -> tuple[
            dict[str, Any], Any]:
        """``genome`` trained to ``e`` epochs in all (continuing ``live``, a paused network
        at e - 1, when given; from scratch otherwise); returns (its step, the paused state)."""
        key = self.schema.key(genome)
        step, cost, seconds, cached = self.cache.get((key, e)), 0, 0.0, True
        if step is None:
            cached = False
            if live is None and e > 1:
                self.retrained += 1
            before = 0.0 if live is None else self.cache[key, e - 1]["seconds"]
            cost = e if live is None else 1
            result = self.trainer.evaluate(self.schema, genome, epochs=e, resume=live,
                                           keep_state=e < self.top,
                                           seed=candidate_seed(self.seed, key))
            seconds = float(result.train_seconds) - before if result.ok else 0.0
            live = result.train_state if result.ok else None
            step = {"status": result.status, "params": float(result.params),
                    "val": result.val_accuracy if result.ok else None,
                    "test": result.test_accuracy if result.ok else None,
                    "seconds": float(result.train_seconds) if result.ok else 0.0}
            self.cache[key, e] = step
        else:
            live = None
        self._log(index, e, step, cost, seconds, cached)
        return step, live

    def _log(self, index: int, e: int, step: dict[str, Any], cost: int, seconds: float,
             cached: bool) -> None:
        ok = step["status"] == "ok"
        self.events.append({"index": index, "rung": e, "final": e == self.top and ok,
                            "cached": cached, "epochs": cost, "seconds": round(seconds, 4),
                            "network_epochs": e, "status": step["status"],
                            "val_accuracy": step["val"] if ok else None,
                            "params": step["params"], "test_accuracy": step["test"]})
        self.spent += cost
        if self.spent >= self.budget:
            raise BudgetSpent
