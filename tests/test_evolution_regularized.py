"""RegularizedEvolution: initial population, aging, asynchronous ask/tell, tournaments."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.evolution import (
    PointMutation,
    RegularizedEvolution,
    SinglePoint,
    Tournament,
    Truncation,
)
from tests.evolution_helpers import assert_in_bounds, cardinalities, seeds, toy_fitness

FAST = settings(max_examples=25, deadline=None)


def test_ask_defaults_to_one_genome():
    re = RegularizedEvolution([3] * 4, 5, 2, seed=0)
    assert re.ask().shape == (1, 4)
    assert re.ask(0).shape == (0, 4)
    assert re.ask(7).shape == (7, 4)
    assert re.n_asked == 8 and re.outstanding.shape == (8, 4)


def test_children_are_one_mutation_from_a_member():
    cards = [5] * 10
    re = RegularizedEvolution(cards, 6, 3, seed=0)
    first = re.ask(6)
    re.tell(first, toy_fitness(first, nan_every=0))
    kids = re.ask(50)
    distance = (kids[:, None, :] != re.population[None, :, :]).sum(axis=2)
    assert (distance.min(axis=1) == 1).all()


def test_before_any_tell_asks_stay_random_then_evolve_from_what_is_told():
    cards = [100] * 6
    re = RegularizedEvolution(cards, 3, 2, seed=0)
    early = re.ask(10)  # more than the population: nothing told yet, all random
    assert_in_bounds(early, cards, rows=10)
    re.tell(early[4:5], [1.0])  # one member only
    kids = re.ask(20)
    assert ((kids != early[4]).sum(axis=1) == 1).all()


@FAST
@given(cards=cardinalities, pop=st.integers(1, 8), seed=seeds, data=st.data())
def test_asynchronous_tells_in_any_order_and_aging(cards, pop, seed, data):
    re = RegularizedEvolution(cards, pop, data.draw(st.integers(1, pop)), seed=seed)
    told = []
    pending = []
    for _ in range(6):
        pending.extend(re.ask(data.draw(st.integers(0, 4))))
        order = data.draw(st.permutations(range(len(pending))))
        k = data.draw(st.integers(0, len(pending)))
        batch = [pending[i] for i in order[:k]]
        pending = [pending[i] for i in order[k:]]
        if batch:
            g = np.array(batch)
            re.tell(g, toy_fitness(g))
            told.extend(batch)
        assert re.size == min(len(told), pop)
        assert re.outstanding.shape[0] == len(pending)
        if told:  # the population is the last `pop` told genomes, oldest first
            np.testing.assert_array_equal(re.population, np.array(told[-pop:]))
            np.testing.assert_array_equal(re.fitness, toy_fitness(np.array(told[-pop:])))
    assert_in_bounds(re.population, cards)


def test_tell_accepts_genomes_never_asked():
    re = RegularizedEvolution([4, 4, 4], 3, 2, seed=0)
    warm = np.array([[3, 3, 3], [0, 0, 0]])
    re.tell(warm, [9.0, 1.0])  # e.g. results of an earlier run
    np.testing.assert_array_equal(re.best_genome, [3, 3, 3])
    assert re.size == 2 and re.outstanding.shape == (0, 3)
    first = re.ask()  # the initial population still lacks one member: a random genome
    re.tell(first, [0.0])
    kids = re.ask(20)  # then children only: one mutation from a member
    distance = (kids[:, None, :] != re.population[None, :, :]).sum(axis=2).min(axis=1)
    assert (distance == 1).all()


def test_tournament_uses_the_best_of_the_sample():
    cards = [50] * 8
    re = RegularizedEvolution(cards, 10, 10, seed=0)  # sample 10 of 10: best usually wins
    g = re.ask(10)
    f = np.arange(10.0)
    re.tell(g, f)
    kids = re.ask(200)
    near_best = ((kids != g[9]).sum(axis=1) == 1).mean()
    # P(best among 10 draws with replacement) = 1 - 0.9**10 = 0.65; uniform parents: 0.1
    assert near_best > 0.5
    re_min = RegularizedEvolution(cards, 10, 10, seed=0, maximize=False)
    g = re_min.ask(10)
    re_min.tell(g, f)
    assert ((re_min.ask(200) != g[0]).sum(axis=1) == 1).mean() > 0.5


def test_options_and_validation():
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution([3], 4, 5)
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution([3], 4, 0)
    with pytest.raises(ValueError, match="sample_size"):
        RegularizedEvolution([3], 4)  # neither sample_size nor selection
    with pytest.raises(ValueError, match="count"):
        RegularizedEvolution([3], 4, 2, mutation=PointMutation(count=-1))
    with pytest.raises(ValueError, match="unknown mutation"):
        RegularizedEvolution([3], 4, 2, mutation="gaussian")
    re = RegularizedEvolution([7] * 6, 4, 2, seed=1,
                              mutation=PointMutation(count=3, mutable=[0, 1, 2]))
    members = np.array([[0, 0, 0, 1, 2, 3], [0, 0, 0, 4, 5, 6], [0, 0, 0, 6, 6, 6],
                        [0, 0, 0, 0, 0, 0]])
    re.tell(members, [1.0, 2.0, 3.0, 4.0])  # a warm start fills the initial population
    kids = re.ask(30)
    assert (kids[:, :3] != 0).all()  # exactly the 3 mutable positions changed
    tails = {tuple(r) for r in members[:, 3:].tolist()}
    assert all(tuple(r) in tails for r in kids[:, 3:].tolist())


def test_operator_parameters_are_not_keywords():
    for keyword in ("n_mutations", "mutation_rate", "mutable_positions", "tournament_size"):
        with pytest.raises(TypeError, match="unexpected keyword"):
            RegularizedEvolution([3], 4, 2, **{keyword: 1})


def test_selection_and_crossover_operators():
    cards = [6] * 8
    runs = []
    for _ in range(2):
        re = RegularizedEvolution(cards, 6, selection=Truncation(fraction=0.5),
                                  crossover=SinglePoint(), seed=4)
        assert re.sample_size is None and re.crossover == SinglePoint()
        out = []
        for i in range(8):
            g = re.ask(1 + i % 3)
            assert_in_bounds(g, cards, rows=1 + i % 3)
            re.tell(g, toy_fitness(g))
            out.append(g)
        runs.append(np.concatenate(out))
    np.testing.assert_array_equal(*runs)
    # sample_size builds the paper's tournament; a selection given takes its place
    assert RegularizedEvolution(cards, 6, 3).selection == Tournament(k=3)
    assert RegularizedEvolution(cards, 6, 3, selection=Truncation()).selection == Truncation()


def test_update_replaces_fitness_without_aging():
    """A promoted candidate's better-informed score (multi-fidelity) replaces its old one: no
    new member, no aging, nothing counted as told without being asked."""
    from pytorch_devol.evolution import RegularizedEvolution

    re = RegularizedEvolution([7] * 5, population_size=4, sample_size=2, seed=0)
    genomes = re.ask(4)
    assert len({g.tobytes() for g in genomes}) == 4
    re.tell(genomes, [0.1, 0.2, 0.3, 0.4])
    before = re.state_dict()
    re.update(genomes[1:2], [0.9])
    after = re.state_dict()
    assert re.fitness.tolist() == [0.1, 0.9, 0.3, 0.4]
    assert after["inserted"] == before["inserted"] and \
        after["unasked_told"] == before["unasked_told"] == 0
    assert re.best_fitness == 0.9
    re.update([[6] * 5] if not (genomes == 6).all(axis=1).any() else [[0] * 5], [1.0])
    assert re.size == 4 and sorted(re.fitness.tolist()) == [0.1, 0.3, 0.4, 0.9]
