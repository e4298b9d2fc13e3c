"""DEvol's generational genetic algorithm, as an ask/tell strategy, with its defects fixed.

One generation: ``ask()`` hands out the whole generation (the first is random, after any
``warm_start`` genomes), the caller evaluates it and ``tell``s every genome; the next ``ask()``
breeds the next generation from it: ``int(population_size * crossover_fraction)`` children of
two selected parents (single-point crossover, then mutation) followed by the elites, the best
members of the last generation, copied unchanged (DEvol re-evaluates them, and so does this
strategy: they are asked again).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import (
    FloatArray,
    IntArray,
    SeedLike,
    floats_from_json,
    floats_to_json,
    genomes_from_json,
)
from ._selection import FitnessTransform, elite_indices
from .generational import GenerationalStrategy
from .keys import KeyFunc
from .operators import (
    Crossover,
    DevolMutation,
    FitnessProportional,
    Mutation,
    Selection,
    SinglePoint,
)

__all__ = ["DEVOL_OPERATORS", "GeneticAlgorithm"]

DEVOL_OPERATORS: dict[str, Any] = {
    "selection": FitnessProportional(floor=0.0),
    "crossover": SinglePoint(allow_copies=True),
    "mutation": DevolMutation(minimum=0, force_change=False, distinct=False),
}
"""DEvol's own operators (see :meth:`GeneticAlgorithm.devol_exact`)."""


class GeneticAlgorithm(GenerationalStrategy):
    """DEvol's generational GA over integer genomes (ask/tell), with pluggable operators.

    One generation is ``int(P * crossover_fraction)`` children (two parents chosen by
    ``selection``, combined by ``crossover``, then ``mutation``) followed by the elites, the
    best members of the last generation, copied unchanged. The operators are objects (see
    :class:`Selection`, :class:`Crossover`, :class:`Mutation`; a spec dict such as
    ``{"type": "Tournament", "k": 2}`` or a built-in class name such as ``"Tournament"`` works
    too). Defaults differ from DEvol only where DEvol's behaviour was a defect;
    :meth:`devol_exact` restores DEvol's:

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

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 seed: SeedLike = None, maximize: bool = True, key: KeyFunc | None = None, *,
                 selection: Selection | str | dict[str, Any] | None = None,
                 crossover: Crossover | str | dict[str, Any] | None = None,
                 mutation: Mutation | str | dict[str, Any] | None = None,
                 fitness_transform: FitnessTransform | None = None,
                 crossover_fraction: float = 0.95, min_elites: int = 1,
                 mutate_elites: bool = False, key_retries: int = 10) -> None:
        super().__init__(cardinalities, population_size, seed, maximize, key, key_retries)
        if not 0.0 <= float(crossover_fraction) <= 1.0:
            raise ValueError(f"crossover_fraction must lie in [0, 1], got {crossover_fraction!r}")
        min_elites = check_int(min_elites, "min_elites", 0)
        self._use_operators(selection=(selection, FitnessProportional()),
                            crossover=(crossover, SinglePoint()),
                            mutation=(mutation, DevolMutation()))
        #: The operators (frozen objects; replace them only between generations).
        self.selection: Selection
        self.crossover: Crossover
        self.mutation: Mutation
        if fitness_transform is not None:
            sel = self.selection
            if not isinstance(sel, FitnessProportional) or sel.transform is not None:
                raise ValueError("fitness_transform applies to FitnessProportional selection "
                                 f"without a transform, not {sel!r}")
            self.selection = FitnessProportional(floor=sel.floor, transform=fitness_transform)
        n_children = int(self.population_size * float(crossover_fraction))
        #: Elites per generation: the rest of the population after the children.
        self.n_elites = min(self.population_size,
                            max(min_elites, self.population_size - n_children))
        #: Children per generation.
        self.n_children = self.population_size - self.n_elites
        self.crossover_fraction = float(crossover_fraction)
        self.mutate_elites = bool(mutate_elites)
        self._fitness: FloatArray | None = None  # of _population, the last told generation

    @classmethod
    def devol_exact(cls, cardinalities: npt.ArrayLike, population_size: int,
                    seed: SeedLike = None, maximize: bool = True, *,
                    mutable: npt.ArrayLike | None = None, **overrides: Any
                    ) -> GeneticAlgorithm:
        """A GA with DEvol's operators (:data:`DEVOL_OPERATORS`): selection floor 0, cut in
        ``0..L``, 0..2 mutations early on, positions with replacement, alleles resampled, and
        elites mutated.

        DEvol's outright bugs are not reproduced: elites are still the best members, and equal
        fitness still gives every member the same chance. DEvol's GenomeHandler also never
        mutates position 0: pass ``mutable=range(1, L)`` for that (the mutable positions of
        DEvol's mutation). ``overrides`` are constructor keywords (an operator replaces
        DEvol's).
        """
        ops = dict(DEVOL_OPERATORS)
        if mutable is not None:
            if "mutation" in overrides:
                raise TypeError("mutable= modifies DEvol's mutation; set mutable= on your own "
                                "mutation operator instead")
            ops["mutation"] = DevolMutation(minimum=0, force_change=False, distinct=False,
                                            mutable=mutable)
        settings: dict[str, Any] = {**ops, "mutate_elites": True, **overrides}
        return cls(cardinalities, population_size, seed, maximize, **settings)

    @property
    def population(self) -> IntArray | None:
        """The last fully told generation (None before the first)."""
        return None if self._population is None else self._population.copy()

    @property
    def fitness(self) -> FloatArray | None:
        """Fitness of :attr:`population`, row for row."""
        return None if self._fitness is None else self._fitness.copy()

    # -- breeding -------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        return {"n_elites": self.n_elites, "mutate_elites": self.mutate_elites}

    def _parent_scores(self) -> tuple[FloatArray, bool]:
        assert self._fitness is not None
        return self._fitness, self.maximize

    def _breed(self) -> IntArray:
        if self._population is None:
            return self._initial(self.population_size)
        assert self._fitness is not None
        children = self._keys.unique(self._children(self.n_children), self._children)
        elites = self._population[elite_indices(self._fitness, self.n_elites, self.maximize)]
        if self.mutate_elites:
            elites = self._vary(self.mutation, elites, self.generation)
        self._keys.add(elites)
        return np.concatenate([children, elites], axis=0)

    # -- ask / tell -----------------------------------------------------------------------

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None:
        """Record fitness for asked genomes of the current generation (any subset, any order).

        Raises ValueError for bad shapes, out-of-bounds alleles, infinite or non-numeric
        fitness, or a genome that is not outstanding; nothing is recorded then.
        """
        g, f = self._check_tell(genomes, fitness)
        if g.shape[0] == 0:
            return
        self._record(g, f)
        self._update_best(g, f)
        self._end_generation_if_told()

    def _close_generation(self) -> None:
        self._population = self._current
        self._fitness = self._current_fitness.copy()

    # -- state ----------------------------------------------------------------------------

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]:
        """Everything needed to continue exactly: JSON types only, NaN fitness as None.

        ``include_seen=False`` leaves out the keys of every genome ever asked (see
        ``remember``); the current generation's are restored by ``load_state_dict``."""
        state = self._base_state(include_seen)
        state.update({
            "population": None if self._population is None else self._population.tolist(),
            "fitness": None if self._fitness is None else floats_to_json(self._fitness),
            **self._generation_state(),
        })
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (constructor settings must match)."""
        try:
            base = self._load_base_state(state)
            pop = None if state["population"] is None else genomes_from_json(
                state["population"], self.cardinalities, "population")
            fit = None if state["fitness"] is None else floats_from_json(state["fitness"])
            current = self._parse_generation_state(state)
        except KeyError as exc:
            raise ValueError(f"state is missing the field {exc.args[0]!r}") from None
        size = self.population_size
        if pop is not None and pop.shape[0] != size:
            raise ValueError(f"state population has {pop.shape[0]} rows, expected {size}")
        if (fit is None) != (pop is None) or (fit is not None and fit.shape != (size,)):
            raise ValueError("state fitness does not match its population")
        self._apply_base_state(base)
        self._population, self._fitness = pop, fit
        self._apply_generation_state(current, state["seen"] is not None)
