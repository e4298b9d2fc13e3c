"""Each arm's incumbents scored once on the whole test set, and the epochs every arm spends.

The search benchmarks pick an arm's incumbent (its best fully trained network) on validation
and report that network's held-out test accuracy. Scoring every candidate on 10,000 test
images would cost about as much as a third of its training, so the arms train on data whose
test part is a small placeholder, and `TestScorer` scores only the networks that became an
incumbent, on the whole test set, timing itself so the report can say its share.

`EpochTrainer` is what the peers (Optuna, DEHB) train with: the project's `Trainer`, a
genome trained on to ``e`` epochs from where it paused (the same continuation successive
halving gets), results cached by genome, one event per call, and the budget stop.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch

from benchmarks.common import BudgetSpent
from pytorch_devol.search.loop import candidate_seed

__all__ = ["EpochTrainer", "TestScorer", "event"]


class TestScorer:
    """Test accuracy of trained weights on the whole test part (fp32, eval mode, no grad)."""

    def __init__(self, schema: Any, x_test: torch.Tensor, y_test: torch.Tensor,
                 batch: int = 1000) -> None:
        self.schema, self.x, self.y, self.batch = schema, x_test, y_test, batch
        self.seconds, self.calls = 0.0, 0

    def __call__(self, genome: Any, weights: dict[str, torch.Tensor]) -> float:
        start = time.perf_counter()
        model = self.schema.build_model(genome)
        model.load_state_dict(weights)
        model.eval()
        correct = 0
        with torch.inference_mode():
            for lo in range(0, len(self.y), self.batch):
                out = model(self.x[lo:lo + self.batch])
                correct += int((out.argmax(dim=1) == self.y[lo:lo + self.batch]).sum())
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return correct / len(self.y)

    def usage(self) -> dict[str, Any]:
        return {"test_scorings": self.calls, "test_seconds": round(self.seconds, 3)}


def event(index: int, rung: int, cached: bool, epochs: int, seconds: float, final: bool,
          status: str, network_epochs: int, val: float | None,
          test: float | None = None) -> dict[str, Any]:
    """One record as the analysis reads it, the same for every arm. ``test`` is set only on a
    record that made its network the incumbent (scored on the whole test set)."""
    return {"index": index, "rung": rung, "cached": cached, "epochs": epochs,
            "seconds": round(seconds, 4), "final": final, "status": status,
            "network_epochs": network_epochs, "val_accuracy": val,
            "new_incumbent": test is not None, "test_accuracy": test}


class EpochTrainer:
    """Trains genomes for a peer arm: ``reach(genome, e)`` gives the genome's validation
    accuracy after ``e`` epochs, continuing its paused network when it has one (states kept
    in memory while below ``top``), replaying a cached result for free, logging one event per
    call and raising `BudgetSpent` once ``budget`` epochs are spent."""

    def __init__(self, schema: Any, trainer: Any, scorer: TestScorer, seed: int, top: int,
                 budget: int) -> None:
        self.schema, self.trainer, self.scorer = schema, trainer, scorer
        self.seed, self.top, self.budget = seed, top, budget
        self.results: dict[tuple[int, ...], dict[int, dict[str, Any]]] = {}
        self.paused: dict[tuple[int, ...], Any] = {}   # key -> TrainState at its last epoch
        self.events: list[dict[str, Any]] = []
        self.spent = 0
        self.best_val = -math.inf
        self.peak_state_bytes = 0

    def reach(self, genome: list[int], e: int, index: int) -> dict[str, Any]:
        """The result of ``genome`` trained ``e`` epochs: {"val", "status"}."""
        key = self.schema.key(genome)
        done = self.results.setdefault(key, {})      # epochs -> result (a failure: any)
        failed = next((s for s in done.values() if s["status"] != "ok"), None)
        if e in done or failed is not None:
            step = done.get(e, failed)
            self._log(index, e, step, 0, 0.0, cached=True, test=None)
            return step
        state = self.paused.pop(key, None)
        if state is not None and state.epoch >= e:
            state = None                              # asked lower than it paused: anew
        result = self.trainer.evaluate(self.schema, genome, seed=candidate_seed(self.seed, key),
                                       epochs=e, resume=state, keep_state=e < self.top,
                                       keep_weights=e == self.top)
        prior = (state.epoch, state.seconds) if state is not None else (0, 0.0)
        seconds = (float(result.train_seconds) - prior[1]) if result.ok \
            else float(result.total_seconds)
        step = {"val": result.val_accuracy if result.ok else None, "status": result.status}
        if result.ok and result.stop_reason not in (None, "paused", "max_epochs"):
            raise RuntimeError(f"unexpected stop {result.stop_reason!r} with patience=None")
        done[e] = step
        if result.train_state is not None:
            self.paused[key] = result.train_state
            self.peak_state_bytes = max(self.peak_state_bytes,
                                        sum(s.nbytes() for s in self.paused.values()))
        test = None
        if result.ok and e == self.top and result.val_accuracy > self.best_val:
            self.best_val = result.val_accuracy
            test = self.scorer(genome, result.state_dict)
        self._log(index, e, step, max(0, result.epochs - prior[0]),
                  seconds if math.isfinite(seconds) else 0.0, cached=False, test=test)
        return step

    def _log(self, index: int, e: int, step: dict[str, Any], epochs: int, seconds: float,
             cached: bool, test: float | None) -> None:
        ok = step["status"] == "ok"
        self.events.append(event(index, e - 1, cached, epochs, seconds, ok and e == self.top,
                                 step["status"], e, step["val"] if ok else None, test))
        self.spent += epochs
        if self.spent >= self.budget:
            raise BudgetSpent
