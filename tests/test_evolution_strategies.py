"""Properties both strategies share: bounds, determinism, state round trip, tell validation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    GeneticAlgorithm,
    PointMutation,
    RateMutation,
    RegularizedEvolution,
    Strategy,
)
from tests.evolution_helpers import (
    assert_in_bounds,
    cardinalities,
    population_sizes,
    seeds,
    toy_fitness,
)

FAST = settings(max_examples=40, deadline=None)
KINDS = ["ga", "re"]


def make(kind, cards, pop, seed, maximize=True, key=None):
    if kind == "ga":
        return GeneticAlgorithm(cards, pop, seed=seed, maximize=maximize, key=key)
    return RegularizedEvolution(cards, pop, sample_size=max(1, pop // 2), seed=seed,
                                maximize=maximize, key=key)


def step(strategy, kind, i):
    """One ask/tell round; RE asks a varying batch and tells it back in reversed order."""
    if kind == "ga":
        g = strategy.ask()
        strategy.tell(g, toy_fitness(g))
        return g
    g = strategy.ask(1 + i % 3)
    strategy.tell(g[::-1], toy_fitness(g[::-1]))
    return g


def run(strategy, kind, steps):
    return [step(strategy, kind, i) for i in range(steps)]


def roundtrip(state):
    return json.loads(json.dumps(state, allow_nan=False))


@FAST
@given(kind=st.sampled_from(KINDS), cards=cardinalities, pop=population_sizes, seed=seeds,
       maximize=st.booleans())
def test_every_ask_is_in_bounds_with_int64_and_right_shape(kind, cards, pop, seed, maximize):
    s = make(kind, cards, pop, seed, maximize)
    assert isinstance(s, Strategy)
    for i in range(6):
        g = step(s, kind, i)
        assert_in_bounds(g, cards, rows=pop if kind == "ga" else 1 + i % 3)
    if kind == "ga":
        assert s.generation == 6
    assert s.n_told == s.n_asked


@FAST
@given(kind=st.sampled_from(KINDS), cards=cardinalities, pop=population_sizes, seed=seeds)
def test_same_seed_gives_the_same_sequence(kind, cards, pop, seed):
    a = run(make(kind, cards, pop, seed), kind, 5)
    b = run(make(kind, cards, pop, seed), kind, 5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    gen = np.random.default_rng(seed)  # a Generator is accepted (and used as is)
    c = run(make(kind, cards, pop, gen), kind, 5)
    for x, y in zip(a, c, strict=True):
        np.testing.assert_array_equal(x, y)


def test_different_seeds_differ():
    cards = [10] * 12
    a = GeneticAlgorithm(cards, 8, seed=1).ask()
    b = GeneticAlgorithm(cards, 8, seed=2).ask()
    assert not np.array_equal(a, b)


@FAST
@given(kind=st.sampled_from(KINDS), cards=cardinalities, pop=population_sizes, seed=seeds,
       before=st.integers(0, 4), partial=st.booleans(), keyed=st.booleans())
def test_state_roundtrip_through_json_gives_the_same_future(kind, cards, pop, seed, before,
                                                           partial, keyed):
    key = (lambda g: tuple(g.tolist())) if keyed else None
    s = make(kind, cards, pop, seed, key=key)
    run(s, kind, before)
    if partial:  # snapshot with asked-but-untold genomes outstanding
        g = s.ask(2)
        s.tell(g[:1], toy_fitness(g[:1]))
    state = roundtrip(s.state_dict())
    clone = make(kind, cards, pop, seed + 1, key=key)  # different seed: the state must win
    clone.load_state_dict(state)
    assert roundtrip(clone.state_dict()) == state
    np.testing.assert_array_equal(clone.outstanding, s.outstanding)
    if partial:
        rest = s.outstanding
        s.tell(rest, toy_fitness(rest))
        clone.tell(rest, toy_fitness(rest))
    for x, y in zip(run(s, kind, 4), run(clone, kind, 4), strict=True):
        np.testing.assert_array_equal(x, y)
    assert s.best_fitness == clone.best_fitness or (
        np.isnan(s.best_fitness) and np.isnan(clone.best_fitness))


@pytest.mark.parametrize("kind", KINDS)
def test_nan_fitness_survives_strict_json(kind):
    s = make(kind, [3, 4, 5], 4, 0)
    g = s.ask(4)
    s.tell(g, np.full(4, np.nan))
    text = json.dumps(s.state_dict(), allow_nan=False)  # NaN stored as null
    assert "NaN" not in text and "null" in text
    clone = make(kind, [3, 4, 5], 4, 9)
    clone.load_state_dict(json.loads(text))
    fit = clone.fitness
    assert fit is not None and np.isnan(fit).all() and fit.shape == (4,)
    assert clone.best_genome is None and np.isnan(clone.best_fitness)


@pytest.mark.parametrize("kind", KINDS)
def test_state_with_other_bit_generator_roundtrips(kind):
    rng = np.random.Generator(np.random.MT19937(5))
    s = make(kind, [4, 4, 4], 3, rng)
    run(s, kind, 2)
    state = roundtrip(s.state_dict())
    clone = make(kind, [4, 4, 4], 3, 0)
    clone.load_state_dict(state)
    for x, y in zip(run(s, kind, 3), run(clone, kind, 3), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_rejects_other_settings(kind):
    s = make(kind, [3, 3], 4, 0)
    state = roundtrip(s.state_dict())
    with pytest.raises(ValueError, match="cardinalities"):
        make(kind, [3, 4], 4, 0).load_state_dict(state)
    with pytest.raises(ValueError, match="population_size"):
        make(kind, [3, 3], 6, 0).load_state_dict(state)
    with pytest.raises(ValueError, match="maximize"):
        make(kind, [3, 3], 4, 0, maximize=False).load_state_dict(state)
    other = "re" if kind == "ga" else "ga"
    with pytest.raises(ValueError, match="state is for"):
        make(other, [3, 3], 4, 0).load_state_dict(state)
    broken = dict(state)
    del broken["rng"]
    with pytest.raises(ValueError, match="missing"):
        make(kind, [3, 3], 4, 0).load_state_dict(broken)
    bad = dict(state, best_genome=[7, 0])
    with pytest.raises(ValueError, match="out of bounds"):
        make(kind, [3, 3], 4, 0).load_state_dict(bad)


@pytest.mark.parametrize("kind", KINDS)
def test_load_state_checks_operators_and_reads_states_saved_before_them(kind):
    s = make(kind, [3, 3], 4, 0)
    run(s, kind, 2)
    state = roundtrip(s.state_dict())
    assert state["operators"]["mutation"]["type"] in ("DevolMutation", "PointMutation")
    old = {k: v for k, v in state.items() if k not in ("operators", "settings")}
    clone = make(kind, [3, 3], 4, 1)
    clone.load_state_dict(old)  # a checkpoint written before operators were objects
    for x, y in zip(run(s, kind, 3), run(clone, kind, 3), strict=True):
        np.testing.assert_array_equal(x, y)
    if kind == "ga":
        other = GeneticAlgorithm([3, 3], 4, mutation=RateMutation(0.5))
        with pytest.raises(ValueError, match="n_elites"):
            GeneticAlgorithm([3, 3], 4, min_elites=2).load_state_dict(state)
    else:
        other = RegularizedEvolution([3, 3], 4, 2, mutation=PointMutation(count=2))
    with pytest.raises(ValueError, match="mutation"):
        other.load_state_dict(state)


BAD_TELLS = [
    (lambda g: (g[:, :-1], np.zeros(len(g))), r"shape \(k, 3\)"),
    (lambda g: (np.concatenate([g, g[:, :1]], 1), np.zeros(len(g))), r"shape \(k, 3\)"),
    (lambda g: (g, np.zeros(len(g) + 1)), "fitness values for"),
    (lambda g: (g, np.zeros((len(g), 1))), "1-D"),
    (lambda g: (g[None], np.zeros(len(g))), "shape"),
    (lambda g: (np.where(np.arange(3) == 2, 5, g), np.zeros(len(g))), r"\[0, 2\] = 5 .* 0\.\.4"),
    (lambda g: (np.where(np.arange(3) == 1, -1, g), np.zeros(len(g))), "out of bounds"),
    (lambda g: (g, np.where(np.arange(len(g)) == 1, np.inf, 0.0)), r"fitness\[1\] = inf"),
    (lambda g: (g, np.where(np.arange(len(g)) == 0, -np.inf, 0.0)), "infinite"),
    (lambda g: (g, ["a"] * len(g)), "real numbers"),
    (lambda g: (g, [None] * len(g)), "None"),
    (lambda g: (g, [1j] * len(g)), "real numbers"),
    (lambda g: (g, [True] * len(g)), "real numbers|not a real number"),
    (lambda g: (g.astype(float), np.zeros(len(g))), "integers"),
    (lambda g: (g.astype(str), np.zeros(len(g))), "integers"),
    (lambda g: (np.array([[2**64, 0, 0]] * len(g), dtype=object), np.zeros(len(g))),
     "outside the int64"),
    (lambda g: (np.array([[1.5, 0, 0]] * len(g), dtype=object), np.zeros(len(g))), "integers"),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("corrupt", "message"), BAD_TELLS)
def test_tell_rejects_garbage_with_a_clear_error(kind, corrupt, message):
    s = make(kind, [2, 3, 5], 4, 0)
    g = s.ask(4)
    before = roundtrip(s.state_dict())
    with pytest.raises(ValueError, match=message):
        s.tell(*corrupt(g))
    assert roundtrip(s.state_dict()) == before  # nothing recorded
    s.tell(g, toy_fitness(g))  # still usable


@FAST
@given(kind=st.sampled_from(KINDS), cards=cardinalities, seed=seeds,
       where=st.integers(0, 3), value=st.sampled_from([np.inf, -np.inf]))
def test_tell_rejects_infinite_fitness_anywhere(kind, cards, seed, where, value):
    s = make(kind, cards, 4, seed)
    g = s.ask(4)
    f = toy_fitness(g)
    f[where] = value
    with pytest.raises(ValueError, match=rf"fitness\[{where}\] = -?inf is infinite"):
        s.tell(g, f)


@pytest.mark.parametrize("kind", KINDS)
def test_tell_accepts_any_integer_dtype(kind):
    s = make(kind, [2, 3, 5], 3, 0)
    g = s.ask(3)
    s.tell(g.astype(np.uint8)[:1], [1.0])
    s.tell(g.astype(object)[1:2], [np.float32(2.0)])  # Python ints, numpy float
    s.tell(g.tolist()[2:], [3])  # lists, an int fitness
    assert s.n_told == 3 and s.best_fitness == 3.0


@pytest.mark.parametrize("kind", KINDS)
def test_single_genome_and_empty_tells(kind):
    s = make(kind, [2, 3, 5], 2, 0)
    g = s.ask(2)
    s.tell(g[0], 1.5)  # a 1-D genome with a scalar fitness
    s.tell(np.zeros((0, 3), np.int64), [])  # nothing to tell: a no-op
    s.tell(g[1:], [2.5])
    assert s.best_fitness == 2.5 and s.n_told == 2
    np.testing.assert_array_equal(s.best_genome, g[1])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("maximize", [True, False])
def test_nan_ranks_worst_in_both_directions(kind, maximize):
    cards = [50] * 6
    s = make(kind, cards, 6, 3, maximize=maximize)
    g = s.ask(6)
    f = np.array([np.nan, 1.0, np.nan, 2.0, np.nan, 3.0])
    s.tell(g, f)
    best = 5 if maximize else 1
    np.testing.assert_array_equal(s.best_genome, g[best])
    assert s.best_fitness == f[best]


@pytest.mark.parametrize("kind", KINDS)
def test_key_avoids_repeats_when_the_space_allows(kind):
    cards = [4, 4, 4, 3]  # 192 genomes; the key ignores position 3: 64 distinct candidates
    s = make(kind, cards, 9, 0, key=lambda g: tuple(g[:3].tolist()))
    fresh = []
    for i in range(4):
        g = s.ask(9)
        # GA elites (the last rows of a bred generation) are asked again by design
        new = g[: s.n_children] if kind == "ga" and i > 0 else g
        fresh.extend(tuple(r[:3].tolist()) for r in new)
        s.tell(g, toy_fitness(g, nan_every=0) + i)
    assert len(set(fresh)) == len(fresh) == (9 + 3 * 8 if kind == "ga" else 36)


def test_without_key_repeats_do_happen():
    s = GeneticAlgorithm([2, 2], 6, seed=0)  # 4 genomes, 6 asks: repeats unavoidable
    g = s.ask()
    assert len({r.tobytes() for r in g}) < 6


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cards", [[1], [1, 1, 1], [2], [2, 1]])
def test_key_in_tiny_spaces_terminates(kind, cards):
    s = make(kind, cards, 12, 0, key=lambda g: g.tobytes())
    for i in range(4):
        g = s.ask(12)
        assert_in_bounds(g, cards, rows=12)
        s.tell(g, np.full(12, float(i)))


def test_key_must_return_hashable():
    s = GeneticAlgorithm([3, 3], 4, seed=0, key=lambda g: g.tolist())
    with pytest.raises(TypeError, match="hashable"):
        s.ask()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [True, 1.5, "1"])
def test_constructor_rejects_bad_seed_and_sizes(kind, bad):
    with pytest.raises((TypeError, ValueError)):
        make(kind, [3], 4, bad)
    with pytest.raises(ValueError):
        make(kind, [3], 0, 0)
    with pytest.raises(ValueError, match="cardinalit"):
        make(kind, [3, 0], 4, 0)
    with pytest.raises(ValueError, match="cardinalit"):
        make(kind, [], 4, 0)
    with pytest.raises(ValueError, match="cardinalit"):
        make(kind, [2**63], 4, 0)
    with pytest.raises(ValueError, match="ask"):
        make(kind, [3], 4, 0).ask(-1)
