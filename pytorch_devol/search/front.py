"""The Pareto front of a multi-objective search, kept up to date as candidates finish.

A candidate is on the front when no other trained candidate dominates it under Deb's
constrained domination: a feasible candidate dominates an infeasible one; of two infeasible
ones, the smaller violation dominates; of two feasible ones, the usual Pareto dominance over
the objectives (each in its direction). A failed candidate (NaN) is dominated by everything.
``pareto.json`` in the run directory holds the current front, rewritten atomically when it
changes; ``front/<index>.pt`` holds the weights of each member (``torch.load(...,
weights_only=True)``), so any of them can be exported.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .durable import atomic_write
from .layout import FRONT_DIR, PARETO_FILE, RunLayout, front_entry, keyed

__all__ = ["ParetoFront", "dominates"]


def dominates(a: np.ndarray, va: float, b: np.ndarray, vb: float,
              maximize: Sequence[bool]) -> bool:
    """Whether point ``a`` (violation ``va``) dominates ``b`` (violation ``vb``)."""
    if np.isnan(b).any():
        return not np.isnan(a).any()
    if np.isnan(a).any():
        return False
    if va > 0 or vb > 0:
        return va < vb
    sign = np.where(np.asarray(maximize), 1.0, -1.0)
    a, b = a * sign, b * sign
    return bool((a >= b).all() and (a > b).any())


class ParetoFront:
    """The non-dominated candidates among those added so far (by record index)."""

    def __init__(self, names: Sequence[str], maximize: Sequence[bool]) -> None:
        self.names, self.maximize = list(names), [bool(m) for m in maximize]
        self.members: dict[int, tuple[np.ndarray, float, dict[str, Any]]] = {}

    def add(self, index: int, values: np.ndarray, violation: float,
            record: dict[str, Any]) -> bool:
        """Offer a candidate; True when it joins the front (members it dominates leave)."""
        values = np.asarray(values, dtype=np.float64)
        if self._kept_out(values, violation):
            return False
        self.members = {i: m for i, m in self.members.items()
                        if not dominates(values, violation, m[0], m[1], self.maximize)}
        self.members[index] = (values, violation, record)
        return True

    def point(self, record: dict[str, Any]) -> tuple[np.ndarray, float]:
        """``record``'s objective vector (NaN where unknown) and violation (inf: none)."""
        values = record.get("objectives") or {}
        return (np.array([np.nan if values.get(n) is None else values[n] for n in self.names],
                         dtype=np.float64), violation_of(record))

    @staticmethod
    def eligible(record: dict[str, Any]) -> bool:
        """Trained in full (not a cached copy), successfully, with objective values."""
        return not record["cached"] and record["metrics"]["status"] == "ok" and \
            bool(record.get("objectives")) and record.get("final", True)

    def would_join(self, record: dict[str, Any]) -> bool:
        """Whether `observe` would put ``record`` on the front (nothing changes)."""
        return self.eligible(record) and not self._kept_out(*self.point(record))

    def _kept_out(self, values: np.ndarray, violation: float) -> bool:
        """Unknown values, dominated, or the same point already on the front."""
        return bool(np.isnan(values).any()) or any(
            dominates(other, v, values, violation, self.maximize) or (
                np.array_equal(other, values) and v <= violation)
            for other, v, _ in self.members.values())

    def observe(self, record: dict[str, Any]) -> None:
        """Offer a logged record (the search's live path and a replay of the log alike)."""
        if self.eligible(record):
            self.add(record["index"], *self.point(record), record)

    @property
    def indices(self) -> list[int]:
        return sorted(self.members)

    def to_json(self) -> dict[str, Any]:
        rows = []
        for i in self.indices:
            values, violation, record = self.members[i]
            rows.append({"index": i, "genome": record["genome"],
                         "values": dict(zip(self.names, map(float, values))),
                         "violation": violation, "weights": front_entry(i)})
        return {"objectives": [{"name": n, "direction": "max" if m else "min"}
                               for n, m in zip(self.names, self.maximize)], "front": rows}

    # -- the run directory --------------------------------------------------------------------
    def save(self, run_dir: Path) -> None:
        """Rewrite pareto.json and drop the weights of candidates no longer on the front."""
        atomic_write(run_dir / PARETO_FILE, json.dumps(self.to_json(), indent=2).encode())
        folder = run_dir / FRONT_DIR
        if folder.is_dir():
            keep = {RunLayout(run_dir).front_weights(i) for i in self.members}
            for path in folder.iterdir():
                if path not in keep:
                    path.unlink(missing_ok=True)

    @staticmethod
    def save_weights(run_dir: Path, record: dict[str, Any],
                     state_dict: dict[str, torch.Tensor]) -> None:
        """A member's weights (atomic), with its genome's key (``layout.keyed``)."""
        index = record["index"]
        (run_dir / FRONT_DIR).mkdir(exist_ok=True)
        buf = io.BytesIO()
        torch.save(keyed(record["key"], state_dict), buf)
        atomic_write(RunLayout(run_dir).front_weights(index), buf.getvalue())


def violation_of(record: dict[str, Any]) -> float:
    value = record.get("violation")
    return math.inf if value is None else float(value)
