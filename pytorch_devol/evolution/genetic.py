"""DEvol's generational genetic algorithm, as an ask/tell strategy, with its defects fixed.

One generation: ``ask()`` hands out the whole generation (the first is random), the caller
evaluates it and ``tell``s every genome; the next ``ask()`` breeds the next generation from it:
``int(population_size * crossover_fraction)`` children of two selected parents (single-point
crossover, then mutation) followed by the elites, the best members of the last generation,
copied unchanged (DEvol re-evaluates them, and so does this strategy: they are asked again).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import (
    SeedLike,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
    locate_outstanding,
)
from ._legacy import GA_KEYWORDS, apply_legacy
from .keys import KeyFunc
from .operators import random_genomes
from .selection import FitnessProportional, FitnessTransform, Selection, elite_indices
from .specs import resolve_operator
from .strategy import BaseStrategy
from .variation import Crossover, DevolMutation, Mutation, SinglePoint

__all__ = ["DEVOL_OPERATORS", "GeneticAlgorithm", "SelectionFunc"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
#: A selection function: ``(rng, fitness, n, maximize) -> n member indices`` (the
#: :class:`~pytorch_devol.evolution.Selection` protocol; kept for older code).
SelectionFunc = Callable[[np.random.Generator, FloatArray, int, bool], IntArray]

#: DEvol's own operators (see :meth:`GeneticAlgorithm.devol_exact`).
DEVOL_OPERATORS: dict[str, Any] = {
    "selection": FitnessProportional(floor=0.0),
    "crossover": SinglePoint(allow_copies=True),
    "mutation": DevolMutation(minimum=0, force_change=False, distinct=False),
}


class GeneticAlgorithm(BaseStrategy):
    """DEvol's generational GA over integer genomes (ask/tell), with pluggable operators.

    One generation is ``int(P * crossover_fraction)`` children (two parents chosen by
    ``selection``, combined by ``crossover``, then ``mutation``) followed by the elites, the
    best members of the last generation, copied unchanged. The operators are objects (see
    :class:`Selection`, :class:`Crossover`, :class:`Mutation`; a built-in name or a spec dict
    such as ``{"type": "Tournament", "k": 2}`` works too). Defaults differ from DEvol only
    where DEvol's behaviour was a defect; :meth:`devol_exact` restores DEvol's:

    * ``selection=FitnessProportional(floor=0.05)`` on DEvol's min-max scaled scores, with
      ``fitness_transform`` (DEvol's ``fitness`` argument); DEvol's floor is 0 (the worst
      member was never chosen). Also :class:`Tournament`, :class:`Truncation` or any callable
      ``(rng, fitness, n, maximize) -> indices``.
    * ``crossover=SinglePoint()``: the cut lies strictly inside the genome (DEvol:
      ``allow_copies=True``); or :class:`Uniform`.
    * ``mutation=DevolMutation()``: ``1 .. max(3, generation // 4) - 1`` changes per child,
      each a different position and a new allele (DEvol: 0 .. , with replacement, resampled,
      so 63% of its early calls changed nothing); or :class:`RateMutation`,
      :class:`PointMutation`. ``DevolMutation(mutable=range(1, L))`` never mutates position 0,
      as DEvol's GenomeHandler.
    * ``crossover_fraction=0.95``, at least ``min_elites=1`` elites. Elites are the best
      members, best first (DEvol kept the first members unsorted), not mutated
      (``mutate_elites=False``; DEvol: True, in place). ``population_size=1`` leaves no room
      for children unless ``crossover_fraction=1`` and ``min_elites=0``.

    The keywords this class took before (``selection_floor``, ``tournament_size``,
    ``truncation_fraction``, ``allow_parent_copies``, ``uniform_probability``,
    ``mutation_base``, ``mutation_divisor``, ``min_mutations``, ``mutation_rate``,
    ``force_change``, ``distinct_positions``, ``mutable_positions``) still work, deprecated:
    each sets that parameter of the matching operator.

    ``ask(n)`` hands out the current generation in order, ``n`` at a time (``n=None``: all that
    remain), and returns zero rows once all are handed out but not all told. ``tell`` takes any
    subset of the handed-out genomes in any order (each is matched to an outstanding row of the
    current generation; a genome not outstanding is an error). Once the whole generation is
    told, :attr:`generation` increases; fitness is stored per row, so the arrival order does not
    change the result (except for identical genomes told with different fitness, which are
    interchangeable). With ``key``, children (and the initial population) whose key was already
    seen are bred again, at most ``key_retries`` times each, with one more mutation every
    second retry; elites are exempt.
    """

    kind = "GeneticAlgorithm"
    steady_state = False

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 seed: SeedLike = None, maximize: bool = True, key: KeyFunc | None = None, *,
                 selection: Selection | str | dict[str, Any] | None = None,
                 crossover: Crossover | str | dict[str, Any] | None = None,
                 mutation: Mutation | str | dict[str, Any] | None = None,
                 fitness_transform: FitnessTransform | None = None,
                 crossover_fraction: float = 0.95, min_elites: int = 1,
                 mutate_elites: bool = False, key_retries: int = 10,
                 **deprecated: Any) -> None:
        super().__init__(cardinalities, population_size, seed, maximize, key, key_retries)
        if not 0.0 <= float(crossover_fraction) <= 1.0:
            raise ValueError(f"crossover_fraction must lie in [0, 1], got {crossover_fraction!r}")
        min_elites = check_int(min_elites, "min_elites", 0)
        ops = apply_legacy(deprecated, GA_KEYWORDS, "GeneticAlgorithm", {
            "selection": resolve_operator(selection, "selection", FitnessProportional()),
            "crossover": resolve_operator(crossover, "crossover", SinglePoint()),
            "mutation": resolve_operator(mutation, "mutation", DevolMutation())})
        if fitness_transform is not None:
            sel = ops["selection"]
            if not isinstance(sel, FitnessProportional) or sel.transform is not None:
                raise ValueError("fitness_transform applies to FitnessProportional selection "
                                 f"without a transform, not {sel!r}")
            ops["selection"] = FitnessProportional(floor=sel.floor, transform=fitness_transform)
        #: The operators (frozen objects; replace them only between generations).
        self.selection: Selection = ops["selection"]
        self.crossover: Crossover = ops["crossover"]
        self.mutation: Mutation = ops["mutation"]
        self._probe_mutation(self.mutation)
        n_children = int(self.population_size * float(crossover_fraction))
        #: Elites per generation: the rest of the population after the children.
        self.n_elites = min(self.population_size,
                            max(min_elites, self.population_size - n_children))
        #: Children per generation.
        self.n_children = self.population_size - self.n_elites
        self.crossover_fraction = float(crossover_fraction)
        self.mutate_elites = bool(mutate_elites)
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
                    seed: SeedLike = None, maximize: bool = True, *,
                    mutable_positions: npt.ArrayLike | None = None, **overrides: Any
                    ) -> GeneticAlgorithm:
        """A GA with DEvol's operators (:data:`DEVOL_OPERATORS`): selection floor 0, cut in
        ``0..L``, 0..2 mutations early on, positions with replacement, alleles resampled, and
        elites mutated.

        DEvol's outright bugs are not reproduced: elites are still the best members, and equal
        fitness still gives every member the same chance. DEvol's GenomeHandler also never
        mutates position 0: pass ``mutable_positions=range(1, L)`` for that. ``overrides``
        are constructor keywords (an operator replaces DEvol's; the deprecated keywords
        modify DEvol's operators).
        """
        defaults = dict(DEVOL_OPERATORS)
        if mutable_positions is not None:
            if "mutation" in overrides:
                raise TypeError("mutable_positions= modifies DEvol's mutation; set mutable= on "
                                "your own mutation operator instead")
            defaults["mutation"] = DevolMutation(minimum=0, force_change=False, distinct=False,
                                                 mutable=mutable_positions)
        legacy = {k: overrides.pop(k) for k in list(overrides) if k in GA_KEYWORDS}
        ops = apply_legacy(legacy, GA_KEYWORDS, "GeneticAlgorithm.devol_exact", {
            role: resolve_operator(overrides.pop(role, None), role, default)
            for role, default in defaults.items()}, stacklevel=3)
        settings: dict[str, Any] = {"mutate_elites": True, **overrides}
        return cls(cardinalities, population_size, seed, maximize, **ops, **settings)

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

    def _operators(self) -> dict[str, Any]:
        return {"selection": self.selection, "crossover": self.crossover,
                "mutation": self.mutation}

    def _settings(self) -> dict[str, Any]:
        return {"n_elites": self.n_elites, "mutate_elites": self.mutate_elites}

    def _children(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` children; a key retry ``attempt`` adds ``attempt // 2`` mutations each."""
        assert self._population is not None and self._fitness is not None
        a = self._population[self._select(self.selection, self._fitness, n, self.maximize)]
        b = self._population[self._select(self.selection, self._fitness, n, self.maximize)]
        kids = self._cross(self.crossover, a, b)
        return self._vary(self.mutation, kids, self.generation, attempt // 2)

    def _random(self, n: int, attempt: int = 0) -> IntArray:
        return random_genomes(self.rng, self.cardinalities, n)

    def _breed(self) -> IntArray:
        if self._population is None:
            return self._keys.unique(self._random(self.population_size), self._random)
        assert self._fitness is not None
        children = self._keys.unique(self._children(self.n_children), self._children)
        elites = self._population[elite_indices(self._fitness, self.n_elites, self.maximize)]
        if self.mutate_elites:
            elites = self._vary(self.mutation, elites, self.generation)
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
        slots = locate_outstanding(self._current, self._told, self._handed, g)
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
