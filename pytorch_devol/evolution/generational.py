"""The bookkeeping of strategies that breed whole generations (the GA and NSGA-II).

``ask`` breeds a generation on its first call (the very first: any warm-start genomes, then
uniformly random ones) and hands it out in order, ``n`` rows at a time; ``tell`` takes any
subset of the rows handed out, in any order (each genome is matched to an outstanding row);
once every row is told the subclass closes the generation (``_close_generation``: keep the
elites, or the survivors) and :attr:`generation` increases. Children come from two parents
chosen by ``selection`` on the subclass's ``_parent_scores``, combined by ``crossover``, then
``mutation``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._common import (
    FloatArray,
    IntArray,
    floats2d_from_json,
    floats2d_to_json,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
    locate_outstanding,
)
from .strategy import BaseStrategy

__all__ = ["GenerationalStrategy"]


class GenerationalStrategy(BaseStrategy):
    """Base of generational strategies: one generation out, all of it back, then the next.

    Subclasses call ``_use_operators(selection=..., crossover=..., mutation=...)`` and
    implement ``_parent_scores`` (one float per member of ``_population`` and whether higher
    is better), ``_close_generation`` and, for several objectives, set ``n_objectives``.
    """

    steady_state = False
    #: None: one fitness per genome; k: a row of k objective values.
    n_objectives: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Generations fully told so far.
        self.generation = 0
        self._population: IntArray | None = None  # the parents of the next generation
        self._current: IntArray | None = None  # generation being evaluated
        self._current_fitness = self._no_fitness()
        self._told = np.zeros(self.population_size, dtype=bool)
        self._handed = 0

    def _no_fitness(self) -> FloatArray:
        shape = (self.population_size,) if self.n_objectives is None else (
            self.population_size, self.n_objectives)
        return np.full(shape, np.nan)

    @property
    def outstanding(self) -> IntArray:
        """Genomes handed out by ``ask`` and not yet told."""
        if self._current is None:
            return np.zeros((0, self.length), dtype=np.int64)
        return self._current[np.flatnonzero(~self._told[: self._handed])].copy()

    # -- breeding -------------------------------------------------------------------------

    def _parent_scores(self) -> tuple[FloatArray, bool]:
        raise NotImplementedError

    def _children(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` children; a key retry ``attempt`` adds ``attempt // 2`` mutations each."""
        assert self._population is not None
        scores, maximize = self._parent_scores()
        a = self._population[self._select(self.selection, scores, n, maximize)]  # type: ignore
        b = self._population[self._select(self.selection, scores, n, maximize)]  # type: ignore
        kids = self._cross(self.crossover, a, b)  # type: ignore[attr-defined]
        return self._vary(self.mutation, kids, self.generation,  # type: ignore[attr-defined]
                          attempt // 2)

    def _breed(self) -> IntArray:
        """The next generation (the first: the warm-start genomes, then uniformly random ones
        with unseen keys)."""
        if self._population is None:
            return self._initial(self.population_size)
        return self._keys.unique(self._children(self.population_size), self._children)

    def _start_generation(self) -> None:
        self._current = self._breed()
        self._current_fitness = self._no_fitness()
        self._told = np.zeros(self.population_size, dtype=bool)
        self._handed = 0

    def _close_generation(self) -> None:
        """Every row of ``_current`` is told: choose the parents of the next generation."""
        raise NotImplementedError

    # -- ask / tell -----------------------------------------------------------------------

    def ask(self, n: int | None = None) -> IntArray:
        """The next ``n`` genomes of the current generation (``None``: all remaining).

        The first call of a generation breeds it (the very first: uniformly random).
        """
        if self._current is None:
            self._start_generation()
        assert self._current is not None
        remaining = self.population_size - self._handed
        k = min(self._ask_count(n, remaining), remaining)
        rows = self._current[self._handed: self._handed + k].copy()
        self._handed += k
        self.n_asked += k
        return rows

    def _record(self, genomes: IntArray, fitness: FloatArray) -> IntArray:
        """Store told fitness in the rows of the current generation they answer; return
        those rows. ValueError (nothing stored) for a genome that is not outstanding."""
        if self._current is None:
            raise ValueError("tell() before ask(): no generation is outstanding")
        slots = locate_outstanding(self._current, self._told, self._handed, genomes)
        self._current_fitness[slots] = fitness
        self._told[slots] = True
        self.n_told += genomes.shape[0]
        return slots

    def _end_generation_if_told(self) -> None:
        if self._told.all():
            self._close_generation()
            self._current = None
            self._handed = 0
            self.generation += 1

    # -- state ----------------------------------------------------------------------------

    def _fitness_json(self, values: FloatArray) -> list[Any]:
        return floats_to_json(values) if self.n_objectives is None else floats2d_to_json(values)

    def _fitness_from_json(self, values: Any) -> FloatArray:
        return floats_from_json(values) if self.n_objectives is None else floats2d_from_json(
            values, self.n_objectives)

    def _generation_state(self) -> dict[str, Any]:
        """The generation in progress, as JSON values."""
        return {
            "generation": self.generation,
            "current": None if self._current is None else self._current.tolist(),
            "current_fitness": self._fitness_json(self._current_fitness),
            "told": self._told.tolist(),
            "handed": self._handed,
        }

    def _parse_generation_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_generation_state` parsed and checked (KeyError for a missing field)."""
        size = self.population_size
        cur = None if state["current"] is None else genomes_from_json(
            state["current"], self.cardinalities, "current")
        parsed = {"generation": int(state["generation"]), "current": cur,
                  "current_fitness": self._fitness_from_json(state["current_fitness"]),
                  "told": np.array(state["told"], dtype=bool), "handed": int(state["handed"])}
        if (cur is not None and cur.shape[0] != size) or \
                parsed["current_fitness"].shape != self._no_fitness().shape or \
                parsed["told"].shape != (size,) or not 0 <= parsed["handed"] <= size:
            raise ValueError("state current generation does not match population_size")
        return parsed

    def _apply_generation_state(self, parsed: dict[str, Any], seen_saved: bool) -> None:
        self.generation = parsed["generation"]
        self._current, self._current_fitness = parsed["current"], parsed["current_fitness"]
        self._told, self._handed = parsed["told"], parsed["handed"]
        if not seen_saved and self._current is not None:  # bred, perhaps not yet handed out
            self._keys.add(self._current)
