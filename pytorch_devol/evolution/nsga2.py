"""NSGA-II (Deb, Pratap, Agarwal and Meyarivan 2002) over integer genomes, as ask/tell.

Generational: ``ask()`` hands out a generation of ``population_size`` genomes (the first
uniformly random), the caller tells every one with a row of objective values; then the told
generation and the current population are merged and the best ``population_size`` survive, by
non-dominated rank and then crowding distance (:mod:`.pareto`). The next generation is bred
from the survivors: parents by a binary tournament on (rank, crowding), then the same crossover
and mutation operator objects as the genetic algorithm.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import (
    SeedLike,
    check_genomes,
    check_objectives,
    check_violation,
    floats2d_from_json,
    floats2d_to_json,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
    locate_outstanding,
)
from .keys import KeyFunc
from .operators import random_genomes
from .pareto import as_directions, crowded_order_fitness, crowding_distance, non_dominated_sort
from .selection import Selection, Tournament
from .specs import resolve_operator
from .strategy import BaseStrategy
from .variation import Crossover, DevolMutation, Mutation, SinglePoint

__all__ = ["NSGA2"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _inf_to_json(values: FloatArray) -> list[float | None]:
    return [None if math.isinf(v) else float(v) for v in values.tolist()]


def _inf_from_json(values: Sequence[float | None]) -> FloatArray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=np.float64)


class NSGA2(BaseStrategy):
    """NSGA-II: multi-objective, generational, elitist (ask/tell).

    * ``directions``: one of ``"max"`` / ``"min"`` per objective, e.g. ``("max", "min")`` for
      (accuracy, parameters). :attr:`maximize` is the same as a tuple of bools.
    * ``tell(genomes, fitness, violation=None)``: ``fitness`` is ``(n, k)`` (a 1-D row for one
      genome, or a 1-D column when ``k == 1``). NaN anywhere in a row marks a failed
      candidate, dominated by every other. ``violation`` (optional, one value per row, >= 0,
      0 = feasible; e.g. ``max(0, params - 1e6)``) applies Deb's constrained domination:
      feasible beats infeasible, a smaller violation beats a larger one. NaN violation = failed.
    * ``selection`` (default ``Tournament(k=2)``) sees one float per survivor, higher = better
      by the crowded comparison (:func:`~.pareto.crowded_order_fitness`), so ``Tournament(k=2)``
      is Deb's binary tournament and any single-objective :class:`Selection` works.
      ``crossover`` (default ``SinglePoint()``) and ``mutation`` (default ``DevolMutation()``,
      its schedule following :attr:`generation`) are the GA's operator objects.
    * Survivors are not asked again (their objectives are kept). Ties on the last front are
      cut by crowding, then by age (survivors before newcomers, then the order told rows
      were asked in), so everything but the Generator is deterministic.

    ``ask``/``tell`` hand out and take a generation as :class:`GeneticAlgorithm` does (any
    subset, any order). With ``key``, children whose key was already seen are bred again.
    ``best_genome`` / ``best_fitness`` stay unset (there is no single best): see
    :attr:`pareto_set` and :attr:`pareto_front`.
    """

    kind = "NSGA2"
    steady_state = False

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 directions: Sequence[str], seed: SeedLike = None,
                 key: KeyFunc | None = None, *,
                 selection: Selection | str | dict[str, Any] | None = None,
                 crossover: Crossover | str | dict[str, Any] | None = None,
                 mutation: Mutation | str | dict[str, Any] | None = None,
                 key_retries: int = 10) -> None:
        super().__init__(cardinalities, population_size, seed, True, key, key_retries)
        if directions is None or isinstance(directions, str) or len(directions) == 0:
            raise ValueError(f"directions must give 'max' or 'min' for each objective, e.g. "
                             f"('max', 'min'); got {directions!r}")
        #: One of "max" / "min" per objective.
        self.directions = as_directions(directions, len(directions))
        #: Per objective: True when maximised (the Strategy protocol's ``maximize``).
        self.maximize = tuple(d == "max" for d in self.directions)  # type: ignore[assignment]
        self.n_objectives = len(self.directions)
        self.selection: Selection = resolve_operator(selection, "selection", Tournament(k=2))[0]
        self.crossover: Crossover = resolve_operator(crossover, "crossover", SinglePoint())[0]
        self.mutation: Mutation = resolve_operator(mutation, "mutation", DevolMutation())[0]
        self._probe_mutation(self.mutation)
        #: Generations fully told so far.
        self.generation = 0
        n, k = self.population_size, self.n_objectives
        self._population: IntArray | None = None  # survivors, best first
        self._pop_fitness = np.zeros((0, k))
        self._pop_violation = np.zeros(0)
        self._ranks = np.zeros(0, dtype=np.int64)
        self._crowding = np.zeros(0)
        self._current: IntArray | None = None  # generation being evaluated
        self._cur_fitness = np.full((n, k), np.nan)
        self._cur_violation = np.zeros(n)
        self._told = np.zeros(n, dtype=bool)
        self._handed = 0

    # -- views ----------------------------------------------------------------------------

    @property
    def population(self) -> IntArray | None:
        """The survivors, best first by (rank, crowding) (None before the first generation)."""
        return None if self._population is None else self._population.copy()

    @property
    def fitness(self) -> FloatArray | None:
        """Objectives of :attr:`population`, ``(n, k)``."""
        return None if self._population is None else self._pop_fitness.copy()

    @property
    def violation(self) -> FloatArray | None:
        """Constraint violations of :attr:`population` (0 = feasible)."""
        return None if self._population is None else self._pop_violation.copy()

    @property
    def ranks(self) -> IntArray | None:
        """Non-dominated rank of each survivor (0 = first front)."""
        return None if self._population is None else self._ranks.copy()

    @property
    def crowding(self) -> FloatArray | None:
        """Crowding distance of each survivor within its front."""
        return None if self._population is None else self._crowding.copy()

    def _front_mask(self) -> npt.NDArray[np.bool_]:
        ok = ~np.isnan(self._pop_fitness).any(axis=1) & (self._pop_violation == 0)
        return (self._ranks == 0) & ok

    @property
    def pareto_set(self) -> IntArray:
        """Genomes of the feasible, successful survivors on the first front."""
        if self._population is None:
            return np.zeros((0, self.length), dtype=np.int64)
        return self._population[self._front_mask()].copy()

    @property
    def pareto_front(self) -> FloatArray:
        """Objectives of :attr:`pareto_set`, row for row."""
        if self._population is None:
            return np.zeros((0, self.n_objectives))
        return self._pop_fitness[self._front_mask()].copy()

    @property
    def outstanding(self) -> IntArray:
        """Genomes handed out by ``ask`` and not yet told."""
        if self._current is None:
            return np.zeros((0, self.length), dtype=np.int64)
        return self._current[np.flatnonzero(~self._told[: self._handed])].copy()

    # -- breeding -------------------------------------------------------------------------

    def _operators(self) -> dict[str, Any]:
        return {"selection": self.selection, "crossover": self.crossover,
                "mutation": self.mutation}

    def _settings(self) -> dict[str, Any]:
        return {"directions": list(self.directions)}

    def _random(self, n: int, attempt: int = 0) -> IntArray:
        return random_genomes(self.rng, self.cardinalities, n)

    def _children(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` children; a key retry ``attempt`` adds ``attempt // 2`` mutations each."""
        assert self._population is not None
        score = crowded_order_fitness(self._ranks, self._crowding)
        a = self._population[self._select(self.selection, score, n, True)]
        b = self._population[self._select(self.selection, score, n, True)]
        kids = self._cross(self.crossover, a, b)
        return self._vary(self.mutation, kids, self.generation, attempt // 2)

    def _breed(self) -> IntArray:
        if self._population is None:
            return self._keys.unique(self._random(self.population_size), self._random)
        return self._keys.unique(self._children(self.population_size), self._children)

    def _survive(self, genomes: IntArray, fitness: FloatArray, violation: FloatArray) -> None:
        """Keep the best ``population_size`` rows by (rank, crowding), best first."""
        directions = list(self.directions)
        ranks = non_dominated_sort(fitness, directions, violation)
        crowd = crowding_distance(fitness, ranks)
        order = np.lexsort((np.arange(ranks.size), -crowd, ranks))[: self.population_size]
        self._population = genomes[order]
        self._pop_fitness, self._pop_violation = fitness[order], violation[order]
        self._ranks, self._crowding = ranks[order], crowd[order]

    # -- ask / tell -----------------------------------------------------------------------

    def ask(self, n: int | None = None) -> IntArray:
        """The next ``n`` genomes of the current generation (``None``: all remaining)."""
        if self._current is None:
            self._current = self._breed()
            self._cur_fitness = np.full((self.population_size, self.n_objectives), np.nan)
            self._cur_violation = np.zeros(self.population_size)
            self._told = np.zeros(self.population_size, dtype=bool)
            self._handed = 0
        remaining = self.population_size - self._handed
        k = min(self._ask_count(n, remaining), remaining)
        rows = self._current[self._handed: self._handed + k].copy()
        self._handed += k
        self.n_asked += k
        return rows

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike,
             violation: npt.ArrayLike | None = None) -> None:
        """Record ``(n, k)`` objectives (and optional violations) for asked genomes of the
        current generation. Raises ValueError for bad input, recording nothing."""
        g = check_genomes(genomes, self.cardinalities)
        f = check_objectives(fitness, g.shape[0], self.n_objectives)
        v = check_violation(violation, g.shape[0])
        if g.shape[0] == 0:
            return
        if self._current is None:
            raise ValueError("tell() before ask(): no generation is outstanding")
        slots = locate_outstanding(self._current, self._told, self._handed, g)
        self._cur_fitness[slots] = f
        self._cur_violation[slots] = v
        self._told[slots] = True
        self.n_told += g.shape[0]
        if self._told.all():
            if self._population is None:
                self._survive(self._current, self._cur_fitness, self._cur_violation)
            else:
                self._survive(np.concatenate([self._population, self._current]),
                              np.concatenate([self._pop_fitness, self._cur_fitness]),
                              np.concatenate([self._pop_violation, self._cur_violation]))
            self._current = None
            self._handed = 0
            self.generation += 1

    # -- state ----------------------------------------------------------------------------

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON types only (NaN as None; infinite
        crowding as None). ``include_seen=False``: see ``BaseStrategy.remember``."""
        state = self._base_state(include_seen)
        has_pop = self._population is not None
        state.update({
            "generation": self.generation,
            "population": self._population.tolist() if has_pop else None,  # type: ignore
            "population_fitness": floats2d_to_json(self._pop_fitness),
            "population_violation": floats_to_json(self._pop_violation),
            "ranks": self._ranks.tolist(),
            "crowding": _inf_to_json(self._crowding),
            "current": None if self._current is None else self._current.tolist(),
            "current_fitness": floats2d_to_json(self._cur_fitness),
            "current_violation": floats_to_json(self._cur_violation),
            "told": self._told.tolist(),
            "handed": self._handed,
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (constructor settings must match)."""
        k, size = self.n_objectives, self.population_size
        try:
            base = self._load_base_state(state)
            cards = self.cardinalities
            pop = None if state["population"] is None else genomes_from_json(
                state["population"], cards, "population")
            pop_fit = floats2d_from_json(state["population_fitness"], k)
            pop_vio = floats_from_json(state["population_violation"])
            ranks = np.array(state["ranks"], dtype=np.int64)
            crowd = _inf_from_json(state["crowding"])
            cur = None if state["current"] is None else genomes_from_json(
                state["current"], cards, "current")
            cur_fit = floats2d_from_json(state["current_fitness"], k)
            cur_vio = floats_from_json(state["current_violation"])
            told = np.array(state["told"], dtype=bool)
            handed, generation = int(state["handed"]), int(state["generation"])
        except KeyError as exc:
            raise ValueError(f"state is missing the field {exc.args[0]!r}") from None
        m = 0 if pop is None else pop.shape[0]
        if m > size or any(a.shape[0] != m for a in (pop_fit, pop_vio, ranks, crowd)):
            raise ValueError("state population, fitness, ranks and crowding do not match")
        if (cur is not None and cur.shape[0] != size) or cur_fit.shape != (size, k) or \
                cur_vio.shape != (size,) or told.shape != (size,) or not 0 <= handed <= size:
            raise ValueError("state current generation does not match population_size")
        self._apply_base_state(base)
        self.generation = generation
        self._population, self._pop_fitness, self._pop_violation = pop, pop_fit, pop_vio
        self._ranks, self._crowding = ranks, crowd
        self._current, self._cur_fitness, self._cur_violation = cur, cur_fit, cur_vio
        self._told, self._handed = told, handed
        if state["seen"] is None and cur is not None:  # bred, perhaps not yet handed out
            self._keys.add(cur)
