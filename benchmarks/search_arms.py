"""The benchmark arms that are this project's own ``Search`` (and random search through it).

* ``ga``: DEvol's generational GA at full fidelity, ``Search(strategy="ga")`` with DEvol's
  operators (``DEVOL_GA_OPTIONS``, as every ``ga*`` arm: ``+point1`` gives ``Search``'s own);
* ``ga_sh``: the same GA with ``fidelity=SuccessiveHalving(min_epochs, eta)``;
* ``re``: regularized (aging) evolution at full fidelity (``Search``'s default sample size);
* ``re_asha``: regularized evolution with ``fidelity=ASHA(min_epochs, eta)``;
* ``ga_hb``, ``re_hb``: the GA and regularized evolution with ``Hyperband(min_epochs, eta)``
  (synchronous brackets for the GA, asynchronous for regularized evolution);
* ``random``: uniformly random genomes at full fidelity (``peer_random.RandomStrategy``);
* ``<arm>_inherit``: that arm with ``inherit_weights=True`` (heredity: a new candidate starts
  from the trained weights of the pool member it shares the most parameters with);
* ``<arm>+<lever>[+<lever>...]``: that arm with the ablation's levers (``levers.LEVERS``:
  selection, crossover, mutation, heredity slot rule, rungs, population).

Each arm runs until it has spent its budget of training epochs (the record that reaches it is
the last one counted). Its incumbent is the search's own (``best_genome.json``); each new one
is scored once on the whole test set from the saved ``best.pt``.
"""

from __future__ import annotations

import functools
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import CANDIDATE_CAP, BudgetSpent, run_until_spent
from benchmarks.incumbents import TestScorer, event
from benchmarks.levers import lever_settings, split_arm
from benchmarks.peer_random import RandomStrategy
from pytorch_devol import ASHA, Hyperband, Search, SuccessiveHalving
from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS
from pytorch_devol.training import TrainConfig

__all__ = ["SEARCH_ARMS", "run_search"]

SEARCH_ARMS = ("ga", "ga_sh", "ga_inherit", "ga_sh_inherit", "re", "re_asha",
               "re_asha_inherit", "random", "ga_hb", "ga_hb_inherit", "re_hb", "re_hb_inherit")
_STRATEGY = {"ga": "ga", "ga_sh": "ga", "ga_hb": "ga", "re": "regularized",
             "re_asha": "regularized", "re_hb": "regularized"}
_FIDELITY = {"ga_sh": SuccessiveHalving, "re_asha": ASHA, "ga_hb": Hyperband,
             "re_hb": functools.partial(Hyperband, asynchronous=True)}


def _dir_bytes(path: Path) -> int:
    """Bytes of the regular files under ``path`` (0 when it does not exist)."""
    total = 0
    if path.is_dir():
        for p in path.rglob("*"):
            try:
                total += p.stat().st_size if p.is_file() else 0
            except OSError:  # removed while we looked
                pass
    return total


class _Watcher:
    """The record callback: events, the epoch budget, new incumbents scored on the test set,
    the peak bytes of paused states and donor weights."""

    def __init__(self, run_dir: Path, scorer: TestScorer, budget: int) -> None:
        self.run_dir, self.scorer, self.budget = run_dir, scorer, budget
        self.events: list[dict[str, Any]] = []
        self.spent, self.best_index = 0, None
        self.peak = {"states": 0, "donors": 0}

    def __call__(self, record: dict[str, Any]) -> None:
        m = record["metrics"]
        ok = m.get("status") == "ok"
        test = None
        if record["final"] and ok and not record["cached"]:
            info = json.loads((self.run_dir / "best_genome.json").read_text())
            if info["index"] != self.best_index:   # this record is the new incumbent
                self.best_index = info["index"]
                weights = torch.load(self.run_dir / "best.pt", weights_only=True)
                test = self.scorer(info["genome"], weights)
        epochs = int(record["rung_epochs"])
        seconds = float(record.get("rung_seconds") or 0.0)
        self.events.append(event(int(record["index"]), int(record["rung"]),
                                 bool(record["cached"]), epochs,
                                 seconds if math.isfinite(seconds) else 0.0,
                                 bool(record["final"]), m.get("status"),
                                 int(m.get("epochs") or 0),
                                 m.get("val_accuracy") if ok else None, test))
        for name in self.peak:
            self.peak[name] = max(self.peak[name], _dir_bytes(self.run_dir / name))
        self.spent += epochs
        if self.spent >= self.budget:
            raise BudgetSpent


def run_search(arm: str, schema: Any, data: Any, scorer: TestScorer, seed: int,
               population: int, epochs: int, min_epochs: int, eta: int,
               budget: int) -> dict[str, Any]:
    """One ``Search`` arm until it has spent ``budget`` training epochs (or its cap)."""
    name, levers = split_arm(arm)
    base = name.removesuffix("_inherit")
    lever = lever_settings(levers)
    population = lever.get("population", population)
    strategy: Any = _STRATEGY.get(base)
    if base == "random":
        strategy = RandomStrategy(schema.cardinalities, population, seed)
    fidelity = _FIDELITY[base](min_epochs=lever.get("min_epochs", min_epochs),
                               eta=lever.get("eta", eta)) if base in _FIDELITY else None
    heredity = lever.get("heredity", True) if name.endswith("_inherit") else False
    operators = {**(DEVOL_GA_OPTIONS if base.startswith("ga") else {}),
                 **lever["strategy_options"]}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        watcher = _Watcher(run_dir, scorer, budget)
        search = Search(schema, data, generations=math.ceil(CANDIDATE_CAP * budget / population),
                        population_size=population, epochs=epochs, seed=seed,
                        strategy=strategy, train_config=TrainConfig(patience=None),
                        verbose=False, progress_bar=False, run_dir=run_dir,
                        on_record=watcher, inherit_weights=heredity, fidelity=fidelity,
                        strategy_options=operators or None)
        stop = run_until_spent(search.run)
    options = dict(search.strategy_options)
    if getattr(search.strategy, "sample_size", None) is not None:
        options["sample_size"] = int(search.strategy.sample_size)
    return {"events": watcher.events, "stop": stop, "strategy": search.strategy_name,
            "population": population, "heredity": search.heredity,
            "strategy_options": options, "fidelity": repr(fidelity) if fidelity else None,
            "state_bytes": {"where": "run_dir/states and run_dir/donors on disk",
                            "peak": watcher.peak["states"],
                            "donor_peak": watcher.peak["donors"]}}
