"""Contract tests over every built-in operator object (and every strategy using them):
outputs in bounds, shapes and dtypes, the same output for the same seed, inputs untouched,
frozen, and specs that round-trip through JSON."""

from __future__ import annotations

import json
import re

import attrs
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    NSGA2,
    OPERATORS,
    DevolMutation,
    FitnessProportional,
    GeneticAlgorithm,
    PointMutation,
    RateMutation,
    RegularizedEvolution,
    SinglePoint,
    Tournament,
    Truncation,
    Uniform,
    operator_from_spec,
    operator_spec,
    random_genomes,
)
from tests.evolution_helpers import assert_in_bounds, cardinalities, seeds, toy_fitness

FAST = settings(max_examples=40, deadline=None)

SELECTIONS = [FitnessProportional(), FitnessProportional(floor=0.0),
              FitnessProportional(transform=lambda s: s**2), Tournament(), Tournament(k=1),
              Tournament(k=7), Truncation(), Truncation(fraction=1.0)]
CROSSOVERS = [SinglePoint(), SinglePoint(allow_copies=True), Uniform(), Uniform(p=0.0),
              Uniform(p=1.0)]
MUTATIONS = [DevolMutation(), DevolMutation(minimum=0, force_change=False, distinct=False),
             DevolMutation(base=1, divisor=1), PointMutation(), PointMutation(count=4),
             PointMutation(count=0), RateMutation(0.0), RateMutation(0.3),
             RateMutation(1.0, force_change=False)]
ALL = SELECTIONS + CROSSOVERS + MUTATIONS

fitness_lists = st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))),
                         min_size=1, max_size=25)


def test_every_built_in_operator_is_covered():
    covered = {type(op) for op in ALL}
    assert covered == {cls for table in OPERATORS.values() for cls in table.values()}


@FAST
@given(op=st.sampled_from(SELECTIONS), fit=fitness_lists, n=st.integers(0, 30), seed=seeds,
       maximize=st.booleans())
def test_selection_contract(op, fit, n, seed, maximize):
    f = np.array(fit)
    before = f.copy()
    idx = op(np.random.default_rng(seed), f, n, maximize)
    assert isinstance(idx, np.ndarray) and idx.shape == (n,) and idx.dtype.kind in "iu"
    assert ((idx >= 0) & (idx < f.size)).all()
    np.testing.assert_array_equal(f, before)  # input untouched
    again = op(np.random.default_rng(seed), f, n, maximize)
    np.testing.assert_array_equal(idx, again)  # same seed, same answer


@FAST
@given(op=st.sampled_from(CROSSOVERS), cards=cardinalities, n=st.integers(0, 20), seed=seeds)
def test_crossover_contract(op, cards, n, seed):
    rng = np.random.default_rng(seed)
    a, b = random_genomes(rng, cards, n), random_genomes(rng, cards, n)
    a0, b0 = a.copy(), b.copy()
    kids = op(np.random.default_rng(seed), a, b)
    assert_in_bounds(kids, cards, rows=n)
    assert ((kids == a) | (kids == b)).all()  # every allele from a parent
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    np.testing.assert_array_equal(kids, op(np.random.default_rng(seed), a, b))


@FAST
@given(op=st.sampled_from(MUTATIONS), cards=cardinalities, n=st.integers(0, 20), seed=seeds,
       generation=st.integers(0, 100), extra=st.integers(0, 3))
def test_mutation_contract(op, cards, n, seed, generation, extra):
    cards_arr = np.array(cards, dtype=np.int64)
    pop = random_genomes(np.random.default_rng(seed), cards, n)
    before = pop.copy()
    out = op(np.random.default_rng(seed), pop, cards_arr, generation=generation, extra=extra)
    assert_in_bounds(out, cards, rows=n)
    np.testing.assert_array_equal(pop, before)
    again = op(np.random.default_rng(seed), pop, cards_arr, generation=generation, extra=extra)
    np.testing.assert_array_equal(out, again)
    if isinstance(op, PointMutation) and op.force_change and op.distinct:
        changeable = int((cards_arr > 1).sum())
        assert ((out != pop).sum(axis=1) == min(op.count + extra, changeable)).all()


@pytest.mark.parametrize("op", ALL, ids=lambda op: re.sub(r" at 0x[0-9a-f]+", "", repr(op)))
def test_operators_are_frozen_and_their_specs_round_trip(op):
    field = attrs.fields(type(op))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(op, field, getattr(op, field))
    spec = json.loads(json.dumps(operator_spec(op), allow_nan=False))
    assert spec["type"] == type(op).__name__
    role = next(r for r, table in OPERATORS.items() if type(op) in table.values())
    if getattr(op, "transform", None) is not None:
        with pytest.raises(ValueError, match="function"):
            operator_from_spec(spec, role)
    else:
        assert operator_from_spec(spec, role) == op
    hash(op)  # frozen attrs classes are hashable: usable as dict keys, in sets


def test_specs_reject_unknown_names_and_bad_parameters():
    with pytest.raises(ValueError, match="unknown selection"):
        operator_from_spec({"type": "os.system"}, "selection")
    with pytest.raises(ValueError, match="unknown crossover"):
        operator_from_spec("Tournament", "crossover")  # right name, wrong role
    with pytest.raises(ValueError, match="bad parameters"):
        operator_from_spec({"type": "Tournament", "size": 2}, "selection")
    with pytest.raises(ValueError):
        operator_from_spec({"type": "Tournament", "k": 0}, "selection")
    assert operator_from_spec("SinglePoint", "crossover") == SinglePoint()
    with pytest.raises(ValueError, match="unknown crossover 'single_point'"):
        operator_from_spec("single_point", "crossover")  # specs name classes only
    assert operator_from_spec({"type": "RateMutation", "rate": 0.1}, "mutation") == \
        RateMutation(0.1)


def make(kind, cards, seed, selection, crossover, mutation):
    if kind == "ga":
        return GeneticAlgorithm(cards, 6, seed=seed, selection=selection, crossover=crossover,
                                mutation=mutation)
    if kind == "re":
        return RegularizedEvolution(cards, 6, seed=seed, selection=selection,
                                    crossover=crossover, mutation=mutation)
    return NSGA2(cards, 6, ("max", "min"), seed=seed, selection=selection,
                 crossover=crossover, mutation=mutation)


def run(strategy, kind, rounds=4):
    out = []
    for i in range(rounds):
        g = strategy.ask() if kind != "re" else strategy.ask(1 + i % 4)
        f = toy_fitness(g)
        strategy.tell(g, np.stack([f, -f], axis=1) if kind == "nsga2" else f)
        out.append(g)
    return out


@FAST
@given(kind=st.sampled_from(["ga", "re", "nsga2"]), cards=cardinalities, seed=seeds,
       selection=st.sampled_from(SELECTIONS), crossover=st.sampled_from(CROSSOVERS),
       mutation=st.sampled_from(MUTATIONS))
def test_every_strategy_with_every_operator_stays_in_bounds_and_is_deterministic(
        kind, cards, seed, selection, crossover, mutation):
    a = run(make(kind, cards, seed, selection, crossover, mutation), kind)
    b = run(make(kind, cards, seed, selection, crossover, mutation), kind)
    for x, y in zip(a, b, strict=True):
        assert_in_bounds(x, cards)
        np.testing.assert_array_equal(x, y)


@attrs.frozen
class SwapMutation:
    """A researcher's operator: swap two positions' alleles where both fit (one class)."""

    i: int = 0
    j: int = 1

    def __call__(self, rng, genomes, cardinalities, *, generation=0, extra=0):
        out = genomes.copy()
        a, b = out[:, self.i].copy(), out[:, self.j].copy()
        ok = (a < cardinalities[self.j]) & (b < cardinalities[self.i])
        out[ok, self.i], out[ok, self.j] = b[ok], a[ok]
        return out


@pytest.mark.parametrize("kind", ["ga", "re", "nsga2"])
def test_a_custom_operator_plugs_into_every_strategy_and_its_parameters_are_checked(kind):
    cards = [5, 5, 3]
    s = make(kind, cards, 0, Tournament(k=2), SinglePoint(), SwapMutation())
    run(s, kind, 3)
    state = json.loads(json.dumps(s.state_dict()))
    assert state["operators"]["mutation"] == {
        "type": f"{__name__}.SwapMutation", "i": 0, "j": 1}
    same = make(kind, cards, 9, Tournament(k=2), SinglePoint(), SwapMutation())
    same.load_state_dict(state)
    for x, y in zip(run(s, kind, 3), run(same, kind, 3), strict=True):
        np.testing.assert_array_equal(x, y)
    other = make(kind, cards, 9, Tournament(k=2), SinglePoint(), SwapMutation(i=2))
    with pytest.raises(ValueError, match="mutation"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="selection"):
        make(kind, cards, 9, Tournament(k=3), SinglePoint(), SwapMutation()).load_state_dict(
            state)
