"""DEvol's generational genetic algorithm, as an ask/tell strategy, with its defects fixed.

One generation: ``ask()`` hands out the whole generation (the first is random), the caller
evaluates it and ``tell``s every genome; the next ``ask()`` breeds the next generation from it:
``int(population_size * crossover_fraction)`` children of two selected parents (single-point
crossover, then mutation) followed by the elites, the best members of the last generation,
copied unchanged (DEvol re-evaluates them, and so does this strategy: they are asked again).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import (
    SeedLike,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
    match_rows,
)
from .keys import KeyFunc
from .operators import (
    mutate,
    mutation_counts,
    random_genomes,
    single_point_crossover,
    uniform_crossover,
)
from .selection import (
    FitnessTransform,
    elite_indices,
    fitness_proportional,
    tournament,
    truncation,
)
from .strategy import BaseStrategy

__all__ = ["GeneticAlgorithm", "SelectionFunc"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: A custom selection: ``(rng, fitness, n, maximize) -> n member indices``.
SelectionFunc = Callable[[np.random.Generator, FloatArray, int, bool], IntArray]

_SELECTIONS = ("fitness_proportional", "tournament", "truncation")
_CROSSOVERS = ("single_point", "uniform")


class GeneticAlgorithm(BaseStrategy):
    """DEvol's generational GA over integer genomes (ask/tell).

    Every constant is a parameter whose default is DEvol's value, except where DEvol's
    behaviour was a defect (the DEvol value is then given; :meth:`devol_exact` sets them all):

    * ``crossover_fraction=0.95``: children per generation ``int(P * 0.95)``, the rest elites,
      at least ``min_elites=1``. Elites are the best members, best first (DEvol kept the first
      members unsorted) and are not mutated (``mutate_elites=False``; DEvol: True, in place).
    * ``selection="fitness_proportional"`` on DEvol's min-max scaled scores, with
      ``fitness_transform`` (DEvol's ``fitness`` argument) and ``selection_floor=0.05`` (the
      worst member's weight relative to the best; DEvol: 0, the worst was never chosen; ties
      no longer always select member 0). Also ``"tournament"`` (``tournament_size``),
      ``"truncation"`` (``truncation_fraction``) or a callable :data:`SelectionFunc`.
    * ``crossover="single_point"`` with a cut strictly inside the genome
      (``allow_parent_copies=False``; DEvol: True), or ``"uniform"``.
    * Mutation count per child uniform on ``min_mutations .. max(mutation_base,
      generation // mutation_divisor) - 1`` (DEvol: 3, 4 and ``min_mutations=0``, so 63% of
      DEvol's early mutate calls changed nothing; ours 1). ``force_change=True`` and
      ``distinct_positions=True`` make each mutation change a different position (DEvol: both
      False). ``mutation_rate`` replaces the count schedule by a per-position rate.
      ``mutable_positions`` restricts mutation (DEvol never mutates position 0; pass
      ``range(1, L)`` for that).
    * ``population_size=1`` leaves no room for children (``int(0.95) = 0``) unless
      ``crossover_fraction=1`` and ``min_elites=0``.

    ``ask(n)`` hands out the current generation in order, ``n`` at a time (``n=None``: all that
    remain), and returns zero rows once all are handed out but not all told. ``tell`` takes any
    subset of the handed-out genomes in any order (each is matched to an outstanding row of the
    current generation; a genome not outstanding is an error). Once the whole generation is
    told, :attr:`generation` increases; fitness is stored per row, so the arrival order does not
    change the result (except for identical genomes told with different fitness, which are
    interchangeable). With ``key``, children (and the initial population) whose key was already
    asked are bred again, at most ``key_retries`` times each, with one more mutation every
    second retry; elites are exempt.
    """

    kind = "GeneticAlgorithm"
    steady_state = False

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 seed: SeedLike = None, maximize: bool = True, key: KeyFunc | None = None, *,
                 crossover_fraction: float = 0.95, min_elites: int = 1,
                 selection: str | SelectionFunc = "fitness_proportional",
                 fitness_transform: FitnessTransform | None = None,
                 selection_floor: float = 0.05, tournament_size: int = 3,
                 truncation_fraction: float = 0.5, crossover: str = "single_point",
                 allow_parent_copies: bool = False, uniform_probability: float = 0.5,
                 mutation_base: int = 3, mutation_divisor: int = 4, min_mutations: int = 1,
                 mutation_rate: float | None = None, force_change: bool = True,
                 distinct_positions: bool = True,
                 mutable_positions: Sequence[int] | npt.ArrayLike | None = None,
                 mutate_elites: bool = False, key_retries: int = 10) -> None:
        super().__init__(cardinalities, population_size, seed, maximize, key, key_retries)
        if not 0.0 <= float(crossover_fraction) <= 1.0:
            raise ValueError(f"crossover_fraction must lie in [0, 1], got {crossover_fraction!r}")
        min_elites = check_int(min_elites, "min_elites", 0)
        if not (callable(selection) or selection in _SELECTIONS):
            raise ValueError(f"selection must be one of {_SELECTIONS} or a callable, "
                             f"got {selection!r}")
        if crossover not in _CROSSOVERS:
            raise ValueError(f"crossover must be one of {_CROSSOVERS}, got {crossover!r}")
        if mutation_rate is not None and not 0.0 <= float(mutation_rate) <= 1.0:
            raise ValueError(f"mutation_rate must lie in [0, 1], got {mutation_rate!r}")
        if not 0.0 <= float(selection_floor) <= 1.0:
            raise ValueError(f"selection_floor must lie in [0, 1], got {selection_floor!r}")
        tournament_size = check_int(tournament_size, "tournament_size")
        if not 0.0 < float(truncation_fraction) <= 1.0:
            raise ValueError(
                f"truncation_fraction must lie in (0, 1], got {truncation_fraction!r}")
        if not 0.0 <= float(uniform_probability) <= 1.0:
            raise ValueError(
                f"uniform_probability must lie in [0, 1], got {uniform_probability!r}")
        n_children = int(self.population_size * float(crossover_fraction))
        #: Elites per generation: the rest of the population after the children.
        self.n_elites = min(self.population_size,
                            max(min_elites, self.population_size - n_children))
        #: Children per generation.
        self.n_children = self.population_size - self.n_elites
        self.crossover_fraction = float(crossover_fraction)
        self.selection = selection
        self.fitness_transform = fitness_transform
        self.selection_floor = float(selection_floor)
        self.tournament_size = tournament_size
        self.truncation_fraction = float(truncation_fraction)
        self.crossover = crossover
        self.allow_parent_copies = bool(allow_parent_copies)
        self.uniform_probability = float(uniform_probability)
        self.mutation_base = mutation_base
        self.mutation_divisor = mutation_divisor
        self.min_mutations = min_mutations
        self.mutation_rate = mutation_rate
        self.force_change = bool(force_change)
        self.distinct_positions = bool(distinct_positions)
        self.mutable_positions = mutable_positions
        self.mutate_elites = bool(mutate_elites)
        # Probe the mutation schedule and mask once, so a bad parameter fails here.
        mutation_counts(np.random.default_rng(0), 0, 0, base=mutation_base,
                        divisor=mutation_divisor, minimum=min_mutations)
        mutate(np.random.default_rng(0), np.zeros((0, self.length), np.int64),
               self.cardinalities, count=0, mutable=mutable_positions)
        #: Generations fully told so far.
        self.generation = 0
        self._population: IntArray | None = None  # last fully told generation
        self._fitness: FloatArray | None = None
        self._current: IntArray | None = None  # generation being evaluated
        self._current_fitness = np.full(self.population_size, np.nan)
        self._told = np.zeros(self.population_size, dtype=bool)
        self._handed = 0

    @classmethod
    def devol_exact(cls, cardinalities: npt.ArrayLike, population_size: int,
                    seed: SeedLike = None, maximize: bool = True, **overrides: Any
                    ) -> GeneticAlgorithm:
        """A GA with DEvol's operator settings: selection floor 0, cut in ``0..L``, 0..2
        mutations early on, positions with replacement, alleles resampled, elites mutated.

        DEvol's outright bugs are not reproduced: elites are still the best members, and equal
        fitness still gives every member the same chance. (DEvol's GenomeHandler also never
        mutates position 0; pass ``mutable_positions=range(1, L)`` for that.)
        """
        settings: dict[str, Any] = {
            "selection_floor": 0.0, "allow_parent_copies": True, "min_mutations": 0,
            "force_change": False, "distinct_positions": False, "mutate_elites": True}
        settings.update(overrides)
        return cls(cardinalities, population_size, seed, maximize, **settings)

    @property
    def population(self) -> IntArray | None:
        """The last fully told generation (None before the first)."""
        return None if self._population is None else self._population.copy()

    @property
    def fitness(self) -> FloatArray | None:
        """Fitness of :attr:`population`, row for row."""
        return None if self._fitness is None else self._fitness.copy()

    @property
    def outstanding(self) -> IntArray:
        """Genomes handed out by ``ask`` and not yet told."""
        if self._current is None:
            return np.zeros((0, self.length), dtype=np.int64)
        idx = np.flatnonzero(~self._told[: self._handed])
        return self._current[idx].copy()

    # -- breeding -------------------------------------------------------------------------

    def _select(self, fitness: FloatArray, n: int) -> IntArray:
        if callable(self.selection):
            idx = np.asarray(self.selection(self.rng, fitness.copy(), n, self.maximize))
            if idx.shape != (n,) or idx.dtype.kind not in "iu" or (
                    n and (idx.min() < 0 or idx.max() >= fitness.size)):
                raise ValueError(f"selection callable must return {n} indices in "
                                 f"0..{fitness.size - 1}")
            return idx.astype(np.int64)
        if self.selection == "tournament":
            return tournament(self.rng, fitness, n, size=self.tournament_size,
                              maximize=self.maximize)
        if self.selection == "truncation":
            return truncation(self.rng, fitness, n, fraction=self.truncation_fraction,
                              maximize=self.maximize)
        return fitness_proportional(self.rng, fitness, n, maximize=self.maximize,
                                    transform=self.fitness_transform,
                                    floor=self.selection_floor)

    def _mutate(self, genomes: IntArray, extra: int = 0) -> IntArray:
        kwargs: dict[str, Any] = {"force_change": self.force_change,
                                  "distinct": self.distinct_positions,
                                  "mutable": self.mutable_positions}
        if self.mutation_rate is not None:
            return mutate(self.rng, genomes, self.cardinalities, rate=self.mutation_rate,
                          **kwargs)
        counts = mutation_counts(self.rng, self.generation, genomes.shape[0],
                                 base=self.mutation_base, divisor=self.mutation_divisor,
                                 minimum=self.min_mutations) + extra
        return mutate(self.rng, genomes, self.cardinalities, count=counts, **kwargs)

    def _children(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` children; a key retry ``attempt`` adds ``attempt // 2`` mutations each."""
        assert self._population is not None and self._fitness is not None
        a = self._population[self._select(self._fitness, n)]
        b = self._population[self._select(self._fitness, n)]
        if self.crossover == "uniform":
            kids = uniform_crossover(self.rng, a, b, probability=self.uniform_probability)
        else:
            kids = single_point_crossover(self.rng, a, b,
                                          allow_copies=self.allow_parent_copies)
        return self._mutate(kids, attempt // 2)

    def _random(self, n: int, attempt: int = 0) -> IntArray:
        return random_genomes(self.rng, self.cardinalities, n)

    def _breed(self) -> IntArray:
        if self._population is None:
            return self._keys.unique(self._random(self.population_size), self._random)
        assert self._fitness is not None
        children = self._keys.unique(self._children(self.n_children), self._children)
        elites = self._population[elite_indices(self._fitness, self.n_elites, self.maximize)]
        if self.mutate_elites:
            elites = self._mutate(elites)
        self._keys.add(elites)
        return np.concatenate([children, elites], axis=0)

    # -- ask / tell -----------------------------------------------------------------------

    def ask(self, n: int | None = None) -> IntArray:
        """The next ``n`` genomes of the current generation (``None``: all remaining).

        The first call of a generation breeds it (the very first: uniformly random).
        """
        if self._current is None:
            self._current = self._breed()
            self._current_fitness = np.full(self.population_size, np.nan)
            self._told = np.zeros(self.population_size, dtype=bool)
            self._handed = 0
        remaining = self.population_size - self._handed
        k = min(self._ask_count(n, remaining), remaining)
        rows = self._current[self._handed: self._handed + k].copy()
        self._handed += k
        self.n_asked += k
        return rows

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None:
        """Record fitness for asked genomes of the current generation (any subset, any order).

        Raises ValueError for bad shapes, out-of-bounds alleles, infinite or non-numeric
        fitness, or a genome that is not outstanding; nothing is recorded then.
        """
        g, f = self._check_tell(genomes, fitness)
        if g.shape[0] == 0:
            return
        if self._current is None:
            raise ValueError("tell() before ask(): no generation is outstanding")
        open_idx = np.flatnonzero(~self._told[: self._handed])
        k, first = g.shape[0], int(open_idx[0]) if open_idx.size else 0
        if (k <= open_idx.size and open_idx[k - 1] == first + k - 1
                and np.array_equal(g, self._current[first: first + k])):
            found = np.arange(k)  # told in the order asked: no copy, no Python loop
        else:
            found = match_rows(self._current[open_idx], g)
        missing = np.flatnonzero(found < 0)
        if missing.size:
            j = int(missing[0])
            raise ValueError(
                f"genomes[{j}] = {g[j].tolist()} was not asked in the current generation "
                "(or was already told)")
        slots = open_idx[found]
        self._current_fitness[slots] = f
        self._told[slots] = True
        self.n_told += g.shape[0]
        self._update_best(g, f)
        if self._told.all():
            self._population = self._current
            self._fitness = self._current_fitness.copy()
            self._current = None
            self._handed = 0
            self.generation += 1

    # -- state ----------------------------------------------------------------------------

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON types only, NaN fitness as None.

        ``include_seen=False`` leaves out the keys of every genome ever asked (see
        ``remember``); the current generation's are restored by ``load_state_dict``."""
        state = self._base_state(include_seen)
        state.update({
            "generation": self.generation,
            "population": None if self._population is None else self._population.tolist(),
            "fitness": None if self._fitness is None else floats_to_json(self._fitness),
            "current": None if self._current is None else self._current.tolist(),
            "current_fitness": floats_to_json(self._current_fitness),
            "told": self._told.tolist(),
            "handed": self._handed,
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (constructor settings must match)."""
        try:
            base = self._load_base_state(state)
            cards, size = self.cardinalities, self.population_size
            pop = None if state["population"] is None else genomes_from_json(
                state["population"], cards, "population")
            fit = None if state["fitness"] is None else floats_from_json(state["fitness"])
            cur = None if state["current"] is None else genomes_from_json(
                state["current"], cards, "current")
            cur_fit = floats_from_json(state["current_fitness"])
            told = np.array(state["told"], dtype=bool)
            handed = int(state["handed"])
            generation = int(state["generation"])
        except KeyError as exc:
            raise ValueError(f"state is missing the field {exc.args[0]!r}") from None
        for name, arr in (("population", pop), ("current", cur)):
            if arr is not None and arr.shape[0] != size:
                raise ValueError(f"state {name} has {arr.shape[0]} rows, expected {size}")
        if (fit is None) != (pop is None) or (fit is not None and fit.shape != (size,)):
            raise ValueError("state fitness does not match its population")
        if cur_fit.shape != (size,) or told.shape != (size,) or not 0 <= handed <= size:
            raise ValueError("state current_fitness/told/handed do not match population_size")
        self._apply_base_state(base)
        self.generation = generation
        self._population, self._fitness = pop, fit
        self._current, self._current_fitness = cur, cur_fit
        self._told, self._handed = told, handed
        if state["seen"] is None and cur is not None:  # bred, perhaps not yet handed out
            self._keys.add(cur)
