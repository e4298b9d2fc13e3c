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
    FloatArray,
    IntArray,
    SeedLike,
    check_genomes,
    check_objective_values,
    check_violation,
    floats2d_from_json,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
)
from .generational import GenerationalStrategy
from .keys import KeyFunc
from .operators import Crossover, DevolMutation, Mutation, Selection, SinglePoint, Tournament
from .pareto import as_directions, crowded_order_fitness, crowding_distance, non_dominated_sort

__all__ = ["NSGA2"]


def _inf_to_json(values: FloatArray) -> list[float | None]:
    return [None if math.isinf(v) else float(v) for v in values.tolist()]


def _inf_from_json(values: Sequence[float | None]) -> FloatArray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=np.float64)


class NSGA2(GenerationalStrategy):
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

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 directions: Sequence[str], seed: SeedLike = None,
                 key: KeyFunc | None = None, *,
                 selection: Selection | str | dict[str, Any] | None = None,
                 crossover: Crossover | str | dict[str, Any] | None = None,
                 mutation: Mutation | str | dict[str, Any] | None = None,
                 key_retries: int = 10) -> None:
        if directions is None or isinstance(directions, str) or len(directions) == 0:
            raise ValueError(f"directions must give 'max' or 'min' for each objective, e.g. "
                             f"('max', 'min'); got {directions!r}")
        #: One of "max" / "min" per objective.
        self.directions = as_directions(directions, len(directions))
        self.n_objectives = len(self.directions)
        super().__init__(cardinalities, population_size, seed, True, key, key_retries)
        #: Per objective: True when maximised (the Strategy protocol's ``maximize``).
        self.maximize = tuple(d == "max" for d in self.directions)  # type: ignore[assignment]
        self._use_operators(selection=(selection, Tournament(k=2)),
                            crossover=(crossover, SinglePoint()),
                            mutation=(mutation, DevolMutation()))
        self.selection: Selection
        self.crossover: Crossover
        self.mutation: Mutation
        self._pop_fitness = np.zeros((0, self.n_objectives))  # of _population, best first
        self._pop_violation = np.zeros(0)
        self._ranks = np.zeros(0, dtype=np.int64)
        self._crowding = np.zeros(0)
        self._cur_violation = np.zeros(self.population_size)

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

    # -- breeding -------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"directions": list(self.directions)}

    def _parent_scores(self) -> tuple[FloatArray, bool]:
        return crowded_order_fitness(self._ranks, self._crowding), True

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

    def _start_generation(self) -> None:
        super()._start_generation()
        self._cur_violation = np.zeros(self.population_size)

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike,
             violation: npt.ArrayLike | None = None) -> None:
        """Record ``(n, k)`` objectives (and optional violations) for asked genomes of the
        current generation. Raises ValueError for bad input, recording nothing."""
        g = check_genomes(genomes, self.cardinalities)
        f = check_objective_values(fitness, g.shape[0], self.n_objectives)
        v = check_violation(violation, g.shape[0])
        if g.shape[0] == 0:
            return
        slots = self._record(g, f)
        self._cur_violation[slots] = v
        self._end_generation_if_told()

    def _close_generation(self) -> None:
        assert self._current is not None
        if self._population is None:
            self._survive(self._current, self._current_fitness, self._cur_violation)
        else:
            self._survive(np.concatenate([self._population, self._current]),
                          np.concatenate([self._pop_fitness, self._current_fitness]),
                          np.concatenate([self._pop_violation, self._cur_violation]))

    # -- state ----------------------------------------------------------------------------

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON types only (NaN as None; infinite
        crowding as None). ``include_seen=False``: see ``BaseStrategy.remember``."""
        state = self._base_state(include_seen)
        state.update({
            "population": None if self._population is None else self._population.tolist(),
            "population_fitness": self._fitness_json(self._pop_fitness),
            "population_violation": floats_to_json(self._pop_violation),
            "ranks": self._ranks.tolist(),
            "crowding": _inf_to_json(self._crowding),
            **self._generation_state(),
            "current_violation": floats_to_json(self._cur_violation),
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (constructor settings must match)."""
        k, size = self.n_objectives, self.population_size
        try:
            base = self._load_base_state(state)
            pop = None if state["population"] is None else genomes_from_json(
                state["population"], self.cardinalities, "population")
            pop_fit = floats2d_from_json(state["population_fitness"], k)
            pop_vio = floats_from_json(state["population_violation"])
            ranks = np.array(state["ranks"], dtype=np.int64)
            crowd = _inf_from_json(state["crowding"])
            current = self._parse_generation_state(state)
            cur_vio = floats_from_json(state["current_violation"])
        except KeyError as exc:
            raise ValueError(f"state is missing the field {exc.args[0]!r}") from None
        m = 0 if pop is None else pop.shape[0]
        if m > size or any(a.shape[0] != m for a in (pop_fit, pop_vio, ranks, crowd)):
            raise ValueError("state population, fitness, ranks and crowding do not match")
        if cur_vio.shape != (size,):
            raise ValueError("state current generation does not match population_size")
        self._apply_base_state(base)
        self._population, self._pop_fitness, self._pop_violation = pop, pop_fit, pop_vio
        self._ranks, self._crowding = ranks, crowd
        self._cur_violation = cur_vio
        self._apply_generation_state(current, state["seen"] is not None)
