"""Pareto utilities: non-dominated sorting, crowding distance, hypervolume (numpy only).

Objectives are an ``(n, k)`` float array, with a direction per objective (``"max"`` or
``"min"``; default: all minimised). A row with NaN in any objective is a failed candidate: it
is dominated by every other row and ranks last. Optional constraint violations (one number
``>= 0`` per row, 0 = feasible) follow Deb's constrained domination: a feasible row dominates
an infeasible one, and of two infeasible rows the smaller violation dominates.

Hypervolume uses ``moocore`` when it is importable (an optional extra), and otherwise an exact
slicing algorithm that is always available (and tested against brute-force oracles).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._common import FloatArray, IntArray

__all__ = [
    "as_costs",
    "as_directions",
    "crowded_order_fitness",
    "crowding_distance",
    "hypervolume",
    "non_dominated_sort",
    "pareto_front",
    "pareto_order",
]

DIRECTIONS = ("max", "min")


def as_directions(directions: Sequence[str] | None, k: int) -> tuple[str, ...]:
    """``directions`` checked: ``k`` strings, each "max" or "min" (None: all "min")."""
    if directions is None:
        return ("min",) * k
    if isinstance(directions, str):
        raise ValueError(f"directions must be a sequence such as ('max', 'min'), got "
                         f"{directions!r}")
    out = tuple(directions)
    bad = [d for d in out if d not in DIRECTIONS]
    if bad or len(out) != k:
        raise ValueError(f"directions must be {k} of {DIRECTIONS}, got {directions!r}")
    return out


def as_costs(objectives: npt.ArrayLike, directions: Sequence[str] | None = None) -> FloatArray:
    """Objectives as an ``(n, k)`` float array to minimise (maximised ones negated).

    Rejects infinities and non-2-D input; NaN (a failed row) is kept.
    """
    arr = np.asarray(objectives, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"objectives must be an (n, k) array with k >= 1, got shape {arr.shape}")
    if np.isinf(arr).any():
        raise ValueError("objectives must be finite or NaN (failed), got an infinite value")
    dirs = as_directions(directions, arr.shape[1])
    sign = np.array([-1.0 if d == "max" else 1.0 for d in dirs])
    return arr * sign


def _violation(violation: npt.ArrayLike | None, n: int) -> FloatArray:
    if violation is None:
        return np.zeros(n)
    v = np.asarray(violation, dtype=np.float64)
    if v.shape != (n,) or np.isinf(v).any() or (v < 0).any():
        raise ValueError(f"violation must be {n} finite values >= 0 (0 = feasible) or NaN")
    return v


def _ranks_2d(costs: FloatArray) -> IntArray:
    """Front index of each row (2 objectives): a sweep in lexicographic order, O(n log n).

    Each front keeps its last (lowest second-objective) point; those minima increase with the
    front index, so a bisection finds the first front the next point is not dominated by.
    """
    order = np.lexsort((costs[:, 1], costs[:, 0]))
    ranks = np.empty(costs.shape[0], dtype=np.int64)
    mins: list[float] = []  # per front: the smallest second objective so far
    last: list[tuple[float, float]] = []  # per front: the point that set it
    for i in order.tolist():
        x, y = float(costs[i, 0]), float(costs[i, 1])
        j = bisect.bisect_right(mins, y)  # fronts 0..j-1 hold a point with y' <= y
        if j and mins[j - 1] == y and last[j - 1] == (x, y):
            j -= 1  # a duplicate of that front's point: not dominated by it
        if j == len(mins):
            mins.append(y)
            last.append((x, y))
        else:
            mins[j], last[j] = y, (x, y)
        ranks[i] = j
    return ranks


def _ranks_nd(costs: FloatArray) -> IntArray:
    """Front index of each row (any number of objectives): efficient non-dominated sort with
    binary search (Zhang et al. 2015). In lexicographic order every dominator of a point comes
    before it, and if front f holds a dominator so does every earlier front: the point goes to
    the first front without one. O(n log(fronts)) vectorised comparisons with whole fronts.
    """
    n, k = costs.shape
    ranks = np.empty(n, dtype=np.int64)
    buffers: list[FloatArray] = []  # per front: its points (first `sizes[f]` rows)
    sizes: list[int] = []
    for i in np.lexsort(costs.T[::-1]).tolist():
        p = costs[i]
        lo, hi = 0, len(buffers)
        while lo < hi:
            mid = (lo + hi) // 2
            m = buffers[mid][: sizes[mid]]
            if ((m <= p).all(axis=1) & (m < p).any(axis=1)).any():
                lo = mid + 1
            else:
                hi = mid
        if lo == len(buffers):
            buffers.append(np.empty((4, k)))
            sizes.append(0)
        if sizes[lo] == buffers[lo].shape[0]:
            buffers[lo] = np.concatenate([buffers[lo], np.empty_like(buffers[lo])])
        buffers[lo][sizes[lo]] = p
        sizes[lo] += 1
        ranks[i] = lo
    return ranks


def _pareto_ranks(costs: FloatArray) -> IntArray:
    """Front index (0 = non-dominated) of each finite row, by Pareto domination."""
    n, k = costs.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    if k == 1:
        return np.unique(costs[:, 0], return_inverse=True)[1].astype(np.int64).reshape(n)
    # Equal rows share a front: sort the distinct ones (often far fewer, e.g. integer
    # objectives such as parameter counts), then map back.
    uniq, inverse = np.unique(costs, axis=0, return_inverse=True)
    ranks = _ranks_2d(uniq) if k == 2 else _ranks_nd(uniq)
    return ranks[inverse.reshape(n)]


def non_dominated_sort(objectives: npt.ArrayLike, directions: Sequence[str] | None = None,
                       violation: npt.ArrayLike | None = None) -> IntArray:
    """Front index of every row (0 = the non-dominated front), by constrained domination.

    Feasible rows come first (by Pareto fronts), then infeasible rows by increasing violation
    (equal violations share a front; their objectives may be NaN), then failed rows (NaN in
    the violation, or in an objective of a feasible row) in one last front. Equal rows share a
    front.
    """
    costs = as_costs(objectives, directions)
    n = costs.shape[0]
    v = _violation(violation, n)
    # An infeasible row ranks by its violation alone: its objectives may be unknown (NaN), as
    # for a candidate skipped before training because its size broke a constraint.
    failed = np.isnan(v) | (np.isnan(costs).any(axis=1) & ~(v > 0))
    feasible = ~failed & (v == 0)
    infeasible = ~failed & (v > 0)
    ranks = np.zeros(n, dtype=np.int64)
    ranks[feasible] = _pareto_ranks(costs[feasible])
    nxt = int(ranks[feasible].max()) + 1 if feasible.any() else 0
    if infeasible.any():
        levels, inverse = np.unique(v[infeasible], return_inverse=True)
        ranks[infeasible] = nxt + inverse.reshape(-1)
        nxt += levels.size
    ranks[failed] = nxt
    return ranks


def pareto_front(objectives: npt.ArrayLike, directions: Sequence[str] | None = None,
                 violation: npt.ArrayLike | None = None) -> IntArray:
    """Indices of the first front (the feasible non-dominated rows when there are any)."""
    ranks = non_dominated_sort(objectives, directions, violation)
    return np.flatnonzero(ranks == 0).astype(np.int64) if ranks.size else ranks


def _front_crowding(costs: FloatArray) -> FloatArray:
    """Crowding distance within one front of finite rows (see :func:`crowding_distance`)."""
    m = costs.shape[0]
    uniq, first = np.unique(costs, axis=0, return_index=True)
    u = uniq.shape[0]
    dist = np.zeros(u)
    if u <= 2:
        dist[:] = np.inf
    else:
        for j in range(uniq.shape[1]):
            vals = uniq[:, j]
            lo, hi = float(vals.min()), float(vals.max())
            if hi == lo:
                continue  # a constant objective says nothing about crowding
            span = hi - lo
            scaled = (vals - lo) / span if np.isfinite(span) else (vals / 2 - lo / 2) / (
                hi / 2 - lo / 2)
            order = np.argsort(scaled, kind="stable")
            gaps = np.zeros(u)
            gaps[order[1:-1]] = scaled[order[2:]] - scaled[order[:-2]]
            dist += gaps
            dist[(vals == lo) | (vals == hi)] = np.inf
    out = np.zeros(m)
    out[first] = dist
    return out


def crowding_distance(objectives: npt.ArrayLike, ranks: npt.ArrayLike | None = None
                      ) -> FloatArray:
    """Deb's crowding distance of every row within its front (``ranks``; None: one front).

    Per objective, each row gets the normalised gap between its neighbours; rows at the
    minimum or maximum of an objective that varies get ``inf``, as does every row of a front
    with at most two distinct points. Of identical rows only the first keeps a distance (the
    others get 0: they add nothing to diversity). Failed (NaN) rows get 0. Directions do not
    matter here.
    """
    costs = as_costs(objectives)
    n = costs.shape[0]
    r = np.zeros(n, dtype=np.int64) if ranks is None else np.asarray(ranks)
    if r.shape != (n,):
        raise ValueError(f"ranks must have shape ({n},), got {r.shape}")
    out = np.zeros(n)
    ok = ~np.isnan(costs).any(axis=1)
    for front in np.unique(r[ok]):
        idx = np.flatnonzero(ok & (r == front))
        out[idx] = _front_crowding(costs[idx])
    return out


def crowded_order_fitness(ranks: npt.ArrayLike, crowding: npt.ArrayLike) -> FloatArray:
    """One float per row, higher = better by Deb's crowded comparison (lower rank, then larger
    crowding); equal (rank, crowding) pairs score equal. Feeding it to a single-objective
    :class:`Selection` with ``maximize=True`` (e.g. ``Tournament(k=2)``) gives NSGA-II's
    binary tournament."""
    r = np.asarray(ranks, dtype=np.float64)
    c = np.asarray(crowding, dtype=np.float64)
    if r.size == 0:
        return np.zeros(0)
    pairs = np.stack([r, -c], axis=1)
    _, dense = np.unique(pairs, axis=0, return_inverse=True)  # sorted by rank, then -crowding
    return -dense.reshape(-1).astype(np.float64)


def _spread_order(costs: FloatArray) -> list[int]:
    """Positions of one front's rows in epsilon-net order (Salinas et al. 2021): the row best
    on the first objective, then again and again the row farthest (Euclidean, each objective
    scaled to [0, 1] over the front) from those already chosen; ties to the lower row."""
    span = costs.max(axis=0) - costs.min(axis=0)
    scaled = (costs - costs.min(axis=0)) / np.where(span > 0, span, 1.0)
    order = [int(np.lexsort(scaled.T[::-1])[0])]
    nearest = np.linalg.norm(scaled - scaled[order[0]], axis=1)
    nearest[order[0]] = -1.0
    for _ in range(costs.shape[0] - 1):
        nxt = int(np.argmax(nearest))
        order.append(nxt)
        nearest = np.minimum(nearest, np.linalg.norm(scaled - scaled[nxt], axis=1))
        nearest[order] = -1.0
    return order


def pareto_order(objectives: npt.ArrayLike, directions: Sequence[str] | None = None,
                 violation: npt.ArrayLike | None = None, within: str = "crowding") -> IntArray:
    """Row indices best first: by front (:func:`non_dominated_sort`), then within a front by
    ``within``: "crowding" (larger crowding distance first, NSGA-II) or "epsilon" (the
    epsilon-net spread order of MOASHA). Ties keep row order; failed rows come last.

    This is how a multi-objective search ranks the candidates of one rung to promote the best
    ``1/eta`` of them."""
    if within not in ("crowding", "epsilon"):
        raise ValueError(f"within must be 'crowding' or 'epsilon', got {within!r}")
    costs = as_costs(objectives, directions)
    ranks = non_dominated_sort(costs, violation=violation)
    out: list[int] = []
    for front in np.unique(ranks):
        rows = np.flatnonzero(ranks == front)
        block = costs[rows]
        if not np.isfinite(block).all() or rows.size < 2:
            out.extend(rows.tolist())  # failed, or infeasible ranked by violation alone
        elif within == "crowding":
            dist = _front_crowding(block)
            out.extend(rows[np.argsort(-dist, kind="stable")].tolist())
        else:
            out.extend(rows[_spread_order(block)].tolist())
    return np.asarray(out, dtype=np.int64)


# -- hypervolume --------------------------------------------------------------------------------


def _hv_2d(points: FloatArray, ref: FloatArray) -> float:
    order = np.lexsort((points[:, 1], points[:, 0]))
    xs, ys = points[order, 0], points[order, 1]
    best = np.minimum.accumulate(ys)  # lowest y so far, sweeping x upwards
    prev = np.concatenate([[ref[1]], best[:-1]])
    return float(np.sum((ref[0] - xs) * np.maximum(prev - best, 0.0)))


def _hv_exact(points: FloatArray, ref: FloatArray) -> float:
    """Exact hypervolume (minimisation, every point strictly better than ``ref``): slices
    along the last objective, recursing down to an O(n log n) 2-D sweep."""
    k = points.shape[1]
    if k == 1:
        return float(ref[0] - points[:, 0].min())
    if k == 2:
        return _hv_2d(points, ref)
    points = points[np.argsort(points[:, -1], kind="stable")]
    levels = np.append(points[:, -1], ref[-1])
    total = 0.0
    for i in range(points.shape[0]):
        height = levels[i + 1] - levels[i]
        if height > 0:
            total += _hv_exact(points[: i + 1, :-1], ref[:-1]) * height
    return total


def _moocore() -> Any:
    try:
        import moocore  # optional extra
    except ImportError:
        return None
    return moocore


def hypervolume(objectives: npt.ArrayLike, reference: npt.ArrayLike,
                directions: Sequence[str] | None = None, *, backend: str = "auto") -> float:
    """Volume dominated by the rows and bounded by ``reference`` (same directions).

    Rows that are failed (NaN) or not strictly better than the reference in every objective
    add nothing. ``backend``: "auto" (``moocore`` if importable, else exact), "moocore" or
    "exact" (the built-in algorithm, O(n^(k-1) log n): meant for 2-3 objectives).
    """
    if backend not in ("auto", "moocore", "exact"):
        raise ValueError(f"backend must be 'auto', 'moocore' or 'exact', got {backend!r}")
    costs = as_costs(objectives, directions)
    k = costs.shape[1]
    ref = np.asarray(reference, dtype=np.float64)
    if ref.shape != (k,) or not np.isfinite(ref).all():
        raise ValueError(f"reference must be {k} finite numbers, got {reference!r}")
    ref = as_costs(ref[None, :], directions)[0]
    ok = ~np.isnan(costs).any(axis=1)
    pts = costs[ok]
    pts = pts[(pts < ref).all(axis=1)]
    if pts.shape[0] == 0:
        return 0.0
    lib = _moocore() if backend != "exact" else None
    if backend == "moocore" and lib is None:
        raise ImportError("backend='moocore' needs the optional package moocore")
    if lib is not None and k >= 2:
        return float(lib.hypervolume(pts, ref=ref))
    return _hv_exact(pts[non_dominated_sort(pts) == 0], ref)
