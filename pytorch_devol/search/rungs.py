"""The search loop's view of multi-fidelity: each candidate's rungs, and who goes up next.

Everything here is rebuilt from the log on resume (a record per candidate per rung reached),
so it needs no checkpoint of its own. Without a fidelity scheduler there is one rung, the
full budget, and every record is final.
"""

from __future__ import annotations

import math
from typing import Any

from ..training import RETRIED_FAILURES
from .fidelity import ASHA, Fidelity, SuccessiveHalving, rung_major

__all__ = ["RungBook"]


def _value(record: dict[str, Any]) -> float:
    return math.nan if record["fitness"] is None else float(record["fitness"])


class RungBook:
    """Rung budgets, every candidate's latest record and each rung's results."""

    def __init__(self, fidelity: Fidelity | None, epochs: int, maximize: bool) -> None:
        self.fidelity, self.maximize = fidelity, maximize
        self.budgets = (epochs,) if fidelity is None else fidelity.budgets(epochs)
        self.top = len(self.budgets) - 1
        self.latest: dict[int, dict[str, Any]] = {}            # index -> highest-rung record
        self.results: list[dict[int, float]] = [{} for _ in self.budgets]  # rung -> index: value
        self.sent: list[set[int]] = [set() for _ in self.budgets]  # rung -> indices sent on

    @property
    def active(self) -> bool:
        return self.top > 0

    def task_fields(self, rung: int) -> dict[str, Any]:
        """What a task at ``rung`` carries: its epochs and whether to keep a paused state."""
        if not self.active:
            return {}
        return {"rung": rung, "epochs": self.budgets[rung], "keep_state": rung < self.top}

    def observe(self, record: dict[str, Any]) -> None:
        rung, index = record.get("rung", 0), record["index"]
        self.results[rung][index] = _value(record)
        if rung > 0:
            self.sent[rung - 1].add(index)
        if rung > 0 and record["metrics"].get("failure") in RETRIED_FAILURES:
            return  # the machine's fault costs the promotion, not the result below it
        if index not in self.latest or self.latest[index].get("rung", 0) <= rung:
            self.latest[index] = record

    def mark_sent(self, index: int, rung: int) -> None:
        """``index`` is on its way from ``rung`` to the next (a promotion task exists)."""
        self.sent[rung].add(index)

    def told_value(self, record: dict[str, Any]) -> float:
        """What the strategy is told: the metric, rung-major when there are several rungs."""
        value = _value(record)
        if not self.active:
            return value
        return rung_major(value, record.get("rung", 0), self.top, self.maximize)

    # -- synchronous successive halving ------------------------------------------------------
    def halving(self, indices: list[int], rung: int) -> list[int]:
        """Which of one generation's ``indices`` go from ``rung`` to the next. Entrants are
        those with a result at ``rung``; a cached copy that arrived above it (an elite kept
        from the last generation) is not one, and takes no place."""
        assert isinstance(self.fidelity, SuccessiveHalving)
        entrants = [i for i in indices if i in self.results[rung]]
        already = sum(self.latest[i].get("rung", 0) > rung for i in entrants)
        scores = [(i, self.results[rung][i]) for i in entrants
                  if self.latest[i].get("rung", 0) == rung]
        return self.fidelity.promote(len(entrants), scores, already, self.maximize)

    # -- asynchronous successive halving -----------------------------------------------------
    def next_promotion(self, drain: bool = False) -> tuple[int, int] | None:
        """``(index, rung)`` to send up from ``rung``, or None (ask a new candidate). With
        ``drain`` (no new candidate will come and nothing is in flight) and no result at the
        top rung yet, the best unpromoted candidate of the highest rung below goes on anyway,
        so a small search still ends with a fully trained network."""
        if not isinstance(self.fidelity, ASHA):
            return None
        rungs = [list(r.items()) for r in self.results[:-1]]
        found = self.fidelity.next_promotion(rungs, self.sent[:-1], self.maximize)
        if found is None and drain and not any(
                not math.isnan(v) for v in self.results[-1].values()):
            for k in range(self.top - 1, -1, -1):
                left = [(i, v) for i, v in rungs[k] if i not in self.sent[k]]
                best = self.fidelity.promote_any(left, self.maximize)
                if best is not None:
                    found = (best, k)
                    break
        if found is not None and self.latest[found[0]].get("rung", 0) > found[1]:
            self.sent[found[1]].add(found[0])  # already higher (a cached copy): skip it
            return self.next_promotion(drain)
        return found
