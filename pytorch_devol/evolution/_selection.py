"""Selection kernels: ranking, elitism, fitness-proportional, tournament and truncation.

The vectorised functions the selection operators of :mod:`.operators` wrap, and the ranking
the strategies use for elitism. Every function takes a 1-D fitness array (NaN = a failed
candidate, which ranks worst whether maximising or minimising) and returns member indices.
Randomness comes from the Generator given.

Differences from DEvol's ``_Population`` (each noted where it applies):

* :func:`elite_indices` really sorts (DEvol's ``get_best`` discarded ``sorted()``'s result and
  kept the first members).
* :func:`fitness_proportional_weights` gives the worst member a nonzero weight (``floor``;
  DEvol: 0, so the worst was never chosen), and equal fitness gives equal weights (DEvol's
  ``select`` then always returned member 0 when maximising).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from .._checks import check_int
from ._common import FloatArray, IntArray

__all__ = [
    "FitnessTransform",
    "best_first",
    "elite_indices",
    "fitness_proportional",
    "fitness_proportional_weights",
    "scale_fitness",
    "tournament",
    "truncation",
]

FitnessTransform = Callable[[npt.NDArray[np.float64]], npt.ArrayLike]
"""A function from raw fitness values (1-D, NaN = failed) to the non-negative weights of
fitness-proportional selection."""


def _fitness(fitness: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(fitness, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"fitness must be a non-empty 1-D array, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("fitness must be finite or NaN, got an infinite value")
    return arr


def _n(n: int) -> int:
    return check_int(n, "n", 0)


def _badness(f: FloatArray, maximize: bool) -> FloatArray:
    """Lower is better; NaN becomes +inf so that it ranks last."""
    bad = -f if maximize else f.copy()
    bad[np.isnan(bad)] = np.inf
    return bad


def best_first(fitness: npt.ArrayLike, maximize: bool = True) -> IntArray:
    """All member indices sorted best first (stable: ties keep index order; NaN last)."""
    f = _fitness(fitness)
    return np.argsort(_badness(f, maximize), kind="stable").astype(np.int64)


def elite_indices(fitness: npt.ArrayLike, n: int, maximize: bool = True) -> IntArray:
    """The ``n`` best members, best first (DEvol's ``get_best`` never sorted: fixed)."""
    return best_first(fitness, maximize)[: _n(n)]


def scale_fitness(fitness: npt.ArrayLike, maximize: bool = True) -> FloatArray:
    """DEvol's min-max scaling: best finite member 1, worst 0, NaN stays NaN.

    When every finite value is equal, all score 1 (DEvol: 0 when maximising, 1 when
    minimising).
    """
    f = _fitness(fitness)
    out = np.full(f.shape, np.nan)
    finite = ~np.isnan(f)
    if not finite.any():
        return out
    vals = f[finite]
    lo, hi = vals.min(), vals.max()
    if hi == lo:
        out[finite] = 1.0
        return out
    span = float(hi) - float(lo)  # Python floats: overflow gives inf, no warning
    if math.isfinite(span):
        scaled = (vals - lo) / span
    else:  # the difference overflows float64: scale halves instead
        scaled = (vals / 2 - lo / 2) / (hi / 2 - lo / 2)
    out[finite] = scaled if maximize else 1.0 - scaled
    return out


def fitness_proportional_weights(fitness: npt.ArrayLike, maximize: bool = True,
                                 transform: FitnessTransform | None = None,
                                 floor: float = 0.05) -> FloatArray:
    """Selection probabilities (summing to 1) for fitness-proportional selection.

    Scores are :func:`scale_fitness` (in [0, 1], best 1), then ``transform`` (DEvol's
    ``fitness`` argument: any function of the scaled scores returning finite values >= 0;
    it gets the finite members only). Weights are the transformed scores divided by their
    maximum and lifted to ``floor + (1 - floor) * w``: the worst finite member keeps
    ``floor`` times the best member's weight (DEvol: ``floor=0``, worst never selected).
    NaN members get weight 0 unless every member is NaN (then all are equal).
    """
    f = _fitness(fitness)
    if not 0.0 <= float(floor) <= 1.0:
        raise ValueError(f"floor must lie in [0, 1], got {floor!r}")
    finite = ~np.isnan(f)
    if not finite.any():
        return np.full(f.shape, 1.0 / f.size)
    scores = scale_fitness(f, maximize)[finite]
    if transform is not None:
        raw = np.asarray(transform(scores.copy()))
        if raw.dtype.kind not in "iuf":
            raise ValueError(f"fitness_transform must return numbers, got dtype {raw.dtype}")
        out = np.asarray(raw, dtype=np.float64)
        if out.shape != scores.shape:
            raise ValueError(
                f"fitness_transform returned shape {out.shape}, expected {scores.shape}")
        if not np.isfinite(out).all() or (out < 0).any():
            raise ValueError("fitness_transform must return finite values >= 0")
        scores = out
    weights = np.zeros(f.shape)
    top = scores.max()
    if top > 0:
        weights[finite] = float(floor) + (1.0 - float(floor)) * (scores / top)
    else:
        weights[finite] = 1.0
    return weights / weights.sum()


def _draw(rng: np.random.Generator, weights: FloatArray, n: int) -> IntArray:
    cum = np.cumsum(weights)
    last = int(np.flatnonzero(weights > 0)[-1])
    idx = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
    return np.minimum(idx, last).astype(np.int64)


def fitness_proportional(rng: np.random.Generator, fitness: npt.ArrayLike, n: int, *,
                         maximize: bool = True, transform: FitnessTransform | None = None,
                         floor: float = 0.05) -> IntArray:
    """``n`` indices drawn with replacement, proportionally to
    :func:`fitness_proportional_weights` (roulette wheel, vectorised)."""
    weights = fitness_proportional_weights(fitness, maximize, transform, floor)
    return _draw(rng, weights, _n(n))


def tournament(rng: np.random.Generator, fitness: npt.ArrayLike, n: int, *, size: int = 3,
               maximize: bool = True) -> IntArray:
    """``n`` winners of tournaments among ``size`` members drawn uniformly with replacement.

    Ties go to the contestant drawn first (a random one), never to a fixed index.
    """
    f = _fitness(fitness)
    size = check_int(size, "tournament size")
    contestants = rng.integers(0, f.size, size=(_n(n), size))
    bad = _badness(f, maximize)[contestants]
    winner = np.argmin(bad, axis=1)
    return contestants[np.arange(contestants.shape[0]), winner].astype(np.int64)


def truncation(rng: np.random.Generator, fitness: npt.ArrayLike, n: int, *,
               fraction: float = 0.5, maximize: bool = True) -> IntArray:
    """``n`` indices drawn uniformly from the best ``ceil(fraction * size)`` members (>= 1)."""
    if not 0.0 < float(fraction) <= 1.0:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction!r}")
    order = best_first(fitness, maximize)
    top = order[: max(1, math.ceil(float(fraction) * order.size))]
    return top[rng.integers(0, top.size, size=_n(n))]
