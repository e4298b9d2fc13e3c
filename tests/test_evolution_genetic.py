"""GeneticAlgorithm: generations, elitism, ask/tell protocol, DEvol settings and defects."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    DEVOL_OPERATORS,
    DevolMutation,
    FitnessProportional,
    GeneticAlgorithm,
    RateMutation,
    SinglePoint,
    Tournament,
    Truncation,
    Uniform,
)
from pytorch_devol.evolution._selection import elite_indices
from tests.evolution_helpers import (
    assert_in_bounds,
    cardinalities,
    population_sizes,
    seeds,
    toy_fitness,
)

FAST = settings(max_examples=30, deadline=None)


@FAST
@given(cards=cardinalities, pop=population_sizes, seed=seeds, maximize=st.booleans(),
       gens=st.integers(1, 4))
def test_elitism_keeps_the_best_genome_of_each_generation(cards, pop, seed, maximize, gens):
    ga = GeneticAlgorithm(cards, pop, seed=seed, maximize=maximize)
    for _ in range(gens):
        g = ga.ask()
        f = toy_fitness(g)
        ga.tell(g, f)
        nxt = ga.ask()
        elites = nxt[ga.n_children:]
        assert elites.shape[0] == ga.n_elites >= 1
        # the elites are the best members, best first, unchanged
        np.testing.assert_array_equal(elites, g[elite_indices(f, ga.n_elites, maximize)])
        if not np.isnan(f).all():
            best = g[np.nanargmax(f) if maximize else np.nanargmin(f)]
            assert (nxt == best).all(axis=1).any()
        ga.tell(nxt, toy_fitness(nxt))
        assert_in_bounds(nxt, cards, rows=pop)


@pytest.mark.parametrize(("pop", "elites"), [(1, 1), (2, 1), (19, 1), (20, 1), (40, 2),
                                             (50, 3), (100, 5)])
def test_children_and_elites_follow_devol_counts(pop, elites):
    ga = GeneticAlgorithm([3, 3], pop, seed=0)
    assert ga.n_elites == elites and ga.n_children == pop - elites
    assert ga.n_children == min(int(pop * 0.95), pop - 1)
    assert GeneticAlgorithm([3], 10, crossover_fraction=0.5).n_elites == 5
    assert GeneticAlgorithm([3], 10, min_elites=3).n_elites == 3
    assert GeneticAlgorithm([3], 1, min_elites=0).n_children == 0  # int(0.95) children
    assert GeneticAlgorithm([3], 1, min_elites=0, crossover_fraction=1.0).n_children == 1


def test_ask_hands_out_a_generation_in_parts():
    ga = GeneticAlgorithm([5] * 6, 7, seed=0)
    a = ga.ask(3)
    b = ga.ask(None)
    assert a.shape == (3, 6) and b.shape == (4, 6)
    assert ga.ask(5).shape == (0, 6)  # all handed out, none told: nothing more to give
    np.testing.assert_array_equal(ga.outstanding, np.concatenate([a, b]))
    ga.tell(b, toy_fitness(b, nan_every=0))
    assert ga.generation == 0 and ga.outstanding.shape == (3, 6)
    ga.tell(a, toy_fitness(a, nan_every=0))
    assert ga.generation == 1 and ga.outstanding.shape == (0, 6)
    assert ga.ask(2).shape == (2, 6)  # the next generation


def test_result_does_not_depend_on_arrival_order():
    cards = [1000] * 8
    ordered = GeneticAlgorithm(cards, 12, seed=4)
    shuffled = GeneticAlgorithm(cards, 12, seed=4)
    perm = np.random.default_rng(0).permutation(12)
    for _ in range(4):
        g, h = ordered.ask(), shuffled.ask()
        np.testing.assert_array_equal(g, h)
        ordered.tell(g, toy_fitness(g))
        shuffled.tell(h[perm][:5], toy_fitness(h[perm][:5]))
        shuffled.tell(h[perm][5:], toy_fitness(h[perm][5:]))
    np.testing.assert_array_equal(ordered.ask(), shuffled.ask())


def test_tell_rejects_genomes_not_outstanding():
    ga = GeneticAlgorithm([50] * 4, 3, seed=0)
    with pytest.raises(ValueError, match="before ask"):
        ga.tell([[0, 0, 0, 0]], [1.0])
    g = ga.ask(2)
    other = (g[:1] + 1) % 50
    with pytest.raises(ValueError, match="not asked"):
        ga.tell(other, [1.0])
    ga.tell(g[:1], [1.0])
    with pytest.raises(ValueError, match="already told"):
        ga.tell(g[:1], [1.0])
    with pytest.raises(ValueError, match="not asked"):  # handed-out rows only
        ga.tell(ga._current[2:3], [1.0])


@pytest.mark.parametrize("options", [
    {"selection": Tournament(k=2)},
    {"selection": Truncation(fraction=0.3)},
    {"selection": "Tournament"},
    {"selection": {"type": "Truncation", "fraction": 0.3}},
    {"crossover": Uniform()},
    {"crossover": "Uniform"},
    {"mutation": RateMutation(0.2)},
    {"mutation": DevolMutation(mutable=[1, 2])},
    {"fitness_transform": lambda s: np.exp(3 * s)},
    {"selection": lambda rng, f, n, maximize: rng.integers(0, f.size, n)},
])
def test_variants_stay_in_bounds_and_deterministic(options):
    cards = [2, 1, 7, 2**40]
    runs = []
    for _ in range(2):
        ga = GeneticAlgorithm(cards, 9, seed=3, **options)
        out = []
        for _ in range(5):
            g = ga.ask()
            assert_in_bounds(g, cards, rows=9)
            ga.tell(g, toy_fitness(g))
            out.append(g)
        runs.append(np.concatenate(out))
    np.testing.assert_array_equal(*runs)


def test_mutable_positions_are_the_only_ones_that_change():
    ga = GeneticAlgorithm([9] * 5, 10, seed=0, mutation=DevolMutation(mutable=[4]),
                          crossover=Uniform(p=1.0))  # children are copies of parent a
    g = ga.ask()
    ga.tell(g, toy_fitness(g))
    kids = ga.ask()[: ga.n_children]
    parents = {tuple(r[:4]) for r in g.tolist()}
    assert all(tuple(r[:4]) in parents for r in kids.tolist())


def test_bad_selection_callable_and_options_are_rejected():
    ga = GeneticAlgorithm([3, 3], 4, seed=0, selection=lambda rng, f, n, m: np.full(n, 99))
    g = ga.ask()
    ga.tell(g, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="indices"):
        ga.ask()
    for bad in ({"selection": "roulette"}, {"crossover": "two_point"},
                {"selection": {"type": "Tournament", "k": 0}}, {"mutation": {"k": 1}},
                {"crossover_fraction": 1.5}, {"min_elites": -1}, {"key_retries": -1},
                {"mutation": DevolMutation(mutable=[5])},
                {"selection": Tournament(), "fitness_transform": lambda s: s}):
        with pytest.raises(ValueError):
            GeneticAlgorithm([3, 3], 4, **bad)
    for make in (lambda: RateMutation(-0.1), lambda: FitnessProportional(floor=2),
                 lambda: DevolMutation(divisor=0), lambda: DevolMutation(minimum=-1),
                 lambda: Tournament(k=0), lambda: Truncation(fraction=0.0),
                 lambda: Uniform(p=-1)):
        with pytest.raises(ValueError):
            make()
    with pytest.raises(TypeError, match="unexpected keyword"):
        GeneticAlgorithm([3, 3], 4, n_mutations=2)  # a RegularizedEvolution keyword
    with pytest.raises(TypeError, match="operator"):
        GeneticAlgorithm([3, 3], 4, selection=3)


def test_operators_that_break_their_contract_are_caught():
    def bad_crossover(rng, a, b):
        return a[:, :-1]

    def out_of_bounds(rng, g, cards, *, generation=0, extra=0):
        return g + 100

    for options, message in (({"crossover": bad_crossover}, "crossover"),
                             ({"mutation": out_of_bounds}, "out of bounds")):
        ga = GeneticAlgorithm([3, 3], 4, seed=0, **options)
        g = ga.ask()
        ga.tell(g, [1.0, 2.0, 3.0, 4.0])
        with pytest.raises(ValueError, match=message):
            ga.ask()


def test_fitness_transform_is_used_for_selection():
    # transform keeps only the best (scaled score 1) and floor 0: every child is bred from
    # best x best, so it is the best genome plus its 1..2 mutations.
    cards = [10] * 12
    ga = GeneticAlgorithm(cards, 20, seed=1, selection=FitnessProportional(floor=0.0),
                          fitness_transform=lambda s: (s == 1.0).astype(float))
    assert ga.selection.floor == 0.0 and ga.selection.transform is not None
    g = ga.ask()
    f = toy_fitness(g, nan_every=0)
    ga.tell(g, f)
    best = g[np.argmax(f)]
    kids = ga.ask()[: ga.n_children]
    distance = (kids != best).sum(axis=1)
    assert ((distance >= 1) & (distance <= 2)).all()


def test_no_keyword_shorthands_for_operator_parameters():
    # Operators are objects (or specs); there are no keywords that set their parameters.
    for keyword in ("tournament_size", "mutation_rate", "mutable_positions", "n_mutations"):
        with pytest.raises(TypeError, match="unexpected keyword"):
            GeneticAlgorithm([3], 4, **{keyword: 1})
    with pytest.raises(ValueError, match="unknown selection 'tournament'"):
        GeneticAlgorithm([3], 4, selection="tournament")  # names are class names


def test_defect_fixed_elites_not_mutated_and_told_generation_untouched():
    ga = GeneticAlgorithm.devol_exact([6] * 10, 20, seed=2)  # DEvol: elites mutated
    g = ga.ask()
    ga.tell(g, toy_fitness(g, nan_every=0))
    snapshot = ga.population.copy()
    ga.ask()
    np.testing.assert_array_equal(ga.population, snapshot)  # no in-place mutation
    ours = GeneticAlgorithm([6] * 10, 20, seed=2)
    g = ours.ask()
    f = toy_fitness(g, nan_every=0)
    ours.tell(g, f)
    np.testing.assert_array_equal(ours.ask()[-1], g[np.argmax(f)])  # the elite, unmutated


def test_devol_exact_settings():
    ga = GeneticAlgorithm.devol_exact([3] * 4, 10, seed=0, maximize=False)
    assert ga.selection == FitnessProportional(floor=0.0) == DEVOL_OPERATORS["selection"]
    assert ga.crossover == SinglePoint(allow_copies=True) and ga.mutate_elites
    assert ga.mutation == DevolMutation(minimum=0, force_change=False, distinct=False)
    assert not ga.maximize
    tour = GeneticAlgorithm.devol_exact([3], 10, selection=Tournament(k=2))
    assert tour.selection == Tournament(k=2) and tour.mutation == DEVOL_OPERATORS["mutation"]
    # DEvol's GenomeHandler never mutates position 0 (the first conv layer's "active" gene).
    # With 2**40 alleles there, any mutation of position 0 would bring a value never seen.
    cards = [2**40] + [9] * 7
    for mutable, new_values in ((range(1, 8), False), (None, True)):
        ga = GeneticAlgorithm.devol_exact(cards, 30, seed=0, mutable=mutable)
        g = ga.ask()
        initial = set(g[:, 0].tolist())
        appeared = False
        for _ in range(4):
            ga.tell(g, toy_fitness(g, nan_every=0))
            g = ga.ask()
            appeared |= not set(g[:, 0].tolist()) <= initial
        assert appeared == new_values
    with pytest.raises(TypeError, match="mutable"):
        GeneticAlgorithm.devol_exact(cards, 4, mutable=[1], mutation=RateMutation(0.1))
    ours = GeneticAlgorithm([3] * 4, 10)
    assert ours.selection == FitnessProportional(floor=0.05) and ours.crossover == SinglePoint()
    assert ours.mutation == DevolMutation(minimum=1) and not ours.mutate_elites


def test_population_of_one_keeps_its_elite():
    ga = GeneticAlgorithm([4, 4], 1, seed=0)
    g = ga.ask()
    ga.tell(g, [1.0])
    np.testing.assert_array_equal(ga.ask(), g)
    evolving = GeneticAlgorithm([4, 4], 1, seed=0, min_elites=0, crossover_fraction=1.0)
    g = evolving.ask()
    evolving.tell(g, [1.0])
    assert not np.array_equal(evolving.ask(), g)  # a mutated child of the only member
