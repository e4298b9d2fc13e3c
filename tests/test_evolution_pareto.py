"""Pareto utilities against brute-force oracles: non-dominated sort (Deb's O(n^2) algorithm on
constrained domination), crowding distance, hypervolume (grid in 2-D, inclusion-exclusion in
any dimension), with ties, duplicates, failed (NaN) rows and both directions."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    as_costs,
    crowded_order_fitness,
    crowding_distance,
    hypervolume,
    non_dominated_sort,
    pareto_front,
)
from pytorch_devol.evolution import pareto as pareto_module

FAST = settings(max_examples=150, deadline=None)

# Values drawn from a small set (ties and duplicates are common) or anywhere; NaN = failed.
finite_value = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0]), st.floats(-100, 100))
value = st.one_of(finite_value, st.just(float("nan")))
violation_value = st.sampled_from([0.0, 0.0, 0.0, 0.5, 1.0, 2.0, float("nan")])


@st.composite
def problems(draw, max_n=25, max_k=4, nan=True, constrained=True):
    k = draw(st.integers(1, max_k))
    n = draw(st.integers(0, max_n))
    rows = draw(st.lists(st.lists(value if nan else finite_value,
                                  min_size=k, max_size=k), min_size=n, max_size=n))
    if rows and draw(st.booleans()):  # exact duplicates of earlier rows
        rows += [rows[i] for i in draw(st.lists(st.integers(0, n - 1), max_size=5))]
    f = np.array(rows, dtype=np.float64).reshape(len(rows), k)
    directions = tuple(draw(st.lists(st.sampled_from(["max", "min"]), min_size=k,
                                     max_size=k)))
    violation = None
    if constrained and draw(st.booleans()):
        violation = np.array(draw(st.lists(violation_value, min_size=len(rows),
                                           max_size=len(rows))), dtype=np.float64)
    return f, directions, violation


def better_or_equal(a, b, directions):
    return all((x >= y) if d == "max" else (x <= y) for x, y, d in zip(a, b, directions))


def oracle_dominates(a, b, va, vb, directions):
    """Deb's constrained domination, written out. Failed (dominated by all): a NaN
    violation, or a NaN objective of a feasible row; an infeasible row is judged by its
    violation alone, whatever its objectives (unknown for one never trained)."""
    fail_a = math.isnan(va) or (any(math.isnan(x) for x in a) and not va > 0)
    fail_b = math.isnan(vb) or (any(math.isnan(x) for x in b) and not vb > 0)
    if fail_a or fail_b:
        return not fail_a and fail_b
    if va > 0 or vb > 0:
        return va < vb
    return better_or_equal(a, b, directions) and not better_or_equal(b, a, directions)


def oracle_ranks(f, directions, violation):
    """Deb et al. 2002's fast non-dominated sort, O(n^2) with explicit lists."""
    n = f.shape[0]
    v = np.zeros(n) if violation is None else violation
    dominated_by = [[] for _ in range(n)]
    count = [0] * n
    for p in range(n):
        for q in range(n):
            if oracle_dominates(f[p], f[q], v[p], v[q], directions):
                dominated_by[p].append(q)
            elif oracle_dominates(f[q], f[p], v[q], v[p], directions):
                count[p] += 1
    ranks = [-1] * n
    front = [p for p in range(n) if count[p] == 0]
    r = 0
    while front:
        nxt = []
        for p in front:
            ranks[p] = r
            for q in dominated_by[p]:
                count[q] -= 1
                if count[q] == 0:
                    nxt.append(q)
        front, r = nxt, r + 1
    return np.array(ranks, dtype=np.int64)


@FAST
@given(problem=problems())
def test_non_dominated_sort_equals_the_brute_force_oracle(problem):
    f, directions, violation = problem
    ranks = non_dominated_sort(f, directions, violation)
    np.testing.assert_array_equal(ranks, oracle_ranks(f, directions, violation))
    assert ranks.dtype == np.int64 and ranks.shape == (f.shape[0],)
    np.testing.assert_array_equal(pareto_front(f, directions, violation),
                                  np.flatnonzero(ranks == 0))


@settings(max_examples=60, deadline=None)
@given(problem=problems(max_n=40, max_k=3, nan=False, constrained=False), seed=st.integers(0, 9))
def test_sort_is_permutation_equivariant(problem, seed):
    f, directions, _ = problem
    perm = np.random.default_rng(seed).permutation(f.shape[0])
    np.testing.assert_array_equal(non_dominated_sort(f[perm], directions),
                                  non_dominated_sort(f, directions)[perm])


def test_sort_examples():
    f = np.array([[1, 5], [2, 2], [5, 1], [3, 3], [2, 2], [6, 6], [np.nan, 0]])
    assert non_dominated_sort(f).tolist() == [0, 0, 0, 1, 0, 2, 3]
    assert non_dominated_sort(f, ("max", "max")).tolist() == [1, 2, 1, 1, 2, 0, 3]
    v = np.array([0, 0.5, 0, 0, 0.5, 2.0, 0])
    # the infeasible [2, 2] no longer dominates [3, 3]
    assert non_dominated_sort(f, violation=v).tolist() == [0, 1, 0, 0, 1, 2, 3]
    with pytest.raises(ValueError, match="directions"):
        non_dominated_sort(f, ("max",))
    with pytest.raises(ValueError, match="directions"):
        non_dominated_sort(f, ("max", "maximize"))
    with pytest.raises(ValueError, match="infinite"):
        non_dominated_sort([[np.inf, 0]])
    with pytest.raises(ValueError, match="violation"):
        non_dominated_sort(f, violation=-v)
    with pytest.raises(ValueError, match=r"\(n, k\)"):
        non_dominated_sort([1.0, 2.0])
    assert non_dominated_sort(np.zeros((0, 3))).shape == (0,)


@FAST
@given(problem=problems(max_n=30, constrained=False))
def test_crowding_distance_is_infinite_at_the_extremes(problem):
    f, _, _ = problem
    ranks = non_dominated_sort(f)
    dist = crowding_distance(f, ranks)
    assert dist.shape == (f.shape[0],) and (dist >= 0).all()
    failed = np.isnan(f).any(axis=1)
    assert (dist[failed] == 0).all()
    for r in np.unique(ranks[~failed]):
        idx = np.flatnonzero((ranks == r) & ~failed)
        firsts = [i for i in idx if not any((f[j] == f[i]).all() for j in idx if j < i)]
        # duplicates add nothing: only the first copy of a point keeps a distance
        assert all(dist[i] == 0 for i in idx if i not in firsts)
        if len(firsts) <= 2:
            assert np.isinf(dist[firsts]).all()
            continue
        for j in range(f.shape[1]):
            col = f[firsts, j]
            if col.min() == col.max():
                continue
            for i in firsts:
                if f[i, j] in (col.min(), col.max()):
                    assert np.isinf(dist[i])


def test_crowding_distance_example_and_order():
    f = np.array([[0, 4], [1, 2], [2, 1], [4, 0], [5, 5]], dtype=float)
    dist = crowding_distance(f, non_dominated_sort(f))
    np.testing.assert_allclose(dist, [np.inf, 0.5 + 0.75, 0.75 + 0.5, np.inf, np.inf])
    # one front: each interior point gets (next - previous) / range per objective
    g = np.array([[0, 10], [1, 9], [3, 4], [10, 0]], dtype=float)
    np.testing.assert_allclose(crowding_distance(g), [np.inf, 3 / 10 + 6 / 10,
                                                      9 / 10 + 9 / 10, np.inf])
    score = crowded_order_fitness([0, 0, 1, 1, 0], [1.0, np.inf, 5.0, 5.0, 1.0])
    assert score[1] > score[0] == score[4] > score[2] == score[3]


def grid_hv_2d(points, ref):
    """Area dominated, by coordinate compression: sum the grid cells whose lower corner some
    point weakly dominates (minimisation)."""
    pts = [p for p in points if p[0] < ref[0] and p[1] < ref[1]]
    xs = sorted({p[0] for p in pts} | {ref[0]})
    ys = sorted({p[1] for p in pts} | {ref[1]})
    area = 0.0
    for x0, x1 in itertools.pairwise(xs):
        for y0, y1 in itertools.pairwise(ys):
            if any(p[0] <= x0 and p[1] <= y0 for p in pts):
                area += (x1 - x0) * (y1 - y0)
    return area


def inclusion_exclusion_hv(points, ref):
    """Exact volume of the union of boxes [p, ref], by inclusion-exclusion (small sets)."""
    pts = [p for p in points if all(x < r for x, r in zip(p, ref))]
    total = 0.0
    for size in range(1, len(pts) + 1):
        for subset in itertools.combinations(pts, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.asarray(ref) - corner))
    return total


coords = st.one_of(st.integers(0, 6).map(float), st.floats(0, 10))


@FAST
@given(points=st.lists(st.tuples(coords, coords), max_size=30),
       ref=st.tuples(st.floats(0, 12), st.floats(0, 12)))
def test_hypervolume_2d_equals_the_grid_oracle(points, ref):
    f = np.array(points, dtype=float).reshape(-1, 2)
    got = hypervolume(f, ref, backend="exact")
    assert got == pytest.approx(grid_hv_2d(points, ref), rel=1e-9, abs=1e-9)
    # maximising the negated objectives is the same problem
    assert hypervolume(-f, [-ref[0], -ref[1]], ("max", "max"), backend="exact") == \
        pytest.approx(got, rel=1e-12, abs=1e-12)


@FAST
@given(k=st.integers(1, 4), data=st.data())
def test_hypervolume_equals_inclusion_exclusion_in_1_to_4_dimensions(k, data):
    points = data.draw(st.lists(st.tuples(*[coords] * k), max_size=7))
    ref = data.draw(st.tuples(*[st.floats(0, 12)] * k))
    f = np.array(points, dtype=float).reshape(-1, k)
    assert hypervolume(f, ref, backend="exact") == pytest.approx(
        inclusion_exclusion_hv(points, ref), rel=1e-9, abs=1e-9)


def test_hypervolume_examples_failed_rows_and_errors():
    f = np.array([[5, 5], [4, 6], [2, 7], [7, 4]], dtype=float)
    assert hypervolume(f, [10, 10], backend="exact") == 38.0  # moocore's documented example
    assert hypervolume(np.vstack([f, [[np.nan, 0.0]]]), [10, 10], backend="exact") == 38.0
    assert hypervolume(f, [1, 1], backend="exact") == 0.0  # nothing better than the reference
    cube = np.array([[0, 0, 0]], dtype=float)
    assert hypervolume(cube, [2, 3, 4], backend="exact") == 24.0
    with pytest.raises(ValueError, match="reference"):
        hypervolume(f, [10, 10, 10])
    with pytest.raises(ValueError, match="backend"):
        hypervolume(f, [10, 10], backend="wfg")


def test_hypervolume_uses_moocore_when_importable(monkeypatch):
    calls = []

    class FakeMoocore:
        @staticmethod
        def hypervolume(points, ref):
            calls.append((points.copy(), ref.copy()))
            return 1.5

    f = np.array([[1.0, 2.0], [2.0, 1.0]])
    monkeypatch.setattr(pareto_module, "_moocore", lambda: FakeMoocore)
    assert hypervolume(f, [3, 3]) == 1.5 and len(calls) == 1
    assert hypervolume(f, [3, 3], backend="exact") == 3.0 and len(calls) == 1
    # points handed over as minimisation costs, with the reference converted alike
    hypervolume(-f, [-3, -3], ("max", "max"))
    np.testing.assert_array_equal(calls[-1][0], f)
    np.testing.assert_array_equal(calls[-1][1], [3, 3])
    monkeypatch.setattr(pareto_module, "_moocore", lambda: None)
    assert hypervolume(f, [3, 3]) == 3.0  # auto falls back to the exact algorithm
    with pytest.raises(ImportError, match="moocore"):
        hypervolume(f, [3, 3], backend="moocore")


@pytest.mark.skipif(pareto_module._moocore() is None, reason="moocore is not installed")
@FAST
@given(k=st.integers(2, 3), data=st.data())
def test_moocore_agrees_with_the_exact_algorithm(k, data):
    points = data.draw(st.lists(st.tuples(*[coords] * k), max_size=20))
    ref = data.draw(st.tuples(*[st.floats(0, 12)] * k))
    f = np.array(points, dtype=float).reshape(-1, k)
    assert hypervolume(f, ref, backend="moocore") == pytest.approx(
        hypervolume(f, ref, backend="exact"), rel=1e-9, abs=1e-9)


def test_as_costs_negates_maximised_objectives():
    np.testing.assert_array_equal(as_costs([[1.0, 2.0]], ("max", "min")), [[-1.0, 2.0]])
