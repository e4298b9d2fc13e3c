"""Warm start: a new search's first genomes are an earlier run's best (``warm_start=``).

`warm_start` reads an earlier run directory as data (``config.json`` and ``results.jsonl`` with
``json``, weights with ``torch.load(weights_only=True)``; nothing is imported or unpickled), or
takes a list of genomes, and returns a `WarmStart`: plain data saved in the new run's
``config.json``, so a resume seeds the strategy with the same genomes without reading the
earlier run again. A run directory gives its best `warm_count` distinct genomes (by canonical
key, ranked by that run's own fitness on its final, successful records); a list gives all of
its distinct genomes, at most the population.

The earlier run must have searched the same schema (else ValueError naming both runs). With
``inherit_weights`` and the same data (fingerprint), each warm-start genome also starts from its
trained weights there, where the earlier run kept them (its final donor pool ``donors/``, its
``best.pt``, its Pareto front ``front/``). `WarmWeights` copies them into the new run
(``warm/<position>.pt``) before anything trains, so a resume never needs the earlier run's
files again; they go when the search ends. Other data: the genomes only, with a warning.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from collections.abc import Container, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from ..schema import InvalidGenomeError
from ..schema.heredity import inherited_state, layout, plan_inheritance
from .durable import atomic_write
from .layout import (
    BEST_WEIGHTS,
    DONORS,
    FRONT_DIR,
    WARM,
    WARM_SOURCES,
    WEIGHT_FILES,
    RunLayout,
    unkeyed,
)
from .store import RunStore

__all__ = ["WarmGenome", "WarmStart", "WarmWeights", "warm_count", "warm_start"]



def warm_count(population_size: int) -> int:
    """How many genomes an earlier run gives: half the population, rounded up, so that the
    strategy's own genomes fill the rest of the first generation."""
    return (population_size + 1) // 2


@attrs.frozen
class WarmGenome:
    """One warm-start genome and where it came from in the earlier run (None: a given list)."""

    genome: tuple[int, ...]
    index: int | None = None  # its candidate index there
    fitness: float | None = None  # its fitness there
    lineage_epochs: int = 0  # epochs its weights have seen: its lineage's and its own
    weights: str | None = None  # the file there holding its weights (None: genome only)


@attrs.frozen
class WarmStart:
    """The genomes a search starts from, and the run they came from (None: a given list)."""

    genomes: tuple[WarmGenome, ...]
    run: str | None = None

    @property
    def with_weights(self) -> int:
        return sum(g.weights is not None for g in self.genomes)

    def vectors(self) -> np.ndarray:
        return np.array([g.genome for g in self.genomes], dtype=np.int64)

    def describe(self) -> str:
        """E.g. "3 genomes from /runs/old, 2 with their trained weights"."""
        n = len(self.genomes)
        what = f"{n} genome{'s' if n != 1 else ''}"
        if self.run is None:
            return f"{what} given as a list"
        return f"{what} from {self.run}, {self.with_weights} with their trained weights"

    def to_config(self) -> dict[str, Any]:
        """Plain data for ``config.json``."""
        return {"run": self.run, "genomes": [
            {**attrs.asdict(g), "genome": list(g.genome)} for g in self.genomes]}

    @classmethod
    def from_config(cls, saved: Any, schema: Any) -> WarmStart | None:
        """What `to_config` wrote, checked as data (genomes against ``schema``, weight files
        against the names a run directory uses)."""
        if saved is None:
            return None
        try:
            genomes = []
            for entry in saved["genomes"]:
                weights = entry["weights"]
                if weights is not None and not WARM_SOURCES.fullmatch(str(weights)):
                    raise ValueError(f"unexpected weights file {weights!r}")
                genomes.append(WarmGenome(
                    tuple(int(v) for v in schema.validate(entry["genome"])),
                    None if entry["index"] is None else int(entry["index"]),
                    None if entry["fitness"] is None else float(entry["fitness"]),
                    int(entry["lineage_epochs"]), weights))
            run = saved["run"]
            return cls(tuple(genomes), None if run is None else str(run))
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the saved warm start is damaged ({err})") from None


def warm_start(source: Any, schema: Any, data: Any, population_size: int, run_dir: Any,
               inherit_weights: bool) -> WarmStart | None:
    """The `WarmStart` of ``Search(warm_start=source)``: a run directory or a list of
    genomes (None: no warm start)."""
    if source is None:
        return None
    if isinstance(source, str | os.PathLike):
        return _from_run(Path(source), schema, data, population_size, Path(run_dir),
                         inherit_weights)
    if isinstance(source, bytes) or not hasattr(source, "__len__"):
        raise TypeError("warm_start must be a run directory or a list of genomes, got "
                        f"{type(source).__name__}")
    return _from_list(source, schema, population_size)


def _from_list(genomes: Sequence[Any], schema: Any, population_size: int) -> WarmStart:
    """Given genomes, each validated (its position named), repeats of a key dropped."""
    if len(genomes) == 0:
        raise ValueError("warm_start is an empty list of genomes")
    found: dict[tuple[int, ...], WarmGenome] = {}
    for i, genome in enumerate(genomes):
        try:
            key = schema.key(genome)
            vector = tuple(int(v) for v in schema.validate(genome))
        except InvalidGenomeError as err:
            raise InvalidGenomeError(f"warm_start[{i}]: {err}") from None
        found.setdefault(key, WarmGenome(vector))
    if len(found) > population_size:
        raise ValueError(f"warm_start has {len(found)} distinct genomes; at most "
                         f"population_size ({population_size})")
    return WarmStart(tuple(found.values()))


def _from_run(source: Path, schema: Any, data: Any, population_size: int, run_dir: Path,
              inherit_weights: bool) -> WarmStart:
    """The best distinct genomes of the run directory ``source``, with their weight files
    when ``inherit_weights`` and the data is the same."""
    store = RunStore(source)
    if not store.exists():
        raise FileNotFoundError(f"warm start: {source} is not a pytorch-devol run directory "
                                "(no config.json)")
    config = store.config()
    if config.get("schema") != json.loads(json.dumps(schema.to_spec())):  # as saved
        raise ValueError(f"cannot warm-start {run_dir} from {source}: {source} searched "
                         "another schema (genes, choices or shapes); a warm start needs the "
                         "same search space")
    saved, now = (config.get("data") or {}).get("fingerprint"), data.fingerprint()
    weights = inherit_weights
    if saved != now:
        warnings.warn(f"warm start: {source} was searched on other data (fingerprint "
                      f"{str(saved)[:12]}... against {now[:12]}...): taking its genomes only, "
                      "not its weights", UserWarning, stacklevel=4)
        weights = False
    maximize = (config.get("search") or {}).get("maximize")
    if not isinstance(maximize, bool):
        raise ValueError(f"warm start: {source}/config.json does not say whether its metric "
                         "is maximised (search.maximize)")
    chosen = _best_distinct(store.records(), schema, maximize, warm_count(population_size),
                            source)
    if not chosen:
        raise ValueError(f"warm start: {source} has no successfully trained candidate to "
                         "start from")
    files = _weight_files(store) if weights else {}
    return WarmStart(tuple(WarmGenome(
        tuple(int(v) for v in r["genome"]), int(r["index"]), float(r["fitness"]),
        int(r["lineage_epochs"]) + int(r["metrics"]["epochs"]), files.get(int(r["index"])))
        for r in chosen), str(source.resolve()))


def _best_distinct(records: list[dict[str, Any]], schema: Any, maximize: bool, count: int,
                   source: Path) -> list[dict[str, Any]]:
    """The ``count`` best final, successful, trained records, one per canonical key."""
    trained = [r for r in records if r["final"] and not r["cached"] and r["fitness"] is not None
               and r["metrics"].get("status") == "ok"]
    trained.sort(key=lambda r: (-r["fitness"] if maximize else r["fitness"], r["index"]))
    chosen: dict[tuple[int, ...], dict[str, Any]] = {}
    for r in trained:
        try:
            key = schema.key(r["genome"])
        except InvalidGenomeError as err:
            raise ValueError(f"warm start: {source}, candidate {r['index']}: {err}") from None
        chosen.setdefault(key, r)
        if len(chosen) == count:
            break
    return list(chosen.values())


def _weight_files(store: RunStore) -> dict[int, str]:
    """Candidate index -> the file of ``store``'s run holding its trained weights: the final
    donor pool, the Pareto front's and the best's (checked against best_genome.json)."""
    files: dict[int, str] = {}
    for folder in (FRONT_DIR, DONORS):
        for path in sorted((store.path / folder).glob(WEIGHT_FILES)):
            if path.stem.isdigit():
                files[int(path.stem)] = f"{folder}/{path.name}"
    info = store.best_info()
    if info is not None and (store.path / BEST_WEIGHTS).exists():
        files.setdefault(int(info["index"]), BEST_WEIGHTS)
    return files


class WarmWeights:
    """The warm-start genomes' trained weights, copied into the new run before anything
    trains (``warm/<position>.pt``), and what a warm-start candidate starts from."""

    def __init__(self, path: str | Path, schema: Any, warm: WarmStart) -> None:
        self.folder, self.schema, self.warm = Path(path) / WARM, schema, warm
        self.positions = {schema.key(g.genome): p for p, g in enumerate(warm.genomes)
                          if g.weights is not None}

    def _path(self, position: int) -> Path:
        return RunLayout(self.folder.parent).warm_weights(position)

    def prepare(self, trained: Container[tuple[int, ...]]) -> None:
        """Copy the weights of every warm-start genome not ``trained`` yet (by key) that has
        no copy here; one that cannot be read trains from scratch (a warning says so)."""
        for key, position in self.positions.items():
            if key in trained or self._path(position).exists():
                continue
            entry = self.warm.genomes[position]
            assert self.warm.run is not None and entry.weights is not None
            try:
                state = _read_weights(RunStore(self.warm.run), entry,
                                      self.schema.key(entry.genome))
                plan = plan_inheritance(*[layout(self.schema, entry.genome)] * 2)
                buf = io.BytesIO()
                torch.save(inherited_state(plan, state), buf)
            except Exception as err:  # noqa: BLE001 - gone or damaged: train from scratch
                warnings.warn(f"warm start: cannot read {self.warm.run}/{entry.weights} "
                              f"({err}); candidate {entry.index}'s genome starts from random "
                              "weights instead", RuntimeWarning, stacklevel=2)
                continue
            self.folder.mkdir(exist_ok=True)
            atomic_write(self._path(position), buf.getvalue())

    def covers(self, genome: Any) -> bool:
        """Whether ``genome`` is a warm-start genome whose weights were copied here."""
        position = self.positions.get(self.schema.key(genome))
        return position is not None and self._path(position).exists()

    def initial(self, genome: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """The weights ``genome`` starts from and its record's lineage fields (None: it is
        not a warm-start genome with weights, or they cannot be read)."""
        if not self.covers(genome):
            return None
        position = self.positions[self.schema.key(genome)]
        entry = self.warm.genomes[position]
        try:
            state = torch.load(self._path(position), map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise ValueError("not a state dict")
        except Exception as err:  # noqa: BLE001 - damaged: train from scratch
            warnings.warn(f"cannot read the warm-start weights {self._path(position)} "
                          f"({err}); candidate starts from random weights instead",
                          RuntimeWarning, stacklevel=2)
            return None
        plan = plan_inheritance(*[layout(self.schema, entry.genome)] * 2)
        return state, {"parent": entry.index, "parent_run": self.warm.run,
                       "inherited_params": plan.params, "lineage_epochs": entry.lineage_epochs}

    def drop(self) -> None:
        """The search is over: no candidate starts from them again."""
        shutil.rmtree(self.folder, ignore_errors=True)


def _read_weights(store: RunStore, entry: WarmGenome,
                  key: tuple[int, ...]) -> dict[str, torch.Tensor]:
    """``entry``'s weights in the earlier run, read with ``weights_only=True``."""
    assert entry.weights is not None and entry.index is not None
    if entry.weights == BEST_WEIGHTS:  # checked against best_genome.json's checksum
        return store.best_weights(index=entry.index)
    payload = torch.load(store.path / entry.weights, map_location="cpu", weights_only=True)
    return unkeyed(payload, key)
