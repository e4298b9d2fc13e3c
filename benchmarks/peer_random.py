"""Random search as an ask/tell strategy, the baseline arm of the search benchmarks."""

from __future__ import annotations

from typing import Any

import numpy as np


class RandomStrategy:
    """Every genome uniformly random, index by index.

    Generational (asks a whole population, ignores what it is told), no duplicate avoidance
    (a repeated network is a cached copy in the search: no training, but it uses a candidate
    slot, as it would for a user). ``maximize`` only has to match the search's (a bool, or one
    per objective); random search never uses it."""

    steady_state = False

    def __init__(self, cardinalities: Any, population_size: int, seed: int,
                 maximize: bool | tuple[bool, ...] = True) -> None:
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        self.population_size = population_size
        self.maximize = maximize
        self.rng = np.random.default_rng(seed)
        self.n_told = 0

    def ask(self, n: int | None = None) -> np.ndarray:
        n = self.population_size if n is None else min(n, self.population_size)
        return self.rng.integers(0, self.cardinalities, size=(n, self.cardinalities.size),
                                 dtype=np.int64)

    def tell(self, genomes: Any, fitness: Any, violation: Any = None) -> None:
        self.n_told += len(np.asarray(genomes))

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "RandomStrategy", "rng": self.rng.bit_generator.state,
                "n_told": self.n_told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "RandomStrategy":
            raise ValueError(f"state is for {state.get('kind')!r}, not 'RandomStrategy'")
        self.rng.bit_generator.state = state["rng"]
        self.n_told = int(state["n_told"])
