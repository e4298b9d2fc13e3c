"""``SearchResult``: what a finished (or interrupted) search hands back, read from its run dir."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from ..schema import GenomeSchema
from .front import ParetoFront
from .incumbent import Incumbent
from .layout import RunLayout, unkeyed
from .record import Record
from .retrain import RetrainSummary, retrain_run
from .store import RunStore, damaged, load_into, load_pt

__all__ = ["SearchResult", "load_result", "retrain"]


class SearchResult:
    """The best genome, its metrics and model, and the history of every candidate.

    ``history`` is the list of records of ``results.jsonl`` (one dict per evaluated candidate:
    index, generation, genome, cached, fitness, metrics, ...; with a fidelity scheduler, one
    per candidate per rung reached, with ``rung``, ``rung_epochs`` and ``final``). Only final
    records (trained at the full budget) rank as the best.
    """

    def __init__(self, run_dir: str | Path, schema: GenomeSchema, metric: str, maximize: bool,
                 objectives: list[dict[str, str]] | None = None,
                 gene_modules: Iterable[str] | None = None):
        self.run_dir = Path(run_dir)
        self._gene_modules = list(gene_modules or ())
        self.schema, self.metric, self.maximize = schema, metric, maximize
        self.objectives = objectives  # [{"name", "direction"}] of a multi-objective search
        self.history: list[Record] = RunStore(self.run_dir).checked_log()[0]

    def _ranked(self) -> list[dict[str, Any]]:
        trained = [r for r in self.history if r["fitness"] is not None and not r["cached"]
                   and r["final"]]
        return sorted(trained, key=lambda r: (-r["fitness"] if self.maximize else r["fitness"],
                                              r["index"]))

    def top(self, k: int = 10) -> list[dict[str, Any]]:
        """The ``k`` best distinct trained candidates, best first."""
        return self._ranked()[:k]

    @property
    def best_record(self) -> dict[str, Any] | None:
        ranked = self._ranked()
        return ranked[0] if ranked else None

    @property
    def best_genome(self) -> np.ndarray | None:
        record = self.best_record
        return None if record is None else np.asarray(record["genome"], dtype=np.int64)

    @property
    def best_fitness(self) -> float:
        record = self.best_record
        return math.nan if record is None else float(record["fitness"])

    @property
    def best_metrics(self) -> dict[str, Any]:
        record = self.best_record
        return {} if record is None else dict(record["metrics"])

    @property
    def best_model(self) -> nn.Sequential | None:
        """A new copy of the best network with its trained weights (``best.pt``), in eval
        mode."""
        record = self.best_record
        if record is None:
            return None
        model = self.schema.build_model(record["genome"])
        model.load_state_dict(RunStore(self.run_dir).best_weights(index=record["index"]))
        return model.eval()

    @property
    def pareto_front(self) -> list[dict[str, Any]]:
        """The records on the Pareto front of a multi-objective search (by index; empty for a
        single-objective one): no fully trained candidate dominates them
        (``search.front``); with a fidelity scheduler, only top-rung results count."""
        if not self.objectives:
            return []
        front = ParetoFront([o["name"] for o in self.objectives],
                            [o["direction"] == "max" for o in self.objectives])
        for r in self.history:
            front.observe(r)
        return [front.members[i][2] for i in front.indices]

    def model(self, index: int) -> nn.Sequential:
        """The trained network of candidate ``index``: the best, or any Pareto-front member
        (their weights are kept), in eval mode."""
        record = next((r for r in self.history if r["index"] == index and not r["cached"]),
                      None)
        if record is None:
            raise ValueError(f"{self.run_dir}: no trained candidate {index}")
        best = self.best_record
        path = RunLayout(self.run_dir).front_weights(index)
        if best is not None and best["index"] == index:
            state = RunStore(self.run_dir).best_weights(index=index)
        elif path.exists():
            payload = load_pt(path)
            try:
                state = unkeyed(payload, tuple(record["key"]))
            except ValueError as err:
                raise damaged(path, str(err)) from None
        else:
            raise ValueError(f"{self.run_dir}: the weights of candidate {index} were not kept "
                             "(only the best and the Pareto front's are)")
        return load_into(self.schema.build_model(record["genome"]), state, path).eval()

    def lineage(self, index: int) -> list[dict[str, Any]]:
        """Candidate ``index``'s final record, then its donor's, and so on back to a network
        that started from random weights (``inherit_weights``; one record without it). A
        warm-started record's parent is in its ``parent_run``: the chain goes on in that
        run's records, while its directory is still there."""
        run, finals = str(self.run_dir), _finals(self.history)
        chain: list[dict[str, Any]] = []
        seen: set[tuple[str, int]] = set()
        while index in finals and (run, index) not in seen:
            seen.add((run, index))
            chain.append(finals[index])
            parent, parent_run = chain[-1]["parent"], chain[-1].get("parent_run")
            if parent is None:
                break
            if parent_run is not None and parent_run != run:
                run = parent_run
                finals = _finals(RunStore(run).records()) if RunStore(run).exists() else {}
            index = parent
        return chain

    def describe(self) -> list[str]:
        genome = self.best_genome
        return [] if genome is None else self.schema.describe(genome)

    def anytime(self) -> list[dict[str, float]]:
        """After each record, in log order: the cumulative training ``epochs`` and
        ``seconds`` spent so far and the best final validation ``fitness`` by then, with that
        candidate's ``test_accuracy`` (NaN before any final record): anytime performance."""
        out, epochs, seconds, incumbent = [], 0, 0.0, Incumbent(self.maximize)
        for r in self.history:
            if not r["cached"]:
                epochs += r["rung_epochs"]
                seconds += r["rung_seconds"]
            incumbent.observe(r)
            best = incumbent.record
            test = None if best is None else best["metrics"].get("test_accuracy")
            out.append({"epochs": epochs, "seconds": seconds,
                        "fitness": math.nan if best is None else best["fitness"],
                        "test_accuracy": math.nan if test is None else test})
        return out

    def counts(self) -> dict[str, int]:
        """How many candidates (by index, whatever rungs they reached) were evaluated,
        trained, reused as a cached copy, failed, or skipped untrained as infeasible."""
        return {
            "evaluated": len({r["index"] for r in self.history}),
            "trained": len({r["index"] for r in self.history
                            if not r["cached"] and r["metrics"]["status"] != "infeasible"}),
            "cached": len({r["index"] for r in self.history if r["cached"]}),
            "failed": len({r["index"] for r in self.history
                           if r["metrics"]["status"] == "failed"}),
            "infeasible": len({r["index"] for r in self.history
                               if r["metrics"]["status"] == "infeasible"}),
        }

    def retrain(self, candidate: int | None = None, epochs: int | None = None,
                seeds: int = 3, train_on: str = "train", **options: Any) -> Any:
        """Retrain candidate ``candidate`` (default: the best) from scratch with ``seeds``
        seeds and return its `RetrainSummary` (test metrics' mean and sd); see
        ``pytorch_devol.search.retrain.retrain`` for ``options``."""
        return retrain_run(self, candidate, epochs, seeds, train_on, **options)

    def __repr__(self) -> str:
        return (f"SearchResult(run_dir={str(self.run_dir)!r}, best {self.metric}="
                f"{self.best_fitness:.4f}, {self.counts()})")


def _finals(records: list[Record]) -> dict[int, Record]:
    """The final record of each candidate, by index."""
    return {r["index"]: r for r in records if r["final"]}


def load_result(run_dir: str | Path,
                gene_modules: Iterable[str] | None = None) -> SearchResult:
    """Read a run directory (finished or not) without running anything.

    The run directory is data: the gene types it names must be built in or already defined;
    ``gene_modules`` names modules you trust to define the others (imported first).
    """
    config = RunStore(run_dir).config()
    schema = GenomeSchema.from_spec(config["schema"], gene_modules)
    search = config["search"]
    return SearchResult(run_dir, schema, search["metric"], search["maximize"],
                        search.get("objectives"), gene_modules)


def retrain(run_dir: str | os.PathLike[str], candidate: int | None = None,
            epochs: int | None = None, seeds: int = 3, train_on: str = "train", *,
            patience: int | None | str = "search",
            data: Any = None, data_root: str | os.PathLike[str] | None = None,
            device: str | None = None, gene_modules: Iterable[str] | None = None,
            progress: Callable[[dict[str, Any]], None] | None = None,
            overwrite: bool = False) -> RetrainSummary:
    """Train candidate ``candidate`` (default: the best) from scratch ``seeds`` times (seeds
    0..K-1) for ``epochs`` (default: the search's full budget), with its training genes and
    the search's training settings; score each on the held-out test part.

    ``patience``: early stopping as in the search ("search"), after N epochs without a lower
    validation loss, or None: every epoch. ``train_on="train+val"`` also trains on the
    validation part: then every epoch runs (no early stopping) and the last weights are kept.
    The data is reloaded from the run's saved spec (``data_root``: where it is now, if it
    moved) or passed as ``data``; it must be the data the search used. ``progress`` is
    called with each seed's metrics. An earlier retrain of the candidate with other settings
    is refused, or replaced with ``overwrite``. Writes ``retrain/<candidate>/`` (``retrain.py``).
    """
    return retrain_run(load_result(run_dir, gene_modules), candidate, epochs, seeds, train_on,
                       patience=patience, data=data, data_root=data_root, device=device,
                       progress=progress, overwrite=overwrite)
