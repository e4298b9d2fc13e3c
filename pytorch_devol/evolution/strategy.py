"""The ask/tell ``Strategy`` protocol and a base class with the bookkeeping strategies share.

A strategy proposes genomes (``ask``) and learns their fitness (``tell``). It knows the search
space only through ``cardinalities``; it never sees networks. Its whole state is a
JSON-serialisable dict, so a search can stop and resume exactly.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import (
    IntArray,
    SeedLike,
    as_cardinalities,
    check_fitness,
    check_genomes,
    genomes_from_json,
    make_rng,
    rng_from_json,
    rng_to_json,
    space_size,
)
from ._variation import random_genomes
from .keys import KeyFunc, KeyMemory
from .specs import BUILT_IN_OPERATORS, operator_spec, resolve_operator

__all__ = ["STATE_VERSION", "BaseStrategy", "CompactState", "StateMismatchError", "Strategy",
           "Updatable", "WarmStartable", "takes_violation"]

STATE_VERSION = 1
"""Version of the built-in strategies' ``state_dict`` format; ``load_state_dict`` refuses
another."""


class StateMismatchError(ValueError):
    """A saved state is sound but was saved by a strategy with other operators or settings:
    the strategy given does not continue it."""


@runtime_checkable
class Strategy(Protocol):
    """What the search loop needs from an evolution strategy.

    * ``ask(n)`` returns ``(k, L)`` ``int64`` genomes to evaluate (``k <= n`` when ``n`` is
      given; ``k == 0`` means "tell me the outstanding results first").
    * ``tell(genomes, fitness)`` reports fitness for asked genomes; NaN marks a failure and
      ranks worst.
    * ``state_dict()`` is plain JSON types; ``load_state_dict`` restores it so that the next
      asks are exactly those the original would have made.
    * ``steady_state``: True when the strategy breeds one genome at a time from whatever has
      been told (the search keeps every worker busy, asking one genome as each result
      arrives); False when it breeds whole generations (the search asks for a generation,
      trains it and tells it back before asking again). Either way a search evaluates
      ``generations x population_size`` candidates.
    * ``maximize`` is a bool for a single objective; a multi-objective strategy
      (:class:`~pytorch_devol.evolution.NSGA2`) has one bool per objective (a tuple) and its
      ``tell`` takes an ``(n, k)`` fitness array.

    Optional hooks, each a protocol of its own that the search checks with ``isinstance``
    (or, for ``violation``, `takes_violation`): :class:`Updatable`, :class:`WarmStartable`,
    :class:`CompactState`, and ``tell(genomes, fitness, violation=...)`` for constraints.
    """

    cardinalities: IntArray
    maximize: bool
    steady_state: bool

    def ask(self, n: int | None = None) -> IntArray: ...

    def tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@runtime_checkable
class Updatable(Protocol):
    """Optional: ``update(genomes, fitness)`` replaces the fitness of genomes told before. An
    asynchronous multi-fidelity search (ASHA) calls it when a promoted candidate has trained
    longer; a strategy without it is told each candidate once, at its first rung.
    ``RegularizedEvolution`` has it."""

    def update(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike) -> None: ...


@runtime_checkable
class WarmStartable(Protocol):
    """Optional: ``warm_start(genomes)``, called before the first ``ask``, makes ``genomes``
    the first ones asked, ahead of the strategy's own (a search's ``warm_start=`` needs it;
    every :class:`BaseStrategy` has it)."""

    def warm_start(self, genomes: npt.ArrayLike) -> None: ...


@runtime_checkable
class CompactState(Protocol):
    """Optional: ``state_dict(include_seen=False)`` leaves out the keys of every genome ever
    asked and ``remember(genomes)`` marks them asked again after loading. The search loop then
    checkpoints the small state and replays its log into ``remember`` on resume; a strategy
    without them is checkpointed whole. Every :class:`BaseStrategy` has both."""

    def state_dict(self, include_seen: bool = True) -> dict[str, Any]: ...

    def remember(self, genomes: npt.ArrayLike) -> None: ...


def takes_violation(strategy: Any) -> bool:
    """Whether ``strategy.tell`` takes ``violation=`` (an array, one constraint violation per
    genome, NaN for a failure): what a search with constraints needs (``NSGA2`` has it)."""
    try:
        return "violation" in inspect.signature(strategy.tell).parameters
    except (TypeError, ValueError, AttributeError):
        return False


class BaseStrategy:
    """Shared machinery: cardinalities, Generator, key memory, best-so-far, tell validation.

    ``seed`` is an int, None, a SeedSequence or a ``numpy.random.Generator``; a Generator is
    used as is (so the caller's generator advances with the strategy), and
    ``load_state_dict`` replaces it with a restored one. ``key`` (a genome -> hashable
    callable, e.g. the schema's canonical form) turns on duplicate avoidance.

    Subclasses set ``kind`` and implement ``ask``/``tell`` and the strategy-specific part of
    ``state_dict``/``load_state_dict`` on top of ``_base_state``/``_load_base_state``. Their
    operators (set by ``_use_operators``) and settings (``_settings()``) are saved in the state
    and compared when it is loaded, so a state never silently continues under other operators.
    """

    kind: ClassVar[str] = "BaseStrategy"
    steady_state: ClassVar[bool] = False

    def __init__(self, cardinalities: npt.ArrayLike, population_size: int,
                 seed: SeedLike = None, maximize: bool = True, key: KeyFunc | None = None,
                 key_retries: int = 10) -> None:
        self.cardinalities = as_cardinalities(cardinalities)
        self.population_size = check_int(population_size, "population_size")
        if not isinstance(maximize, bool | np.bool_):
            raise TypeError(f"maximize must be a bool, got {maximize!r}")
        self.maximize = bool(maximize)
        self.rng = make_rng(seed)
        self._keys = KeyMemory(key, key_retries, space_size(self.cardinalities))
        self._best_genome: IntArray | None = None
        self._best_fitness = math.nan
        self._warm = np.zeros((0, self.length), dtype=np.int64)  # warm start, not yet asked
        self.n_asked = 0
        self.n_told = 0

    @property
    def length(self) -> int:
        """Genome length L."""
        return int(self.cardinalities.shape[0])

    @property
    def best_genome(self) -> IntArray | None:
        """Best genome told so far (None until a finite fitness was told)."""
        return None if self._best_genome is None else self._best_genome.copy()

    @property
    def best_fitness(self) -> float:
        """Fitness of :attr:`best_genome` (NaN until a finite fitness was told)."""
        return self._best_fitness

    def _ask_count(self, n: int | None, default: int) -> int:
        if n is None:
            return default
        return check_int(n, "ask(n): n", 0)

    def _check_tell(self, genomes: npt.ArrayLike, fitness: npt.ArrayLike
                    ) -> tuple[IntArray, npt.NDArray[np.float64]]:
        g = check_genomes(genomes, self.cardinalities)
        f = check_fitness(fitness, g.shape[0])
        return g, f

    def _update_best(self, genomes: IntArray, fitness: npt.NDArray[np.float64]) -> None:
        finite = np.flatnonzero(~np.isnan(fitness))
        if finite.size == 0:
            return
        vals = fitness[finite]
        i = int(finite[np.argmax(vals) if self.maximize else np.argmin(vals)])
        better = (fitness[i] > self._best_fitness) if self.maximize else (
            fitness[i] < self._best_fitness)
        if self._best_genome is None or better:
            self._best_genome = genomes[i].copy()
            self._best_fitness = float(fitness[i])

    # -- operators ------------------------------------------------------------------------

    #: The operator roles this strategy uses (set by ``_use_operators``).
    _roles: tuple[str, ...] = ()

    def _use_operators(self, **given: tuple[Any, Any]) -> None:
        """Set ``self.<role>`` for each ``role=(value, default)``: an operator object, a spec
        dict or a built-in class name (see ``specs.resolve_operator``); None gives the default.
        A mutation is tried on zero genomes now, so a bad parameter fails here."""
        for role, (value, default) in given.items():
            setattr(self, role, resolve_operator(value, role, default))
        self._roles = tuple(given)
        if "mutation" in given:
            self._probe_mutation(self.mutation)  # type: ignore[attr-defined]

    def _operators(self) -> dict[str, Any]:
        """Operator objects by role (None for a role not used): saved as specs."""
        return {role: getattr(self, role) for role in self._roles}

    def _random(self, n: int, attempt: int = 0) -> IntArray:
        """``n`` uniformly random genomes (``attempt``: a key retry, the same draw)."""
        return random_genomes(self.rng, self.cardinalities, n)

    def warm_start(self, genomes: npt.ArrayLike) -> None:
        """Make ``genomes`` (at most ``population_size``, e.g. the best of an earlier run) the
        first genomes asked, in order, ahead of the strategy's own initial (random) ones; they
        count as asked for duplicate avoidance. Call it before the first ``ask``."""
        g = check_genomes(genomes, self.cardinalities, "warm_start genomes")
        if self.n_asked:
            raise ValueError("warm_start() must come before the first ask()")
        if g.shape[0] > self.population_size:
            raise ValueError(f"warm_start got {g.shape[0]} genomes; at most population_size "
                             f"({self.population_size})")
        self._warm = g
        self._keys.add(g)

    def _initial(self, n: int) -> IntArray:
        """``n`` genomes of the initial population: the warm-start genomes not yet asked
        first, then uniformly random ones with unseen keys."""
        k = min(n, self._warm.shape[0])
        head, self._warm = self._warm[:k], self._warm[k:]
        rest = self._keys.unique(self._random(n - k), self._random)
        return rest if k == 0 else np.concatenate([head, rest], axis=0)

    def _settings(self) -> dict[str, Any]:
        """Other constructor settings (JSON values) a state must agree with."""
        return {}

    def _select(self, selection: Any, fitness: npt.NDArray[np.float64], n: int,
                maximize: bool) -> IntArray:
        """Run a selection operator and check its answer: ``n`` valid member indices."""
        idx = np.asarray(selection(self.rng, fitness.copy(), n, maximize))
        if idx.shape != (n,) or (n and (idx.dtype.kind not in "iu" or idx.min() < 0
                                        or idx.max() >= fitness.size)):
            raise ValueError(f"selection {selection!r} must return {n} indices in "
                             f"0..{fitness.size - 1}, got {idx!r}")
        return idx.astype(np.int64)

    def _checked(self, out: Any, n: int, role: str, op: Any) -> IntArray:
        """An operator's output as (n, L) genomes inside the cardinalities, or ValueError
        (built-in operators are trusted: their contracts are tested)."""
        if type(op) in BUILT_IN_OPERATORS:
            return out  # type: ignore[no-any-return]
        arr = np.asarray(out)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise ValueError(f"{role} {op!r} must return shape ({n}, {self.length}), "
                             f"got {arr.shape}")
        return check_genomes(arr, self.cardinalities, f"{role} {op!r}: its output")

    def _cross(self, crossover: Any, a: IntArray, b: IntArray) -> IntArray:
        return self._checked(crossover(self.rng, a, b), a.shape[0], "crossover", crossover)

    def _vary(self, mutation: Any, genomes: IntArray, generation: int = 0,
              extra: int = 0) -> IntArray:
        out = mutation(self.rng, genomes, self.cardinalities, generation=generation,
                       extra=extra)
        return self._checked(out, genomes.shape[0], "mutation", mutation)

    def _probe_mutation(self, mutation: Any) -> None:
        """Call a mutation on zero genomes, so a bad parameter (a position outside the genome)
        fails at construction, not at the first child."""
        mutation(np.random.default_rng(0), np.zeros((0, self.length), np.int64),
                 self.cardinalities, generation=0, extra=0)

    def remember(self, genomes: npt.ArrayLike) -> None:
        """Mark genomes as already asked (duplicate avoidance), e.g. after restoring a state
        saved with ``state_dict(include_seen=False)`` from a log of every asked genome."""
        g = check_genomes(genomes, self.cardinalities)
        self._keys.add(g)

    def _base_state(self, include_seen: bool = True) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": STATE_VERSION,
            "cardinalities": [int(c) for c in self.cardinalities],
            "population_size": self.population_size,
            "maximize": self.maximize,
            "rng": rng_to_json(self.rng),
            "n_asked": self.n_asked,
            "n_told": self.n_told,
            "best_genome": None if self._best_genome is None else self._best_genome.tolist(),
            "best_fitness": None if math.isnan(self._best_fitness) else self._best_fitness,
            # Grows with every genome asked: a caller that logs every asked genome anyway
            # (the search loop) leaves it out and calls remember() after loading.
            "seen": self._keys.state_dict() if include_seen else None,
            "warm": self._warm.tolist(),  # warm-start genomes not yet asked
            "operators": {role: None if op is None else operator_spec(op)
                          for role, op in self._operators().items()},
            "settings": self._settings(),
        }

    def _load_base_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """Check that ``state`` fits this strategy; return the parsed shared fields.

        Nothing is assigned here, so a bad state leaves the strategy untouched; call
        :meth:`_apply_base_state` once the subclass has parsed its own fields too.
        """
        if not isinstance(state, dict):
            raise ValueError(f"state must be a dict, got {type(state).__name__}")
        if state.get("kind") != self.kind:
            raise ValueError(f"state is for {state.get('kind')!r}, not {self.kind!r}")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')!r}")
        if [int(c) for c in state["cardinalities"]] != self.cardinalities.tolist():
            raise ValueError("state was saved for different cardinalities")
        for name in ("population_size", "maximize"):
            mine = getattr(self, name)
            if state[name] != (list(mine) if isinstance(mine, tuple) else mine):
                raise ValueError(f"state has {name}={state[name]!r}, this strategy {mine!r}")
        # Absent from states saved before operators were objects: nothing to compare then.
        saved_ops = state.get("operators")
        if saved_ops is not None:
            mine_ops = {role: None if op is None else operator_spec(op)
                        for role, op in self._operators().items()}
            for role in sorted(set(saved_ops) | set(mine_ops)):
                if saved_ops.get(role) != mine_ops.get(role):
                    raise StateMismatchError(
                        f"state was saved with {role} {saved_ops.get(role)!r}; "
                        f"this strategy has {mine_ops.get(role)!r}")
        for name, value in (state.get("settings") or {}).items():
            if self._settings().get(name) != value:
                raise StateMismatchError(f"state has {name}={value!r}, this strategy "
                                         f"{self._settings().get(name)!r}")
        best = state["best_genome"]
        return {
            "rng": rng_from_json(state["rng"]),
            "n_asked": int(state["n_asked"]),
            "n_told": int(state["n_told"]),
            "best_genome": None if best is None else genomes_from_json(
                [best], self.cardinalities, "best_genome")[0],
            "best_fitness": math.nan if state["best_fitness"] is None else float(
                state["best_fitness"]),
            "seen": genomes_from_json(state["seen"] or [], self.cardinalities, "seen"),
            "warm": genomes_from_json(state.get("warm") or [], self.cardinalities, "warm"),
        }

    def _apply_base_state(self, parsed: dict[str, Any]) -> None:
        self.rng = parsed["rng"]
        self.n_asked = parsed["n_asked"]
        self.n_told = parsed["n_told"]
        self._best_genome = parsed["best_genome"]
        self._best_fitness = parsed["best_fitness"]
        self._keys.load_state_dict(parsed["seen"])
        self._warm = parsed["warm"]
        self._keys.add(self._warm)
