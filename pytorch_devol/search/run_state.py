"""`RunState`: a search's counters and the candidates in flight, and the one place that
commits them to ``checkpoint.json``.

The checkpoint (the strategy's state, the counters and every task asked but not yet told) is
committed after each ask and each tell, so after a crash it says exactly which candidates
were in flight. It stays small: a built-in strategy's memory of every genome ever asked
(`CompactState`) is left out of it and rebuilt from the log on restore, so its cost per event
does not grow with the run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..evolution import CompactState, StateMismatchError
from .evaluators import Task
from .layout import CHECKPOINT
from .store import RunStore, damaged

__all__ = ["RunState"]


class RunState:
    """``next_index`` (the next candidate's index), ``told`` (candidates told to the
    strategy, the budget's count), ``generation`` and ``pending`` (tasks in flight)."""

    def __init__(self, store: RunStore, strategy: Any) -> None:
        self.store, self.strategy = store, strategy
        self.next_index, self.told, self.generation = 0, 0, 0
        self.pending: list[Task] = []

    @property
    def compact(self) -> bool:
        """Whether the checkpoint leaves out the strategy's memory of genomes asked."""
        return isinstance(self.strategy, CompactState)

    def restore(self, checkpoint: dict[str, Any] | None,
                make_task: Callable[[dict[str, Any]], Task],
                logged_genomes: list[Any]) -> bool:
        """Load ``checkpoint`` (``RunStore.checked_log``), if any; ``make_task``
        rebuilds a pending task from its saved fields; a compact strategy then remembers
        every genome logged or in flight."""
        if checkpoint is None:
            return False
        try:
            self.strategy.load_state_dict(checkpoint["strategy"])
            self.pending = [make_task(t) for t in checkpoint["pending"]]
        except StateMismatchError as err:  # the file is sound: the strategy given differs
            raise ValueError(f"{self.store.path / CHECKPOINT}: {err}; resume with a strategy "
                             "built as the run's") from None
        except (ValueError, KeyError, TypeError, IndexError) as err:
            raise damaged(self.store.path / CHECKPOINT,
                          f"its strategy state or tasks do not load: {err}") from None
        self.next_index, self.told = checkpoint["next_index"], checkpoint["told"]
        self.generation = checkpoint["generation"]
        if self.compact:
            asked = [*logged_genomes, *(t.genome for t in self.pending)]
            if asked:
                self.strategy.remember(np.asarray(asked, dtype=np.int64))
        return True

    def commit(self) -> None:
        """Write the checkpoint (atomic)."""
        state = self.strategy.state_dict(include_seen=False) if self.compact \
            else self.strategy.state_dict()
        self.store.save_checkpoint({
            "strategy": state, "next_index": self.next_index, "told": self.told,
            "generation": self.generation,
            "pending": [{"index": t.index, "genome": list(t.genome), "seed": t.seed,
                         "rung": t.rung, "donor": t.donor} for t in self.pending]})

    def take_index(self) -> int:
        index, self.next_index = self.next_index, self.next_index + 1
        return index

    def send(self, tasks: list[Task]) -> None:
        """``tasks`` are in flight (committed); one already pending (a resume) is kept once."""
        new = [t for t in tasks if not any(p.index == t.index and p.rung == t.rung
                                           for p in self.pending)]
        if new or not tasks:
            self.pending.extend(new)
            self.commit()

    def generation_told(self, size: int) -> None:
        """A whole generation of ``size`` candidates was told: the next one begins."""
        self.told += size
        self.pending = []
        self.generation += 1
        self.commit()

    def candidate_told(self, task: Task, population_size: int) -> None:
        """An asynchronous strategy was told ``task``'s result (a new candidate counts
        towards the budget, a promotion does not)."""
        self.pending = [t for t in self.pending if t.index != task.index]
        if task.rung == task.entry:
            self.told += 1
        self.generation = self.told // population_size
        self.commit()
