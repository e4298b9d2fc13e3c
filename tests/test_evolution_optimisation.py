"""Optimisation sanity: on separable toy objectives both strategies beat random sampling."""

from __future__ import annotations

import numpy as np
import pytest

from pytorch_devol.evolution import GeneticAlgorithm, RegularizedEvolution, random_genomes
from tests.evolution_helpers import normalised_sum

CARDS = np.array([2, 3, 4, 5, 8, 11, 2, 6, 3, 16] * 2)
GENERATIONS, POP = 20, 20
BUDGET = GENERATIONS * POP
SEEDS = range(5)


def objective(genomes, maximize, target):
    if maximize:  # sum of normalised alleles, best 20
        return normalised_sum(genomes, CARDS)
    # distance to a target genome, best 0
    return normalised_sum(np.abs(genomes - target), CARDS)


def run_ga(seed, maximize, target):
    ga = GeneticAlgorithm(CARDS, POP, seed=seed, maximize=maximize)
    for _ in range(GENERATIONS):
        g = ga.ask()
        ga.tell(g, objective(g, maximize, target))
    assert ga.n_told == BUDGET
    return ga.best_fitness


def run_re(seed, maximize, target):
    re = RegularizedEvolution(CARDS, POP, 5, seed=seed, maximize=maximize)
    pending = re.ask(4)  # four asynchronous workers
    while re.n_told < BUDGET:
        done, pending = pending[:1], pending[1:]
        re.tell(done, objective(done, maximize, target))
        if re.n_asked < BUDGET:
            pending = np.concatenate([pending, re.ask()])
    return re.best_fitness


def random_best(seed, maximize, target):
    g = random_genomes(np.random.default_rng(seed + 1000), CARDS, BUDGET)
    f = objective(g, maximize, target)
    return f.max() if maximize else f.min()


@pytest.mark.parametrize("runner", [run_ga, run_re], ids=["ga", "re"])
@pytest.mark.parametrize("maximize", [True, False], ids=["max", "min"])
def test_strategies_beat_random_sampling_with_the_same_budget(runner, maximize):
    target = random_genomes(np.random.default_rng(7), CARDS, 1)[0]
    for seed in SEEDS:
        ours = runner(seed, maximize, target)
        rand = random_best(seed, maximize, target)
        assert (ours > rand) if maximize else (ours < rand), (seed, ours, rand)
