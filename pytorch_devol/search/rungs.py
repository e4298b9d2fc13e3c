"""The search loop's view of multi-fidelity: each candidate's rungs, and who goes up next.

Everything here is rebuilt from the log on resume (a record per candidate per rung reached),
so it needs no checkpoint of its own. Without a fidelity scheduler there is one rung, the
full budget, and every record is final.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..evolution import pareto_order
from ..training import RETRIED_FAILURES
from .fidelity import ASHA, Hyperband
from .fidelity_protocol import Fidelity, check_budgets, entry_rung_of, ranked, rung_major
from .objectives import STRUCTURAL

__all__ = ["ParetoRanking", "RungBook"]

# Objectives rung_major knows the range of (accuracy in [0, 1], losses >= 0): name -> maximised.
_BOUNDED = {"val_accuracy": True, "val_loss": False, "val_mae": False}


def _value(record: dict[str, Any]) -> float:
    return math.nan if record["fitness"] is None else float(record["fitness"])


class ParetoRanking:
    """A multi-objective search's view of a record: its objective vector and violation, its
    place among others (`pareto_order`), and the rung-major vector the strategy is told."""

    def __init__(self, names: Sequence[str], maximize: Sequence[bool],
                 within: str = "epsilon") -> None:
        self.names, self.maximize, self.within = list(names), list(maximize), within
        self.directions = ["max" if m else "min" for m in maximize]

    def point(self, record: dict[str, Any]) -> tuple[np.ndarray, float]:
        """(objective vector, violation): NaN for unknown values, inf when not given."""
        values = record.get("objectives") or {}
        vector = np.array([math.nan if values.get(n) is None else values[n]
                           for n in self.names], dtype=np.float64)
        violation = record.get("violation")
        return vector, math.inf if violation is None else float(violation)

    def places(self, points: Sequence[tuple[int, np.ndarray, float]]) -> list[tuple[int, float]]:
        """(id, place) with place 0 for the best of ``points``; NaN for a failure (an infinite
        violation: the objectives could not be measured)."""
        ok = [(i, v, c) for i, v, c in points if math.isfinite(c)]
        out = [(i, math.nan) for i, _, c in points if not math.isfinite(c)]
        if ok:
            order = pareto_order(np.array([v for _, v, _ in ok]).reshape(len(ok), -1),
                                 self.directions, np.array([c for _, _, c in ok]), self.within)
            out += [(ok[row][0], float(place)) for place, row in enumerate(order.tolist())]
        return out

    def told(self, vector: np.ndarray, rung: int, top: int) -> np.ndarray:
        """``vector`` at ``rung`` with every objective that training changes made rung-major
        (`rung_major`; an objective of your own squeezed into (0, 1) first)."""
        if top == 0:
            return vector
        out = vector.copy()
        for j, name in enumerate(self.names):
            if name in STRUCTURAL or math.isnan(out[j]):
                continue
            value, maximize = float(out[j]), self.maximize[j]
            if name in _BOUNDED:
                out[j] = rung_major(value, rung, top, maximize)
            else:  # any real number, squeezed into (0, 1) in order
                squeezed = 0.5 + math.atan(value) / math.pi
                out[j] = (rung if maximize else top - rung) + squeezed
        return out


class AshaOrder:
    """ASHA's rule, kept as results arrive, for the built-in asynchronous schedulers with one
    objective: each (rung, bracket)'s results sorted best first (ties to the lower id, as
    `ranked`), so a free worker's promotion scans the top ``1/eta`` instead of sorting every
    result of the rung (which made the loop's cost per candidate grow with the run:
    benchmarks/loop_scale.py). Gives exactly ``ASHA.promote``'s answer."""

    def __init__(self, eta: int, maximize: bool) -> None:
        self.eta, self.maximize = eta, maximize
        self.order: dict[tuple[int, int], list[tuple[float, int]]] = {}  # best first
        self.count: dict[tuple[int, int], int] = {}  # results, failures (NaN) included
        self.value: dict[tuple[int, int], float] = {}  # (rung, index) -> value

    def _key(self, value: float, index: int) -> tuple[float, int]:
        return (-value if self.maximize else value, index)

    def add(self, rung: int, bracket: int, index: int, value: float) -> None:
        where = (rung, bracket)
        old = self.value.get((rung, index))
        if old is None:
            self.count[where] = self.count.get(where, 0) + 1
        elif not math.isnan(old):  # a retried result replaces the failure (or vice versa)
            self.order[where].remove(self._key(old, index))
        self.value[(rung, index)] = value
        if not math.isnan(value):
            bisect.insort(self.order.setdefault(where, []), self._key(value, index))

    def brackets(self, rung: int) -> list[int]:
        return sorted(b for r, b in self.count if r == rung)

    def first(self, rung: int, bracket: int, sent: set[int]) -> int | None:
        """The best of the bracket's top ``count // eta`` at ``rung`` not yet sent on."""
        top = itertools.islice(self.order.get((rung, bracket), ()),
                               self.count.get((rung, bracket), 0) // self.eta)
        return next((i for _, i in top if i not in sent), None)


class RungBook:
    """Rung budgets, every candidate's latest record and each rung's results."""

    def __init__(self, fidelity: Fidelity | None, epochs: int, maximize: bool,
                 ranking: ParetoRanking | None = None) -> None:
        self.fidelity, self.maximize, self.ranking = fidelity, maximize, ranking
        self.budgets = (epochs,) if fidelity is None else check_budgets(fidelity, epochs)
        self.top = len(self.budgets) - 1
        self.latest: dict[int, dict[str, Any]] = {}            # index -> highest-rung record
        self.results: list[dict[int, float]] = [{} for _ in self.budgets]  # rung -> index: value
        self.sent: list[set[int]] = [set() for _ in self.budgets]  # rung -> indices sent on
        # rung -> index: (objective vector, violation), with several objectives
        self.points: list[dict[int, tuple[np.ndarray, float]]] = [{} for _ in self.budgets]
        self._entries: dict[int, int] = {}  # index -> entry rung (`EntryRung`), as asked
        asha = type(fidelity) is ASHA or (type(fidelity) is Hyperband and fidelity.asynchronous)
        self._asha = AshaOrder(fidelity.eta, maximize) if asha and ranking is None else None

    def entry(self, index: int) -> int:
        """The rung candidate ``index`` enters at: 0, or its bracket's (`EntryRung`)."""
        if index not in self._entries:
            self._entries[index] = entry_rung_of(self.fidelity, index, self.top)
        return self._entries[index]

    def brackets(self, ids: Sequence[int]) -> list[list[int]]:
        """``ids`` grouped by entry rung (lowest first), each in the order given: a scheduler
        promotes within one bracket at a time."""
        groups: dict[int, list[int]] = {}
        for i in ids:
            groups.setdefault(self.entry(i), []).append(i)
        return [groups[k] for k in sorted(groups)]

    @property
    def active(self) -> bool:
        return self.top > 0

    def task_fields(self, rung: int) -> dict[str, Any]:
        """What a task at ``rung`` carries: its epochs and whether to keep a paused state."""
        if not self.active:
            return {}
        return {"rung": rung, "epochs": self.budgets[rung], "keep_state": rung < self.top}

    def observe(self, record: dict[str, Any]) -> None:
        rung, index = record["rung"], record["index"]
        self.results[rung][index] = _value(record)
        if self._asha is not None:
            self._asha.add(rung, self.entry(index), index, _value(record))
        if self.ranking is not None:
            self.points[rung][index] = self.ranking.point(record)
        promoted = rung > self.entry(index)
        if promoted:
            self.sent[rung - 1].add(index)
        if promoted and record["metrics"].get("failure") in RETRIED_FAILURES:
            return  # the machine's fault costs the promotion, not the result below it
        if index not in self.latest or self.latest[index]["rung"] <= rung:
            self.latest[index] = record

    def mark_sent(self, index: int, rung: int) -> None:
        """``index`` is on its way from ``rung`` to the next (a promotion task exists)."""
        self.sent[rung].add(index)

    def told_value(self, record: dict[str, Any]) -> float:
        """What the strategy is told: the metric, rung-major when there are several rungs."""
        value = _value(record)
        if not self.active:
            return value
        return rung_major(value, record["rung"], self.top, self.maximize)

    def entries(self, rung: int, ids: Sequence[int]) -> list[tuple[int, float]]:
        """What a scheduler is given about ``ids`` at ``rung``: (id, metric), or with several
        objectives (id, place in the Pareto order of ``ids``); NaN for a failure."""
        if self.ranking is None:
            return [(i, self.results[rung][i]) for i in ids]
        places = dict(self.ranking.places([(i, *self.points[rung][i]) for i in ids]))
        return [(i, places[i] if not math.isnan(self.results[rung][i]) else math.nan)
                for i in ids]

    @property
    def promote_maximize(self) -> bool:
        """The ``maximize`` a scheduler is given: places are better when lower."""
        return self.maximize if self.ranking is None else False

    # -- synchronous schedulers: once per generation and rung -------------------------------
    def halving(self, indices: list[int], rung: int) -> list[int]:
        """Which of one generation's ``indices`` go from ``rung`` to the next, bracket by
        bracket. Entrants are those with a result at ``rung``; one already higher (an elite
        the GA carried over, whose cached copy arrived at its old rung) counts as promoted."""
        assert self.fidelity is not None and not self.fidelity.asynchronous
        chosen = []
        for bracket in self.brackets([i for i in indices if i in self.results[rung]]):
            entrants = self.entries(rung, bracket)
            higher = {i for i in bracket if self.latest[i]["rung"] > rung}
            chosen += self._checked(self.fidelity.promote(rung, entrants, higher,
                                                          self.promote_maximize),
                                    rung, set(bracket) - higher)
        return chosen

    # -- asynchronous schedulers: whenever a worker is free ----------------------------------
    def next_promotion(self, drain: bool = False) -> tuple[int, int] | None:
        """``(index, rung)`` to send up from ``rung``, or None (ask a new candidate). The
        highest rung with a promotion wins. With ``drain`` (no new candidate will come and
        nothing is in flight) and no result at the top rung yet, the best unpromoted
        candidate of the highest rung below goes on anyway, so a small search still ends
        with a fully trained network."""
        if self.fidelity is None or not self.fidelity.asynchronous:
            return None
        found = None
        for k in range(self.top - 1, -1, -1):
            index = self._promotion_at(k)
            if index is not None:
                found = (index, k)
                break
        if found is None and drain and not any(
                not math.isnan(v) for v in self.results[-1].values()):
            for k in range(self.top - 1, -1, -1):
                left = ranked([(i, v) for i, v in self.entries(k, list(self.results[k]))
                               if i not in self.sent[k]], self.promote_maximize)
                if left:
                    found = (left[0], k)
                    break
        if found is not None and self.latest[found[0]]["rung"] > found[1]:
            self.sent[found[1]].add(found[0])  # already higher (a cached copy): skip it
            return self.next_promotion(drain)
        return found

    def _promotion_at(self, k: int) -> int | None:
        """The candidate the scheduler sends on from rung ``k`` now, bracket by bracket."""
        if self._asha is not None:  # the built-in rule, kept sorted as results arrive
            return next((i for i in (self._asha.first(k, b, self.sent[k])
                                     for b in self._asha.brackets(k)) if i is not None), None)
        for bracket in self.brackets(list(self.results[k])):
            chosen = self._checked(self.fidelity.promote(
                k, self.entries(k, bracket), frozenset(self.sent[k].intersection(bracket)),
                self.promote_maximize), k, set(bracket) - self.sent[k])
            if chosen:
                return chosen[0]
        return None

    def _checked(self, chosen: Any, rung: int, allowed: set[int]) -> list[int]:
        """A scheduler's answer as a list of ids it may promote from ``rung``, or ValueError."""
        ids = list(chosen)
        bad = [i for i in ids if i not in allowed]
        if bad:
            raise ValueError(f"{type(self.fidelity).__name__}.promote(rung={rung}) returned "
                             f"{bad[:3]}: ids must be among that rung's results and not yet "
                             "promoted")
        return ids
