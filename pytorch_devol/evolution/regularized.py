"""Regularized (aging) evolution, Real et al. 2019, as a steady-state ask/tell strategy.

The population is the ``population_size`` most recently *told* genomes; each new result pushes
out the oldest, whatever its fitness (aging). A child is a mutation of the best of
``sample_size`` members drawn uniformly with replacement (the paper's algorithm). Because it
needs no generation barrier, it suits asynchronous parallel workers: ask one genome whenever a
worker is free, tell its result whenever it arrives.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import (
    FloatArray,
    IntArray,
    SeedLike,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
    match_rows,
)
from .keys import KeyFunc
from .operators import Crossover, Mutation, PointMutation, Selection, Tournament
from .strategy import BaseStrategy

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(BaseStrategy):
    """Aging evolution over integer genomes (ask/tell, steady state).

    * ``ask(n)`` returns ``n`` genomes (``n=None``: one). The first ``population_size``
      genomes handed out are uniformly random (the initial population, less any genomes told
      without being asked; ``warm_start(genomes)`` puts given genomes first); after that
      each is a child of a tournament winner among the members told so far. While nothing
      has been told yet, asks keep returning random genomes, so asynchronous workers never
      wait.
    * ``tell`` accepts any subset of asked genomes, in any order and at any time, and also
      genomes that were never asked (e.g. results of an earlier run used as a warm start).
      Told genomes join the population in the order given; the oldest leave. Tell order is
      therefore part of the algorithm, as in the paper.
    * Parents are chosen by ``selection``, by default ``Tournament(k=sample_size)`` (the
      paper's sample of ``sample_size`` members; a ``selection`` given takes its place). A
      child is its parent after ``mutation``, by default ``PointMutation(count=1)`` (the
      paper's single mutation, always a change). With a ``crossover`` (default None: none,
      as in the paper), a child is the crossover of two selected parents, then mutated.
    * NaN fitness ranks worst in tournaments. With ``key``, genomes whose key was already
      asked or told are drawn again, at most ``key_retries`` times each, with one more
      mutation every second retry.
    """

    kind = "RegularizedEvolution"
    steady_state = True

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 sample_size: int | None = None, seed: SeedLike = None, maximize: bool = True,
                 key: KeyFunc | None = None, *,
                 selection: Selection | str | dict[str, Any] | None = None,
                 crossover: Crossover | str | dict[str, Any] | None = None,
                 mutation: Mutation | str | dict[str, Any] | None = None,
                 key_retries: int = 10) -> None:
        super().__init__(cardinalities, population_size, seed, maximize, key, key_retries)
        if sample_size is not None and (
                isinstance(sample_size, bool) or not isinstance(sample_size, int | np.integer)
                or not 1 <= sample_size <= self.population_size):
            raise ValueError(f"sample_size must be an int in 1..population_size "
                             f"({self.population_size}), got {sample_size!r}")
        if sample_size is None and selection is None:
            raise ValueError("sample_size is required (a tournament among that many members, "
                             "the paper's algorithm), unless selection= is given")
        #: The paper's sample size S: the default selection's tournament size (a ``selection``
        #: given replaces that tournament).
        self.sample_size = None if sample_size is None else int(sample_size)
        default_selection = Tournament(k=self.sample_size or 1)
        self._use_operators(selection=(selection, default_selection),
                            crossover=(crossover, None), mutation=(mutation, PointMutation()))
        #: The operators (frozen objects); ``crossover`` None: children are mutated parents.
        self.selection: Selection
        self.crossover: Crossover | None
        self.mutation: Mutation
        # Ring buffer of the population: slot order is part of the state (sampling uses it).
        self._ring = np.zeros((self.population_size, self.length), dtype=np.int64)
        self._ring_fitness = np.full(self.population_size, np.nan)
        self._inserted = 0
        self._random_handed = 0
        self._unasked_told = 0  # told genomes that were never asked (a warm start)
        self._pending = np.zeros((0, self.length), dtype=np.int64)  # asked, not told

    @property
    def size(self) -> int:
        """Current number of members (at most ``population_size``)."""
        return min(self._inserted, self.population_size)

    def _age_order(self) -> IntArray:
        if self._inserted <= self.population_size:
            return np.arange(self._inserted)
        return np.roll(np.arange(self.population_size), -(self._inserted % self.population_size))

    @property
    def population(self) -> IntArray:
        """Current members, oldest first."""
        return self._ring[self._age_order()].copy()

    @property
    def fitness(self) -> FloatArray:
        """Fitness of :attr:`population`, row for row."""
        return self._ring_fitness[self._age_order()].copy()

    @property
    def outstanding(self) -> IntArray:
        """Genomes asked and not yet told, in the order asked."""
        return self._pending.copy()

    def _children(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` children; a key retry ``attempt`` adds ``attempt // 2`` mutations each."""
        members, fitness = self._ring[: self.size], self._ring_fitness[: self.size]
        parents = members[self._select(self.selection, fitness, n, self.maximize)]
        if self.crossover is not None:
            others = members[self._select(self.selection, fitness, n, self.maximize)]
            parents = self._cross(self.crossover, parents, others)
        return self._vary(self.mutation, parents, 0, attempt // 2)

    def ask(self, n: int | None = None) -> IntArray:
        """``n`` new genomes to evaluate (``None``: one)."""
        k = self._ask_count(n, 1)
        if self.size == 0:
            n_random = k
        else:
            todo = self.population_size - self._random_handed - self._unasked_told
            n_random = min(k, max(0, todo))
        parts = [self._initial(n_random)]
        if k > n_random:
            parts.append(self._keys.unique(self._children(k - n_random), self._children))
        self._random_handed += n_random
        rows = np.concatenate(parts, axis=0)
        self._pending = np.concatenate([self._pending, rows], axis=0)
        self.n_asked += k
        return rows

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None:
        """Add told genomes to the population (in the order given); the oldest members leave.

        Raises ValueError for bad shapes, out-of-bounds alleles, infinite or non-numeric
        fitness; nothing is recorded then.
        """
        g, f = self._check_tell(genomes, fitness)
        k = g.shape[0]
        if k == 0:
            return
        found = match_rows(self._pending, g)
        self._unasked_told += int((found < 0).sum())
        self._pending = np.delete(self._pending, found[found >= 0], axis=0)
        size = self.population_size
        start = self._inserted + max(0, k - size)
        slots = (start + np.arange(min(k, size))) % size
        self._ring[slots] = g[-size:]
        self._ring_fitness[slots] = f[-size:]
        self._inserted += k
        self._keys.add(g)
        self._update_best(g, f)
        self.n_told += k

    def update(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None:
        """Replace the fitness of members already told (a better-informed score, e.g. after
        more training epochs): no aging, no new member; genomes no longer in the population
        are ignored."""
        g, f = self._check_tell(genomes, fitness)
        size = self.size
        for row, value in zip(g, f):
            hits = np.flatnonzero((self._ring[:size] == row).all(axis=1))
            self._ring_fitness[hits] = value
        self._update_best(g, f)

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON types only, NaN fitness as None
        (``include_seen=False``: see ``BaseStrategy.remember``)."""
        state = self._base_state(include_seen)
        size = self.size
        state.update({
            "sample_size": self.sample_size,
            "ring": self._ring[:size].tolist(),
            "ring_fitness": floats_to_json(self._ring_fitness[:size]),
            "inserted": self._inserted,
            "random_handed": self._random_handed,
            "unasked_told": self._unasked_told,
            "outstanding": self.outstanding.tolist(),
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (constructor settings must match)."""
        try:
            base = self._load_base_state(state)
            if state["sample_size"] != self.sample_size:  # states saved before operators
                raise ValueError(f"state has sample_size={state['sample_size']!r}, this "
                                 f"strategy {self.sample_size}")
            cards, size = self.cardinalities, self.population_size
            ring = genomes_from_json(state["ring"], cards, "ring")
            ring_fit = floats_from_json(state["ring_fitness"])
            inserted = int(state["inserted"])
            random_handed = int(state["random_handed"])
            unasked_told = int(state["unasked_told"])
            outstanding = genomes_from_json(state["outstanding"], cards, "outstanding")
        except KeyError as exc:
            raise ValueError(f"state is missing the field {exc.args[0]!r}") from None
        if ring.shape[0] != min(inserted, size) or ring_fit.shape != (ring.shape[0],):
            raise ValueError("state ring does not match its inserted count")
        self._apply_base_state(base)
        self._ring = np.zeros((size, self.length), dtype=np.int64)
        self._ring_fitness = np.full(size, np.nan)
        self._ring[: ring.shape[0]] = ring
        self._ring_fitness[: ring.shape[0]] = ring_fit
        self._inserted = inserted
        self._random_handed = random_handed
        self._unasked_told = unasked_told
        self._pending = outstanding
