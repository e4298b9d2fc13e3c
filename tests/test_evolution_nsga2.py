"""NSGA2: asks in bounds and seeded, state round trip, tell validation, failed and infeasible
candidates, elitism of the first front, and a toy bi-objective optimisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    NSGA2,
    RateMutation,
    Strategy,
    Tournament,
    Uniform,
    hypervolume,
    non_dominated_sort,
    random_genomes,
)
from tests.evolution_helpers import (
    assert_in_bounds,
    cardinalities,
    population_sizes,
    seeds,
    toy_fitness,
)

FAST = settings(max_examples=40, deadline=None)
directions_st = st.lists(st.sampled_from(["max", "min"]), min_size=1, max_size=3).map(tuple)


def objectives(genomes, k, nan=True):
    """Deterministic (n, k) objectives per genome, with failures (NaN) and ties."""
    f = toy_fitness(genomes, nan_every=5 if nan else 0)
    g = np.asarray(genomes, dtype=np.int64)
    cols = [f, (g % 7).sum(axis=1).astype(float), (g[:, -1] % 3).astype(float)]
    return np.stack(cols[:k], axis=1)


def violations(genomes):
    g = np.asarray(genomes, dtype=np.int64)
    return np.maximum(0.0, (g[:, 0] % 5) - 2.0)  # about 40% infeasible


def run(s, rounds, constrained=False, partial=False):
    out = []
    for _ in range(rounds):
        g = s.ask()
        if partial and g.shape[0] > 1:  # tell in two parts, reversed
            half = g.shape[0] // 2
            for part in (g[half:][::-1], g[:half]):
                s.tell(part, objectives(part, s.n_objectives),
                       violations(part) if constrained else None)
        else:
            s.tell(g, objectives(g, s.n_objectives), violations(g) if constrained else None)
        out.append(g)
    return out


@FAST
@given(cards=cardinalities, pop=population_sizes, seed=seeds, directions=directions_st,
       constrained=st.booleans())
def test_asks_are_in_bounds_and_the_same_for_the_same_seed(cards, pop, seed, directions,
                                                          constrained):
    a = NSGA2(cards, pop, directions, seed=seed)
    assert isinstance(a, Strategy) and a.steady_state is False
    assert a.maximize == tuple(d == "max" for d in directions)
    runs = [run(a, 5, constrained), run(NSGA2(cards, pop, directions, seed=seed), 5,
                                         constrained)]
    for x, y in zip(*runs, strict=True):
        assert_in_bounds(x, cards, rows=pop)
        np.testing.assert_array_equal(x, y)
    c = run(NSGA2(cards, pop, directions, seed=np.random.default_rng(seed)), 5, constrained)
    for x, y in zip(runs[0], c, strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.generation == 5 and a.n_told == a.n_asked == 5 * pop
    assert a.population.shape == (pop, len(cards)) and a.fitness.shape == (pop, len(directions))
    pareto = a.pareto_front
    ranks = non_dominated_sort(pareto, directions)
    assert (ranks == 0).all()  # no member of the front dominates another


def roundtrip(state):
    return json.loads(json.dumps(state, allow_nan=False))


@FAST
@given(cards=cardinalities, pop=population_sizes, seed=seeds, directions=directions_st,
       before=st.integers(0, 3), partial=st.booleans(), keyed=st.booleans(),
       constrained=st.booleans(), include_seen=st.booleans())
def test_state_round_trips_and_a_restored_copy_asks_the_same(
        cards, pop, seed, directions, before, partial, keyed, constrained, include_seen):
    key = (lambda g: tuple(g.tolist())) if keyed else None
    s = NSGA2(cards, pop, directions, seed=seed, key=key)
    asked = [g for g in run(s, before, constrained)]
    if partial:  # snapshot with asked-but-untold genomes outstanding
        g = s.ask(2)
        asked.append(g)
        s.tell(g[:1], objectives(g[:1], len(directions)),
               violations(g[:1]) if constrained else None)
    state = roundtrip(s.state_dict(include_seen))
    clone = NSGA2(cards, pop, directions, seed=seed + 1, key=key)  # the state must win
    clone.load_state_dict(state)
    if not include_seen and asked:
        clone.remember(np.concatenate(asked))
    assert roundtrip(clone.state_dict(include_seen)) == state
    np.testing.assert_array_equal(clone.outstanding, s.outstanding)
    if partial:
        rest = s.outstanding
        for strat in (s, clone):
            strat.tell(rest, objectives(rest, len(directions)),
                       violations(rest) if constrained else None)
    for x, y in zip(run(s, 3, constrained, partial=True), run(clone, 3, constrained, True),
                    strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(s.pareto_front, clone.pareto_front)


def test_load_state_rejects_other_settings():
    s = NSGA2([3, 3], 4, ("max", "min"), seed=0)
    run(s, 2)
    state = roundtrip(s.state_dict())
    with pytest.raises(ValueError, match="directions|maximize"):
        NSGA2([3, 3], 4, ("min", "min")).load_state_dict(state)
    with pytest.raises(ValueError, match="directions|maximize"):
        NSGA2([3, 3], 4, ("max", "min", "min")).load_state_dict(state)
    with pytest.raises(ValueError, match="mutation"):
        NSGA2([3, 3], 4, ("max", "min"), mutation=RateMutation(0.5)).load_state_dict(state)
    with pytest.raises(ValueError, match="population_size"):
        NSGA2([3, 3], 5, ("max", "min")).load_state_dict(state)
    with pytest.raises(ValueError, match="state is for"):
        from pytorch_devol.evolution import GeneticAlgorithm
        GeneticAlgorithm([3, 3], 4).load_state_dict(state)
    broken = dict(state)
    del broken["crowding"]
    with pytest.raises(ValueError, match="missing"):
        NSGA2([3, 3], 4, ("max", "min")).load_state_dict(broken)


BAD_TELLS = [
    (lambda g: (g, np.zeros((len(g), 3)), None), r"shape \(4, 2\)"),
    (lambda g: (g, np.zeros(len(g)), None), r"shape \(4, 2\)"),
    (lambda g: (g, np.full((len(g), 2), np.inf), None), "infinite"),
    (lambda g: (g, [[None, 1.0]] * len(g), None), "None"),
    (lambda g: (g, [["a", 1.0]] * len(g), None), "real"),
    (lambda g: (g, np.zeros((len(g), 2)), -np.ones(len(g))), "negative"),
    (lambda g: (g, np.zeros((len(g), 2)), np.ones(len(g) + 1)), "values for"),
    (lambda g: ((g + 1) % 5, np.zeros((len(g), 2)), None), "not asked"),
    (lambda g: (g[:, :-1], np.zeros((len(g), 2)), None), "shape"),
]


@pytest.mark.parametrize(("corrupt", "message"), BAD_TELLS)
def test_tell_rejects_garbage_with_a_clear_error(corrupt, message):
    s = NSGA2([5, 5, 5], 4, ("max", "min"), seed=0)
    with pytest.raises(ValueError, match="before ask"):
        s.tell([[0, 0, 0]], [[1.0, 2.0]])
    g = s.ask()
    before = roundtrip(s.state_dict())
    with pytest.raises(ValueError, match=message):
        s.tell(*corrupt(g))
    assert roundtrip(s.state_dict()) == before  # nothing recorded
    s.tell(g[0], [1.0, 2.0])  # one genome, one row
    s.tell(np.zeros((0, 3), np.int64), [])  # nothing to tell: a no-op
    s.tell(g[1:], objectives(g[1:], 2))
    assert s.generation == 1


def test_constructor_errors():
    for bad in (None, "max", (), ("max", "up")):
        with pytest.raises(ValueError, match="directions"):
            NSGA2([3], 4, bad)
    with pytest.raises(ValueError, match="mutable"):
        NSGA2([3], 4, ("max",), mutation=RateMutation(0.1, mutable=[4]))
    with pytest.raises(ValueError, match="population_size"):
        NSGA2([3], 0, ("max",))


def test_failed_and_infeasible_candidates_rank_last():
    cards = [50] * 5
    s = NSGA2(cards, 6, ("max", "min"), seed=1)
    g = s.ask()
    f = np.array([[1.0, 1.0], [np.nan, 0.0], [5.0, 9.0], [2.0, np.nan], [3.0, 3.0],
                  [9.0, 0.0]])
    v = np.array([0.0, 0.0, 0.0, 0.0, 0.5, 1.0])
    s.tell(g, f, v)
    # feasible successes first (front 0: [1, 1] and [5, 9]), then the infeasible by violation
    # (even [9, 0], which dominates everything on the objectives), then the failed
    expected = [g[0], g[2], g[4], g[5]]
    np.testing.assert_array_equal(s.population[:4], expected)
    assert s.ranks.tolist() == [0, 0, 1, 2, 3, 3]
    np.testing.assert_array_equal(s.pareto_set, g[[0, 2]])
    np.testing.assert_array_equal(s.pareto_front, f[[0, 2]])
    assert s.best_genome is None  # there is no single best


def test_first_front_survives_when_it_fits():
    cards = [30] * 6
    s = NSGA2(cards, 10, ("max", "max"), seed=3)
    seen_front: dict[bytes, np.ndarray] = {}
    for _ in range(6):
        g = s.ask()
        f = objectives(g, 2, nan=False)
        s.tell(g, f)
        everything = np.concatenate([np.array(list(seen_front.values())).reshape(-1, 2), f])
        # every point of the merged first front is kept (it has fewer than 10 points here)
        front = s.pareto_front
        assert front.shape[0] <= 10
        for row in front:
            seen_front[row.tobytes()] = row
        ranks = non_dominated_sort(everything, ("max", "max"))
        best = everything[ranks == 0]
        assert len({r.tobytes() for r in best}) <= 10  # so it fits: all of it must survive
        assert {r.tobytes() for r in best} <= {r.tobytes() for r in s.fitness}


def test_custom_operators_and_key():
    cards = [4, 4, 4]  # 64 genomes
    s = NSGA2(cards, 8, ("min", "min"), seed=0, key=lambda g: g.tobytes(),
              selection=Tournament(k=3), crossover=Uniform(), mutation="PointMutation")
    asked = np.concatenate(run(s, 4))
    assert len({r.tobytes() for r in asked}) == asked.shape[0]  # no genome asked twice


# -- a tiny optimisation: a discretised ZDT1 ------------------------------------------------

CARDS = np.array([33] + [9] * 9)


def zdt1(genomes):
    u = genomes / (CARDS - 1)
    f1 = u[:, 0]
    g = 1 + 9 * u[:, 1:].mean(axis=1)
    return np.stack([f1, g * (1 - np.sqrt(f1 / g))], axis=1)


REF = (1.1, 11.0)


def test_nsga2_improves_the_front_and_beats_random_search():
    generations, pop = 15, 20
    for seed in range(3):
        s = NSGA2(CARDS, pop, ("min", "min"), seed=seed)
        first_hv = None
        for _ in range(generations):
            g = s.ask()
            s.tell(g, zdt1(g))
            if first_hv is None:
                first_hv = hypervolume(s.fitness, REF)
        final_hv = hypervolume(s.fitness, REF)
        rand = random_genomes(np.random.default_rng(seed + 100), CARDS, generations * pop)
        random_hv = hypervolume(zdt1(rand), REF)
        assert final_hv > first_hv and final_hv > random_hv, (seed, first_hv, final_hv,
                                                              random_hv)
