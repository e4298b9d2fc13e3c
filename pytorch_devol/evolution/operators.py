"""The operators every strategy takes: ``selection=``, ``crossover=`` and ``mutation=``.

A strategy is given operator objects following the small protocols :class:`Selection`,
:class:`Crossover` and :class:`Mutation`, so a researcher's operator is one small class, not a
subclass of a strategy. Each built-in one is a frozen attrs class wrapping a vectorised kernel
(``_selection.py``, ``_variation.py``): whole populations at once, randomness only from the
Generator it is given, inputs never modified.

Make your own operator a frozen attrs class, as these are: its parameters are then saved in a
strategy's ``state_dict`` and checked when the state is restored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs
import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import FloatArray, IntArray, check_probability
from ._selection import FitnessTransform, fitness_proportional, tournament, truncation
from ._variation import mutate, mutation_counts, single_point_crossover, uniform_crossover

__all__ = [
    "Crossover",
    "DevolMutation",
    "FitnessProportional",
    "FitnessTransform",
    "Mutation",
    "PointMutation",
    "RateMutation",
    "Selection",
    "SinglePoint",
    "Tournament",
    "Truncation",
    "Uniform",
]


@runtime_checkable
class Selection(Protocol):
    """A selection operator: ``(rng, fitness, n, maximize) -> n member indices``.

    ``fitness`` is a 1-D float array (NaN = failed, ranks worst); the result is an integer
    array of shape ``(n,)`` with values in ``0 .. fitness.size - 1`` (repeats allowed). Use
    only ``rng`` for randomness and do not modify ``fitness``. A plain function with this
    signature is a valid selection too; a frozen attrs class also has its parameters saved
    in (and checked against) a strategy's state.
    """

    def __call__(self, rng: np.random.Generator, fitness: FloatArray, n: int,
                 maximize: bool) -> IntArray: ...


@runtime_checkable
class Crossover(Protocol):
    """A crossover operator: ``(rng, parents_a, parents_b) -> children``.

    Both parents are ``(n, L)`` ``int64`` arrays (row ``i`` of each is one pair); the result
    is ``(n, L)`` integers, each child's alleles taken from its parents (so it stays inside the
    cardinalities). Use only ``rng`` for randomness; never modify the parents.
    """

    def __call__(self, rng: np.random.Generator, parents_a: IntArray,
                 parents_b: IntArray) -> IntArray: ...


@runtime_checkable
class Mutation(Protocol):
    """A mutation operator: ``(rng, genomes, cardinalities, *, generation, extra) -> copies``.

    ``genomes`` is ``(n, L)`` ``int64`` (``n`` may be 0); return mutated copies of the same
    shape, each allele in ``0 .. cardinalities[i] - 1``, never modifying the input.
    ``generation`` is the strategy's generation counter (0 for steady-state strategies), for
    schedules that grow with it. ``extra`` asks for that many more changes per genome: a
    strategy raises it while a key-based duplicate check keeps rejecting children; an
    operator may ignore it.
    """

    def __call__(self, rng: np.random.Generator, genomes: IntArray,
                 cardinalities: IntArray, *, generation: int = 0,
                 extra: int = 0) -> IntArray: ...


def _int_at_least(name: str, minimum: int) -> Callable[[Any], int]:
    def convert(value: Any) -> int:
        return check_int(value, name, minimum)  # type: ignore[return-value]
    return convert


def _positions(value: Any) -> tuple[int, ...] | tuple[bool, ...] | None:
    """Mutable positions as a hashable tuple: ints (positions) or bools (a mask)."""
    if value is None:
        return None
    arr = np.asarray(list(value) if isinstance(value, range) else value)
    if arr.ndim != 1 or (arr.size and arr.dtype != bool and arr.dtype.kind not in "iu"):
        raise ValueError("mutable must be None, a boolean mask or a 1-D sequence of positions")
    if arr.dtype == bool:
        return tuple(bool(v) for v in arr)
    return tuple(int(v) for v in arr)


def _mask_arg(mutable: tuple[int, ...] | tuple[bool, ...] | None) -> npt.NDArray[Any] | None:
    if mutable is None:
        return None
    if mutable and isinstance(mutable[0], bool):
        return np.array(mutable, dtype=bool)
    return np.array(mutable, dtype=np.int64)


def _flag(value: Any) -> bool:
    if isinstance(value, bool | np.bool_) or (isinstance(value, int | np.integer)
                                              and value in (0, 1)):
        return bool(value)
    raise TypeError(f"expected a bool, got {value!r}")


# -- selection ----------------------------------------------------------------------------------


@attrs.frozen
class FitnessProportional:
    """Roulette wheel on DEvol's min-max scaled scores .

    ``floor``: the worst member's weight relative to the best (DEvol: 0). ``transform``:
    DEvol's ``fitness`` argument, applied to the scaled scores (not saved in a state: pass it
    again when restoring).
    """

    floor: float = attrs.field(
        default=0.05, converter=lambda v: check_probability(v, "FitnessProportional floor"))
    transform: FitnessTransform | None = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.transform is not None and not callable(self.transform):
            raise TypeError("FitnessProportional transform must be a callable or None")

    def __call__(self, rng: np.random.Generator, fitness: FloatArray, n: int,
                 maximize: bool = True) -> IntArray:
        return fitness_proportional(rng, fitness, n, maximize=maximize,
                                    transform=self.transform, floor=self.floor)


@attrs.frozen
class Tournament:
    """The best of ``k`` members drawn uniformly with replacement;
    ``k=2`` is the binary tournament, ``k = sample_size`` regularized evolution's."""

    k: int = attrs.field(default=3, converter=_int_at_least("Tournament k", 1))

    def __call__(self, rng: np.random.Generator, fitness: FloatArray, n: int,
                 maximize: bool = True) -> IntArray:
        return tournament(rng, fitness, n, size=self.k, maximize=maximize)


@attrs.frozen
class Truncation:
    """Uniformly among the best ``ceil(fraction * size)`` members."""

    fraction: float = attrs.field(
        default=0.5,
        converter=lambda v: check_probability(v, "Truncation fraction", open_low=True))

    def __call__(self, rng: np.random.Generator, fitness: FloatArray, n: int,
                 maximize: bool = True) -> IntArray:
        return truncation(rng, fitness, n, fraction=self.fraction, maximize=maximize)


# -- crossover ----------------------------------------------------------------------------------


@attrs.frozen
class SinglePoint:
    """Children ``a[:cut] + b[cut:]``; the cut lies strictly
    inside the genome unless ``allow_copies`` (DEvol's cut in ``0..L``, which can copy a
    parent whole)."""

    allow_copies: bool = attrs.field(default=False, converter=_flag)

    def __call__(self, rng: np.random.Generator, parents_a: IntArray,
                 parents_b: IntArray) -> IntArray:
        return single_point_crossover(rng, parents_a, parents_b,
                                      allow_copies=self.allow_copies)


@attrs.frozen
class Uniform:
    """Each position from parent ``a`` with probability ``p``, else from ``b``."""

    p: float = attrs.field(default=0.5, converter=lambda v: check_probability(v, "Uniform p"))

    def __call__(self, rng: np.random.Generator, parents_a: IntArray,
                 parents_b: IntArray) -> IntArray:
        return uniform_crossover(rng, parents_a, parents_b, probability=self.p)


# -- mutation -----------------------------------------------------------------------------------


@attrs.frozen
class DevolMutation:
    """DEvol's schedule: per genome, uniform on ``minimum .. max(base, generation // divisor)
    - 1`` changes, plus ``extra``.

    DEvol's own values are ``minimum=0, force_change=False, distinct=False`` (positions drawn
    with replacement, alleles resampled, so many calls change nothing); ours change at least
    one distinct position to a new allele. ``mutable`` (positions or a boolean mask) restricts
    what may change.
    """

    base: int = attrs.field(default=3, converter=_int_at_least("DevolMutation base", 0))
    divisor: int = attrs.field(default=4, converter=_int_at_least("DevolMutation divisor", 1))
    minimum: int = attrs.field(default=1, converter=_int_at_least("DevolMutation minimum", 0))
    force_change: bool = attrs.field(default=True, converter=_flag)
    distinct: bool = attrs.field(default=True, converter=_flag)
    mutable: tuple[int, ...] | tuple[bool, ...] | None = attrs.field(
        default=None, converter=_positions)

    def __call__(self, rng: np.random.Generator, genomes: IntArray, cardinalities: IntArray,
                 *, generation: int = 0, extra: int = 0) -> IntArray:
        counts = mutation_counts(rng, generation, genomes.shape[0], base=self.base,
                                 divisor=self.divisor, minimum=self.minimum) + extra
        return mutate(rng, genomes, cardinalities, count=counts, force_change=self.force_change,
                      distinct=self.distinct, mutable=_mask_arg(self.mutable))


@attrs.frozen
class PointMutation:
    """Exactly ``count`` (+ ``extra``) changed positions per genome: regularized evolution's
    single mutation with ``count=1``."""

    count: int = attrs.field(default=1, converter=_int_at_least("PointMutation count", 0))
    force_change: bool = attrs.field(default=True, converter=_flag)
    distinct: bool = attrs.field(default=True, converter=_flag)
    mutable: tuple[int, ...] | tuple[bool, ...] | None = attrs.field(
        default=None, converter=_positions)

    def __call__(self, rng: np.random.Generator, genomes: IntArray, cardinalities: IntArray,
                 *, generation: int = 0, extra: int = 0) -> IntArray:
        return mutate(rng, genomes, cardinalities, count=self.count + extra,
                      force_change=self.force_change, distinct=self.distinct,
                      mutable=_mask_arg(self.mutable))


@attrs.frozen
class RateMutation:
    """Each eligible position changes independently with probability ``rate`` (so a genome
    may come out unchanged; ``extra`` is ignored)."""

    rate: float = attrs.field(converter=lambda v: check_probability(v, "RateMutation rate"))
    force_change: bool = attrs.field(default=True, converter=_flag)
    mutable: tuple[int, ...] | tuple[bool, ...] | None = attrs.field(
        default=None, converter=_positions)

    def __call__(self, rng: np.random.Generator, genomes: IntArray, cardinalities: IntArray,
                 *, generation: int = 0, extra: int = 0) -> IntArray:
        return mutate(rng, genomes, cardinalities, rate=self.rate,
                      force_change=self.force_change, mutable=_mask_arg(self.mutable))
