"""Variation kernels over whole populations: random genomes, mutation, crossover.

The vectorised functions the crossover and mutation operators of :mod:`.operators` wrap.

Every function takes a ``numpy.random.Generator`` (no global RNG) and works on an ``(n, L)``
``int64`` array at once: no Python loop per genome or per gene. Inputs are assumed to be inside
the cardinalities (strategies validate on ``tell``); outputs then are too.

Differences from DEvol's operators (each available through a parameter):

* :func:`mutation_counts` draws at least ``minimum=1`` mutation (DEvol: ``minimum=0``, so early
  generations changed nothing in 63% of calls).
* :func:`mutate` by default picks distinct positions and always changes the allele
  (``force_change=True``, ``distinct=True``); DEvol picks positions with replacement and
  resamples the allele, possibly to the value it had (``force_change=False, distinct=False``).
* :func:`single_point_crossover` cuts strictly inside the genome, so a child always takes at
  least one position from each parent when ``L > 1``; DEvol's cut ``randint(0, L)`` could copy
  a parent whole (``allow_copies=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import IntArray, as_cardinalities

__all__ = [
    "mutate",
    "mutation_counts",
    "random_genomes",
    "single_point_crossover",
    "uniform_crossover",
]


def _population(genomes: npt.ArrayLike, length: int | None = None, name: str = "genomes"
                ) -> IntArray:
    arr = np.asarray(genomes)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.ndim != 2 or (length is not None and arr.shape[1] != length):
        want = f"(n, {length})" if length is not None else "(n, L)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _count(n: int, name: str = "n") -> int:
    return check_int(n, name, 0)


def random_genomes(rng: np.random.Generator, cardinalities: npt.ArrayLike, n: int) -> IntArray:
    """``n`` genomes drawn uniformly from the space: shape (n, L), ``int64``."""
    cards = as_cardinalities(cardinalities)
    n = _count(n)
    return rng.integers(0, cards, size=(n, cards.shape[0]), dtype=np.int64)


def mutation_counts(rng: np.random.Generator, generation: int, n: int, *, base: int = 3,
                    divisor: int = 4, minimum: int = 1) -> IntArray:
    """How many positions to mutate in each of ``n`` genomes, growing with the generation.

    Uniform on ``minimum .. max(base, generation // divisor) - 1`` (at least ``minimum``).
    DEvol's schedule, ``np.random.choice(max(3, gen // 4))``, is ``minimum=0``; our default
    ``minimum=1`` makes every mutation change something.
    """
    generation, n = _count(generation, "generation"), _count(n)
    divisor = check_int(divisor, "divisor")
    upper = max(_count(base, "base"), generation // divisor)
    minimum = _count(minimum, "minimum")
    return rng.integers(minimum, max(upper, minimum + 1), size=n, dtype=np.int64)


def _mutable_mask(mutable: npt.ArrayLike | None, length: int) -> npt.NDArray[np.bool_]:
    if mutable is None:
        return np.ones(length, dtype=bool)
    arr = np.asarray(mutable)
    if arr.dtype == bool:
        if arr.shape != (length,):
            raise ValueError(f"a boolean mutable mask must have shape ({length},), got {arr.shape}")
        return arr.copy()
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError("mutable must be a boolean mask or a 1-D sequence of positions")
    if arr.size and (arr.min() < 0 or arr.max() >= length):
        raise ValueError(f"mutable positions must lie in 0..{length - 1}")
    mask = np.zeros(length, dtype=bool)
    mask[arr] = True
    return mask


#: Up to this many mutations per genome, positions are drawn by Floyd's algorithm (kmax
#: vectorised steps); above it, by partial sorting of random keys (one (n, m) pass).
_FLOYD_MAX = 16


def _distinct_positions(rng: np.random.Generator, counts: IntArray, m: int, kmax: int
                        ) -> tuple[IntArray, IntArray]:
    """For each row i, ``counts[i]`` distinct positions in ``0..m-1``, a uniform subset.

    Returns (row indices, positions) of all picks.
    """
    n = counts.shape[0]
    if kmax <= _FLOYD_MAX:
        # Floyd: for j = m-c .. m-1, take t ~ U{0..j}, or j if t was already taken. A row with
        # count c joins at step j = m - c, so each row gets a uniform c-subset.
        picks = np.full((n, kmax), -1, dtype=np.int64)
        for step, j in enumerate(range(m - kmax, m)):
            t = rng.integers(0, j + 1, size=n)
            taken = (picks[:, :step] == t[:, None]).any(axis=1)
            picks[:, step] = np.where(counts >= m - j, np.where(taken, j, t), -1)
        rows, slot = np.nonzero(picks >= 0)
        return rows, picks[rows, slot]
    keys = rng.random((n, m))
    if kmax < m:
        part = np.argpartition(keys, kmax - 1, axis=1)[:, :kmax]
        order = np.argsort(np.take_along_axis(keys, part, axis=1), axis=1)
        picks = np.take_along_axis(part, order, axis=1)
    else:
        picks = np.argsort(keys, axis=1)
    chosen = np.arange(kmax) < counts[:, None]
    rows = np.broadcast_to(np.arange(n)[:, None], chosen.shape)[chosen]
    return rows, picks[chosen]


def mutate(rng: np.random.Generator, genomes: npt.ArrayLike, cardinalities: npt.ArrayLike, *,
           count: int | npt.ArrayLike | None = None, rate: float | None = None,
           force_change: bool = True, distinct: bool = True,
           mutable: Sequence[int] | npt.ArrayLike | None = None) -> IntArray:
    """Return mutated copies of ``genomes`` (n, L); the input is never modified.

    Give exactly one of:

    * ``count``: an int or one int per genome, the number of positions to mutate (e.g. from
      :func:`mutation_counts`); clipped to the number of positions that can change.
    * ``rate``: each eligible position mutates independently with this probability.

    ``force_change`` draws a new allele different from the current one (positions with a
    single allele are never picked); otherwise the allele is resampled uniformly and may stay
    the same, as in DEvol. ``distinct`` picks ``count`` different positions; otherwise
    positions are drawn with replacement (DEvol), and a position drawn twice changes once.
    ``mutable`` (positions or a boolean mask) restricts which positions may change.
    """
    cards = as_cardinalities(cardinalities)
    length = cards.shape[0]
    out = _population(genomes, length).copy()
    n = out.shape[0]
    if (count is None) == (rate is None):
        raise ValueError("give exactly one of count= or rate=")
    eligible = _mutable_mask(mutable, length)
    if force_change:
        eligible &= cards > 1
    positions = np.flatnonzero(eligible)
    m = positions.size
    if n == 0 or m == 0:
        return out
    if rate is not None:
        if not 0.0 <= float(rate) <= 1.0:
            raise ValueError(f"rate must lie in [0, 1], got {rate!r}")
        mask = np.zeros((n, length), dtype=bool)
        mask[:, positions] = rng.random((n, m)) < float(rate)
        rows, cols = np.nonzero(mask)
    else:
        counts = np.broadcast_to(np.asarray(count), (n,))
        if counts.dtype.kind not in "iu" or (counts.size and counts.min() < 0):
            raise ValueError("count must be a non-negative int or one per genome")
        counts = counts.astype(np.int64)
        if distinct:
            counts = np.minimum(counts, m)
        kmax = int(counts.max())
        if kmax == 0:
            return out
        if distinct:
            rows, cols = _distinct_positions(rng, counts, m, kmax)
            cols = positions[cols]
        else:
            picks = rng.integers(0, m, size=(n, kmax))
            chosen = np.arange(kmax) < counts[:, None]
            mask = np.zeros((n, length), dtype=bool)  # a position drawn twice changes once
            r = np.broadcast_to(np.arange(n)[:, None], chosen.shape)[chosen]
            mask[r, positions[picks[chosen]]] = True
            rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return out
    card = cards[cols]
    if force_change:
        new = rng.integers(0, card - 1, dtype=np.int64)
        new += new >= out[rows, cols]
    else:
        new = rng.integers(0, card, dtype=np.int64)
    out[rows, cols] = new
    return out


def single_point_crossover(rng: np.random.Generator, parents_a: npt.ArrayLike,
                           parents_b: npt.ArrayLike, *, allow_copies: bool = False) -> IntArray:
    """Children ``a[:cut] + b[cut:]``, one cut per pair of rows.

    The cut lies in ``1 .. L-1``, so each child takes its first gene from ``a`` and its last
    from ``b`` and is never a whole copy of one parent (when ``L > 1``). ``allow_copies=True``
    gives DEvol's cut in ``0 .. L``.
    """
    a = _population(parents_a, name="parents_a")
    b = _population(parents_b, a.shape[1], name="parents_b")
    if a.shape != b.shape:
        raise ValueError(f"parents_a and parents_b differ in shape: {a.shape} vs {b.shape}")
    n, length = a.shape
    if allow_copies or length == 1:
        cut = rng.integers(0, length + 1, size=n)
    else:
        cut = rng.integers(1, length, size=n)
    return np.where(np.arange(length) < cut[:, None], a, b)


def uniform_crossover(rng: np.random.Generator, parents_a: npt.ArrayLike,
                      parents_b: npt.ArrayLike, *, probability: float = 0.5) -> IntArray:
    """Children taking each position from ``a`` with ``probability``, else from ``b``."""
    a = _population(parents_a, name="parents_a")
    b = _population(parents_b, a.shape[1], name="parents_b")
    if a.shape != b.shape:
        raise ValueError(f"parents_a and parents_b differ in shape: {a.shape} vs {b.shape}")
    if not 0.0 <= float(probability) <= 1.0:
        raise ValueError(f"probability must lie in [0, 1], got {probability!r}")
    return np.where(rng.random(a.shape) < float(probability), a, b)
