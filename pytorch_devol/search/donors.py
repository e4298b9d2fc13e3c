"""Donors: the trained candidates whose weights new candidates start from (``inherit_weights``).

The pool is the ``size`` best fully trained candidates in the log (by fitness, then by index),
a function of the log alone, so a resumed search rebuilds it exactly. A new candidate's donor
is chosen when it is asked: the pool member it can copy the most parameters from under the
search's slot rule (``schema.heredity``; ties go to the better member), saved with the task
in the checkpoint, so kill -9 and resume, and every evaluator, start it from the same
weights.

Donor weights live in ``donors/<index>.pt`` while the candidate is in the pool or a pending
task names it (at most the pool plus one generation's newcomers); when the search ends the
final pool's stay, for a later search's warm start (``search.warm``). They are read with
``weights_only=True``; an unreadable file means "train from scratch", with a warning, never a
failed search.

A warm start's genomes start from their weights in the earlier run instead (`WarmWeights`):
their records name that run's candidate as ``parent`` and the run as ``parent_run``.
"""

from __future__ import annotations

import io
import shutil
import warnings
from collections.abc import Container
from pathlib import Path
from typing import Any

import attrs
import torch

from ..schema.heredity import HEREDITY_RULES, inherited_state, layout, plan_inheritance
from .durable import atomic_write
from .evaluators import Task
from .layout import DONORS, WEIGHT_FILES, RunLayout, keyed, unkeyed
from .warm import WarmStart, WarmWeights

__all__ = ["DEFAULT_HEREDITY", "NO_LINEAGE", "DonorPool", "heredity_rule",
           "saved_heredity"]

#: The slot rule ``inherit_weights=True`` uses (``schema.heredity.HEREDITY_RULES``).
DEFAULT_HEREDITY = "genes"

# A record's lineage fields when it started from random weights.
NO_LINEAGE: dict[str, Any] = {"parent": None, "parent_run": None, "inherited_params": 0,
                              "lineage_epochs": 0}


def heredity_rule(inherit_weights: bool | str) -> str | None:
    """The slot rule ``Search(inherit_weights=...)`` asks for (None: no heredity)."""
    if inherit_weights is True:
        return DEFAULT_HEREDITY
    if inherit_weights is False:
        return None
    if inherit_weights in HEREDITY_RULES:
        return str(inherit_weights)
    raise ValueError(f"inherit_weights must be True, False or a slot rule "
                     f"({', '.join(HEREDITY_RULES)}), got {inherit_weights!r}")


def saved_heredity(saved: bool | str | None) -> bool | str:
    """``inherit_weights`` from a run directory's config: a run saved before the slot rules
    says True, and "genes" was the only rule then; None (older still) is no heredity."""
    return "genes" if saved is True else saved or False


class DonorPool:
    """The best ``size`` fully trained records, their weights on disk and the donor rule."""

    def __init__(self, path: str | Path, schema: Any, size: int, maximize: bool,
                 warm: WarmStart | None = None, rule: str = DEFAULT_HEREDITY) -> None:
        self.folder, self._paths = Path(path) / DONORS, RunLayout(path)
        self.warm = WarmWeights(path, schema, warm) if warm is not None and \
            warm.with_weights else None
        self.schema, self.size, self.maximize, self.rule = schema, size, maximize, rule
        self.members: list[dict[str, Any]] = []  # best first
        self._layouts: dict[tuple[int, ...], Any] = {}
        self._started: dict[int, dict[str, Any]] = {}  # index -> its lineage fields

    def _rank(self, record: dict[str, Any]) -> tuple[float, int]:
        fitness = float(record["fitness"])
        return (-fitness if self.maximize else fitness, int(record["index"]))

    def would_join(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` belongs in the pool (a trained, final, successful record that
        beats the pool's worst member or finds it not full)."""
        if not record["final"] or record["cached"] or record["fitness"] is None:
            return False
        if any(m["index"] == record["index"] for m in self.members):
            return False
        return len(self.members) < self.size or self._rank(record) < self._rank(self.members[-1])

    def observe(self, record: dict[str, Any]) -> None:
        """Take ``record`` into the pool if it belongs there (`would_join`)."""
        if self.would_join(record):
            self.members.append(record)
            self.members.sort(key=self._rank)
            del self.members[self.size:]

    def threshold(self) -> float | None:
        """The fitness a result needs to bring its weights back (None: any result)."""
        return None if len(self.members) < self.size else float(self.members[-1]["fitness"])

    def _layout(self, genome: Any) -> Any:
        key = tuple(int(v) for v in genome)
        if key not in self._layouts:
            self._layouts[key] = layout(self.schema, key)
        return self._layouts[key]

    def choose(self, genome: Any) -> int | None:
        """The index of the pool member ``genome`` can copy the most parameters from (None:
        no member shares a slot with it, or it is a warm-start genome with its own weights)."""
        if self.warm is not None and self.warm.covers(genome):
            return None
        child, key = self._layout(genome), self.schema.key(genome)
        best: tuple[int, int] | None = None
        for member in self.members:
            if tuple(member["key"]) == key:  # the same network: a cached copy, not a child
                continue
            params = plan_inheritance(child, self._layout(member["genome"]), self.rule).params
            if params > 0 and (best is None or params > best[0]):
                best = (params, int(member["index"]))
        self._layouts.pop(tuple(int(v) for v in genome), None)
        return None if best is None else best[1]

    def _path(self, index: int) -> Path:
        return self._paths.donor(int(index))

    def save(self, record: dict[str, Any], weights: dict[str, torch.Tensor]) -> None:
        """Keep ``record``'s trained weights as a donor (atomic), with its genome's key."""
        buf = io.BytesIO()
        torch.save(keyed(record["key"], weights), buf)
        index = record["index"]
        self.folder.mkdir(exist_ok=True)
        atomic_write(self._path(index), buf.getvalue())

    def initial(self, genome: Any, donor: dict[str, Any]) -> tuple[dict[str, torch.Tensor],
                                                                  int] | None:
        """The partial state dict ``genome`` starts from, taken from ``donor``'s saved weights,
        and its parameter count; None when there is nothing to copy or the file is missing
        or damaged (a warning says so: the candidate trains from scratch)."""
        plan = plan_inheritance(layout(self.schema, genome), self._layout(donor["genome"]),
                                self.rule)
        if not plan:
            return None
        path = self._path(donor["index"])
        try:
            state = unkeyed(torch.load(path, map_location="cpu", weights_only=True),
                            tuple(donor["key"]))
            return inherited_state(plan, state), plan.params
        except Exception as err:  # noqa: BLE001 - damaged or missing: train from scratch
            warnings.warn(f"cannot read the donor weights {path} ({err}); candidate starts "
                          "from random weights instead", RuntimeWarning, stacklevel=2)
            return None

    def attach(self, task: Task, donor: dict[str, Any] | None) -> Task:
        """``task`` with its donor's weights (no donor: a warm-start genome's own weights),
        ready to send (as it is when none can be read)."""
        if donor is None:
            warm = None if self.warm is None else self.warm.initial(task.genome)
            if warm is None:
                return task
            self._started[task.index] = warm[1]
            return attrs.evolve(task, initial=warm[0])
        found = self.initial(task.genome, donor)
        if found is None:
            return task
        self._started[task.index] = {
            "parent": int(donor["index"]), "parent_run": None, "inherited_params": found[1],
            "lineage_epochs": int(donor["lineage_epochs"]) + int(donor["metrics"]["epochs"])}
        return attrs.evolve(task, initial=found[0])

    def from_scratch(self, index: int) -> None:
        """Candidate ``index`` trains again from random weights (a promotion whose paused
        state was lost): its record must not name the lineage of the rung below."""
        self._started[index] = dict(NO_LINEAGE)

    def lineage(self, index: int, below: dict[str, Any] | None) -> dict[str, Any]:
        """The lineage fields of candidate ``index``'s record: what it started from when it
        was sent, or (a promotion) those of its record one rung below."""
        if index in self._started:
            return self._started.pop(index)
        if below is not None:
            return {k: below[k] for k in NO_LINEAGE}
        return dict(NO_LINEAGE)

    def prune(self, referenced: set[int]) -> None:
        """Delete the weights of candidates neither in the pool nor named by a pending task."""
        if not self.folder.is_dir():
            return
        keep = {int(m["index"]) for m in self.members} | referenced
        for path in self.folder.glob(WEIGHT_FILES):
            if path.stem.isdigit() and int(path.stem) not in keep:
                path.unlink(missing_ok=True)
        members = {tuple(int(v) for v in m["genome"]) for m in self.members}
        self._layouts = {k: v for k, v in self._layouts.items() if k in members}

    def prepare(self, trained: Container[tuple[int, ...]]) -> None:
        """Copy the warm-start weights the genomes not ``trained`` yet still need."""
        if self.warm is not None:
            self.warm.prepare(trained)

    def finish(self) -> None:
        """The search is over: keep the final pool's weights (a later search can warm-start
        from them) and drop the rest, and the warm-start copies."""
        self.prune(set())
        if self.folder.is_dir() and not any(self.folder.iterdir()):
            shutil.rmtree(self.folder, ignore_errors=True)
        if self.warm is not None:
            self.warm.drop()
